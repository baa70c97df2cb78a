"""pytest hooks and wiring for pytest-kspec; the work lives in modules that never import pytest.

pytest loads this plugin in every session, so it imports the engine only when a session
asks for kspec (``--kspec-spec``): a plain ``pytest`` run pays for the options and nothing
else, and a kspec run imports what it uses (the simulator only with ``--kspec-sim``).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kspec.errors import KspecError, SpecError
from pytest_kspec.paths import spec_node_id
from pytest_kspec.plugin import custom
from pytest_kspec.plugin.keys import (
    ATTEMPTS_KEY,
    OUTCOME_KEY,
    RUN_KEY,
    WORKER_BUDGET,
    WORKER_KUBECONFIG,
    WORKER_UNUSABLE,
    get_fleet,
    get_run,
    run_of,
    runs_of,
)
from pytest_kspec.plugin.settings import Settings, add_options

if TYPE_CHECKING:
    from pytest_kspec.cluster import ClusterRef, Snapshot
    from pytest_kspec.plugin.items import SpecFile
    from pytest_kspec.spec import DriftConfig

log = logging.getLogger("pytest_kspec")
SEVERITIES = ("critical", "high", "medium", "low", "info")
# The drift types (pytest_kspec.detect.TYPES), here so declaring markers imports no engine.
TYPES = ("policy", "compliance", "configuration", "resource")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for kind in TYPES:
        config.addinivalue_line("markers", f"kspec_{kind}: kspec {kind} drift check")
    for sev in SEVERITIES:
        config.addinivalue_line("markers", f"kspec_severity_{sev}: kspec check of {sev} severity")
    config.addinivalue_line("markers", custom.MARKER)
    settings = Settings.from_config(config)
    if settings is None:
        return
    from pytest_kspec.cluster import AccessOptions, sim_paths
    from pytest_kspec.detect import make_plan
    from pytest_kspec.fleet import Fleet, RunSettings
    from pytest_kspec.history import history_location
    from pytest_kspec.remediate import RemediationOptions
    from pytest_kspec.spec import DriftConfig, load_drift_config, load_spec

    try:
        spec = load_spec(settings.spec)
        drift_config = (load_drift_config(settings.config) if settings.config
                        else DriftConfig.default())
        access = AccessOptions(sim_state=sim_paths(settings.sim_state),
                               sim_version=settings.sim_version)
        refs = _clusters(config, settings, drift_config)
        plan = make_plan(spec, settings.types or drift_config.detection.types,
                         resources=drift_config.remediation.resources,
                         waivers=drift_config.waivers)
    except SpecError as e:
        raise pytest.UsageError(f"invalid kspec input:\n{e}") from None
    except KspecError as e:
        raise pytest.UsageError(str(e)) from None
    remediation = RemediationOptions.resolve(
        drift_config, remediate=settings.remediate,
        dry_run=settings.dry_run or settings.plan is not None,
        prune=settings.prune, max_deletions=settings.max_deletions)
    spec_node = spec_node_id(settings.spec, settings.base)
    history = history_location(settings.history, drift_config.storage, settings.reports,
                               base=settings.base, off=settings.no_history)
    config.stash[RUN_KEY] = Fleet(refs, RunSettings(
        plan=plan, spec_node=spec_node, reports=settings.reports, config=drift_config,
        remediation=remediation, history=history, access=access, plan_path=settings.plan,
        probe=settings.probe))
    _collect_spec(config, settings.spec)
    if not hasattr(config, "workerinput") and not config.option.xmlpath:
        config.option.xmlpath = str(settings.reports / "junit.xml")
    if (not hasattr(config, "workerinput") and hasattr(config.option, "htmlpath")
            and not config.option.htmlpath):  # pytest-html's own configure runs after this
        config.option.htmlpath = str(settings.reports / "report.html")
        config.option.self_contained_html = True
    if not hasattr(config, "workerinput"):
        from pytest_kspec.plugin.reporter import Reporter

        config.pluginmanager.register(Reporter(config, settings.metrics_file),
                                      "kspec-reporter")
        if config.pluginmanager.hasplugin("xdist"):
            from pytest_kspec.plugin.xdist_hooks import XdistHooks

            config.pluginmanager.register(XdistHooks(), "kspec-xdist")


def _clusters(config: pytest.Config, settings: Settings,
              drift_config: DriftConfig) -> list[ClusterRef]:
    """The clusters this session checks (``--kspec-context a,b|all``, DriftConfig
    ``clusters:``); the embedded simulator is one cluster."""
    from pytest_kspec.cluster import ClusterRef, select_clusters

    context = (settings.context or "").strip()
    if settings.sim_state:
        if "," in context or context == "all":
            raise pytest.UsageError(f"--kspec-sim runs one embedded cluster: drop "
                                    f"--kspec-context {context}")
        return [ClusterRef("")]
    return select_clusters(settings.context, kubeconfig=settings.kubeconfig,
                           configured=drift_config.clusters, base=settings.base,
                           check=not config.option.collectonly)


def _collect_spec(config: pytest.Config, spec: Path) -> None:
    """Make sure the spec file is collected: alone when no paths were given, else in addition."""
    target = str(spec)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [target]
    elif not any(Path(a.split("::")[0]).resolve() == spec.resolve() for a in config.args):
        config.args.append(target)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if RUN_KEY not in config.stash:
        return
    fleet = get_fleet(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        from pytest_kspec.remediate import DeletionBudget

        if WORKER_KUBECONFIG in workerinput:
            fleet.first.access.use_kubeconfig(workerinput[WORKER_KUBECONFIG])
        for name, path in (workerinput.get(WORKER_BUDGET) or {}).items():
            run = fleet.run(name)
            run.budget = DeletionBudget(run.remediation.max_deletions, Path(path))
        fleet.mark_unusable(workerinput.get(WORKER_UNUSABLE) or {})
        return
    if config.option.collectonly:
        return
    try:
        fleet.first.access.start_simulator()
    except KspecError as e:
        raise pytest.UsageError(str(e)) from None
    try:
        fleet.check()  # several clusters: one that fails errors its own items only
    except KspecError as e:
        # One line and exit 2 (the session could not run), before any worker starts: not
        # one error per item, and no report or history entry that would read as a 0 % run.
        # pytest prints the Exit reason itself; the terminal reporter would repeat it.
        config.pluginmanager.unregister(name="terminalreporter")
        pytest.exit(f"kspec: cannot use the cluster, no check ran: {e}",
                    returncode=pytest.ExitCode.INTERRUPTED)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if RUN_KEY not in config.stash:
        return []
    fleet = get_fleet(config)
    run = fleet.first
    lines = [f"kspec: spec {run.spec.path} ({run.spec.name} {run.spec.version}), "
             f"{len(run.plan.targets)} checks"
             + (f" on each of {len(fleet.refs)} clusters" if fleet.multi else "")]
    if not config.option.collectonly:
        for name, each in fleet.runs.items():
            where = each.access.describe()
            who = f"cluster {name}" if fleet.multi else "cluster"
            if each.access.unusable is not None:
                lines.append(f"kspec: {each.access.unusable}")
            elif "error" in where:
                lines.append(f"kspec: {who}: {where['error']}")
            else:
                lines.append(f"kspec: {who} {where['server']} (context {where['context']})")
    elif fleet.multi:
        lines.append(f"kspec: clusters {', '.join(fleet.runs)}")
    return lines


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SpecFile | None:
    config = parent.config
    if (RUN_KEY in config.stash
            and file_path.resolve() == get_fleet(config).first.spec.path.resolve()):
        from pytest_kspec.plugin.items import SpecFile

        # The spec's node id never follows rootdir (see pytest_kspec.paths.spec_node_id).
        node: SpecFile = SpecFile.from_parent(parent, path=file_path,
                                              nodeid=get_fleet(config).settings.spec_node)
        return node
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A fleet run: a user's check that reads the cluster (``kspec_cluster``) runs once per
    cluster, ``test_replicas[prod-eu]``, and reports to that cluster's report."""
    config = metafunc.config
    if RUN_KEY in config.stash and "kspec_cluster" in metafunc.fixturenames:
        fleet = get_fleet(config)
        if fleet.multi:
            names = list(fleet.runs)
            metafunc.parametrize("kspec_cluster", names, indirect=True, ids=names,
                                 scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    custom.collect_checks(config, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield
    custom.fail_on_violations(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    custom.remediate(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if RUN_KEY not in item.config.stash:
        return report
    from pytest_kspec.plugin.items import KspecItem
    from pytest_kspec.report import item_extras

    check = attempts = outcome = None
    if not isinstance(item, KspecItem):
        outcome = custom.judge(item, call, report)
        check = custom.check_of(item)
        attempts = custom.attempts(item) if call.when == "teardown" else None
    elif OUTCOME_KEY in item.stash:
        remediated = call.when == "teardown" and ATTEMPTS_KEY in item.stash
        if call.when == "call" or (call.when == "setup" and report.failed) or remediated:
            outcome = item.stash[OUTCOME_KEY]
            attempts = item.stash[ATTEMPTS_KEY] if remediated else None
    if outcome is None:
        return report
    records = []
    for run in runs_of(item):
        record = run.record(outcome, check)
        # Plain data on the report: xdist ships it from the workers to the controller.
        # The teardown record (with each event's remediation) replaces the call's.
        records.append({**record.to_json(), "events": record.events, "order": record.order,
                        "cluster": run.cluster_name})
    report.kspec_records = records  # type: ignore[attr-defined]
    data = records[0]
    # pytest-html shows them; without an HTML report there is nothing to build.
    extras = (item_extras(data, phase=call.when)
              if getattr(item.config.option, "htmlpath", None) else [])
    if extras:
        report.extras = [*getattr(report, "extras", []), *extras]  # type: ignore[attr-defined]
    if attempts is not None:
        report.kspec_attempts = attempts  # type: ignore[attr-defined]
        report.kspec_cluster = run_of(item).cluster_name  # type: ignore[attr-defined]
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    if RUN_KEY in config.stash:
        for run in get_fleet(config):
            run.access.close()
            if run.budget.path is not None and not hasattr(config, "workerinput"):
                run.budget.path.unlink(missing_ok=True)


kspec_violations = custom.kspec_violations


@pytest.fixture(scope="session")
def kspec_spec(request: pytest.FixtureRequest) -> Any:
    """The loaded ClusterSpecification of this session (``--kspec-spec``).

    ``kspec_spec.name``, ``.version`` and ``.body`` (the ``spec`` section as plain dicts)
    let custom checks read what the team asked for.
    """
    if RUN_KEY not in request.config.stash:
        pytest.skip("no --kspec-spec given")
    return get_fleet(request.config).first.spec


@pytest.fixture(scope="session")
def kspec_cluster(request: pytest.FixtureRequest) -> Snapshot:
    """The session's cluster snapshot, shared with kspec's own items.

    ``kspec_cluster.list("apps/v1", "Deployment", namespace="shop")`` returns the raw JSON
    objects (dicts, as the API server sends them); each kind is listed once per session.
    ``kspec_cluster.get(api_version, kind, name, namespace)`` finds one object, and
    ``kspec_cluster.server_version()`` is the ``/version`` answer. API errors raise
    :class:`pytest_kspec.errors.ApiError` (the test then errors, never passes).

    With several clusters (``--kspec-context a,b``, DriftConfig ``clusters:``) a test that
    uses it runs once per cluster (``test_x[a]``, ``test_x[b]``), each time with that
    cluster's snapshot, and reports to that cluster's report.
    """
    if RUN_KEY not in request.config.stash:
        pytest.skip("no --kspec-spec given")
    return get_run(request.config, getattr(request, "param", "")).access.snapshot()
