"""The plugin's options, declared once and frozen into one settings object per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_kspec.cluster import DEFAULT_SIM_VERSION
from pytest_kspec.paths import under

WORKER_BASE = "kspec_base"
"""workerinput key: the controller's invocation directory, so workers resolve paths alike."""


def parse_types_option(text: str) -> frozenset[str]:
    """``--kspec-types`` value: comma-separated types, plural forms accepted, or ``all``."""
    from pytest_kspec.spec import parse_types

    try:
        return parse_types(text)
    except ValueError as e:
        raise pytest.UsageError(f"--kspec-types: {e}") from None


def parse_max_deletions(text: str) -> int:
    """``--kspec-max-deletions`` value: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise pytest.UsageError(f"--kspec-max-deletions: {text!r} is not a whole number of 0 "
                                "or more (e.g. --kspec-max-deletions 5)")
    return value


@dataclass(frozen=True)
class Settings:
    """Every kspec option of this session, parsed and checked."""

    spec: Path
    kubeconfig: str | None
    context: str | None
    sim_state: tuple[str, ...]
    sim_version: str
    types: frozenset[str] | None  # None: as the DriftConfig says (default all)
    remediate: bool
    dry_run: bool
    config: Path | None
    reports: Path
    prune: bool = False
    max_deletions: int | None = None  # None: as the DriftConfig says (default 5)
    history: str | None = None  # a path or postgresql:// URL; None: the DriftConfig's storage
    no_history: bool = False
    plan: Path | None = None  # --kspec-plan: write the dry run's writes there for approval
    probe: bool = False  # --kspec-probe: efficacy probes (or DriftConfig detection.efficacy)
    metrics_file: Path | None = None  # --kspec-metrics-file: node-exporter textfile
    base: Path = Path()  # the invocation directory: relative reports/history paths start here

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings | None:
        spec = config.getoption("kspec_spec") or config.getini("kspec_spec")
        if not spec:
            return None
        types = config.getoption("kspec_types")
        if types is None and config.getini("kspec_types"):
            types = parse_types_option(config.getini("kspec_types"))
        reports = config.getoption("kspec_reports") or config.getini("kspec_reports") or "reports"
        cfg = config.getoption("kspec_config") or config.getini("kspec_config")
        plan = config.getoption("kspec_plan")
        metrics_file = config.getoption("kspec_metrics_file")
        if plan and config.getoption("kspec_remediate"):
            raise pytest.UsageError("--kspec-plan writes the fixes to a plan for approval "
                                    "instead of making them: drop --kspec-remediate (use "
                                    "--kspec-dry-run)")
        # Relative paths follow the directory pytest was started in, as --junitxml and
        # --html do, never pytest's rootdir: rootdir follows the paths on the command line
        # (/etc/kspec/cluster-spec.yaml makes it /, a read-only root in a pod).
        workerinput = getattr(config, "workerinput", None) or {}
        base = Path(workerinput.get(WORKER_BASE) or config.invocation_params.dir)
        return cls(
            spec=Path(spec),
            kubeconfig=config.getoption("kspec_kubeconfig"),
            context=config.getoption("kspec_context"),
            sim_state=tuple(config.getoption("kspec_sim") or ()),
            sim_version=config.getoption("kspec_sim_version"),
            types=types,
            remediate=bool(config.getoption("kspec_remediate")),
            dry_run=bool(config.getoption("kspec_dry_run")),
            config=Path(cfg) if cfg else None,
            reports=under(base, reports),
            prune=bool(config.getoption("kspec_prune")),
            max_deletions=config.getoption("kspec_max_deletions"),
            history=config.getoption("kspec_history") or None,
            no_history=bool(config.getoption("kspec_no_history")),
            plan=under(base, plan) if plan else None,
            probe=bool(config.getoption("kspec_probe")),
            metrics_file=under(base, metrics_file) if metrics_file else None,
            base=base,
        )


def add_options(parser: pytest.Parser) -> None:
    """Declare the ``kspec`` option group and its ini counterparts."""
    group = parser.getgroup("kspec", "cluster specification drift (pytest-kspec)")
    group.addoption("--kspec-spec", dest="kspec_spec", metavar="PATH", default=None,
                    help="ClusterSpecification to check the cluster against (turns kspec on).")
    group.addoption("--kspec-kubeconfig", dest="kspec_kubeconfig", metavar="PATH", default=None,
                    help="kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
    group.addoption("--kspec-context", dest="kspec_context", metavar="NAME[,NAME...]|all",
                    default=None,
                    help="kubeconfig context to use (default: the current context); several "
                         "(a,b) or all (every context of the kubeconfig) check each cluster in "
                         "one run: node ids <spec>::<context>::<type>::<id>, reports under "
                         "<reports>/clusters/<context>/ plus fleet-report.json (overrides the "
                         "DriftConfig's clusters:).")
    group.addoption("--kspec-sim", dest="kspec_sim", metavar="PATH", action="append",
                    default=None,
                    help="run against the embedded Kubernetes API simulator preloaded with the "
                         "objects in PATH (YAML file or folder; repeatable).")
    group.addoption("--kspec-sim-version", dest="kspec_sim_version", metavar="VERSION",
                    default=DEFAULT_SIM_VERSION,
                    help="Kubernetes version the simulator reports "
                         f"(default {DEFAULT_SIM_VERSION}).")
    group.addoption("--kspec-types", dest="kspec_types", metavar="LIST", type=parse_types_option,
                    default=None,
                    help="drift types to check: policy,compliance,configuration,resource "
                         "(default all).")
    group.addoption("--kspec-remediate", dest="kspec_remediate", action="store_true",
                    help="fix remediable drift in each item's teardown.")
    group.addoption("--kspec-dry-run", dest="kspec_dry_run", action="store_true",
                    help="plan the fixes: send them with dryRun=All so the API server "
                         "validates them, change nothing (implies --kspec-remediate).")
    group.addoption("--kspec-plan", dest="kspec_plan", metavar="FILE", default=None,
                    help="with --kspec-dry-run: write every write remediation would make "
                         "(target, planned resourceVersion, field diff, digest) to FILE, to be "
                         "reviewed (kspec drift plan show FILE) and applied (kspec drift "
                         "remediate --apply FILE --approved-by NAME).")
    group.addoption("--kspec-probe", dest="kspec_probe", action="store_true",
                    help="efficacy probes: for each expected Enforce policy, a server-side "
                         "dry-run create of a pod that breaks it; admitted fails the item as "
                         "not-enforcing (needs create pods: the kspec-probe ClusterRole).")
    group.addoption("--kspec-prune", dest="kspec_prune", action="store_true",
                    help="when remediating, delete kspec-managed ClusterPolicies the spec no "
                         "longer asks for (default: report them).")
    group.addoption("--kspec-max-deletions", dest="kspec_max_deletions", metavar="N",
                    type=parse_max_deletions, default=None,
                    help="most objects remediation may delete in one run (default: the "
                         "DriftConfig's remediation.maxDeletions, else 5).")
    group.addoption("--kspec-config", dest="kspec_config", metavar="PATH", default=None,
                    help="DriftConfig (kspec.dev/v1) with detection, remediation and storage "
                         "settings; command-line flags override it.")
    group.addoption("--kspec-reports", dest="kspec_reports", metavar="DIR", default=None,
                    help="where drift-report.json, JUnit and HTML reports go (default reports; "
                         "relative to the directory pytest was started in).")
    group.addoption("--kspec-history", dest="kspec_history", metavar="PATH|URL", default=None,
                    help="history database: a SQLite file or a postgresql:// URL (default: "
                         "the DriftConfig's storage, else <reports>/history.db).")
    group.addoption("--kspec-no-history", dest="kspec_no_history", action="store_true",
                    help="neither read nor write the history (no deleted/new-violation "
                         "verdicts, no trend).")
    group.addoption("--kspec-metrics-file", dest="kspec_metrics_file", metavar="PATH",
                    default=None,
                    help="write the run's Prometheus metrics to PATH at the end of the session "
                         "(node-exporter textfile format, written atomically; relative to the "
                         "directory pytest was started in).")
    parser.addini("kspec_spec", "default for --kspec-spec", default="")
    parser.addini("kspec_types", "default for --kspec-types", default="")
    parser.addini("kspec_config", "default for --kspec-config", default="")
    parser.addini("kspec_reports", "default for --kspec-reports", default="")
