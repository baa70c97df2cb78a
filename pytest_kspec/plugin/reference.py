"""docs/configuration.md, rendered from what the code defines, so the reference cannot drift.

pytest options come from the plugin's own ``add_options`` (recorded, not parsed), CLI flags from
``kspec``'s argparse parser, DriftConfig fields from its JSON Schema, report fields from a
report the model renders, exit codes from their constants. Descriptions the code does not
carry (schema fields, report fields) live in the tables below; a field without one is an error,
so a new field cannot ship undocumented. Regenerate with::

    python -m pytest_kspec.plugin.reference > docs/configuration.md
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from pytest_kspec.cli import EXIT_DRIFT, EXIT_INCOMPLETE, EXIT_OK, build_parser
from pytest_kspec.plugin.settings import add_options
from pytest_kspec.report import ItemRecord, RunReport

DRIFT_CONFIG_FIELDS: Mapping[str, str] = {
    "apiVersion": "always `kspec.dev/v1`",
    "kind": "always `DriftConfig`",
    "metadata": "who this configuration is",
    "metadata.name": "its name (shown in reports)",
    "metadata.description": "free text",
    "metadata.labels": "free-form string labels",
    "spec": "the settings; every section is optional",
    "spec.detection": "which drift types are detected (all by default)",
    "spec.detection.policies": "expected Kyverno ClusterPolicies present and unchanged",
    "spec.detection.compliance": "the spec's compliance checks over live resources",
    "spec.detection.configuration": "Kubernetes version within the spec's bounds",
    "spec.detection.resources": "`resource::` items for `remediation.resources` checks",
    "spec.detection.efficacy": "efficacy probes: a dry-run pod per Enforce policy must be "
                               "refused (as `--kspec-probe`; needs the `kspec-probe` role)",
    "spec.detection.probeNamespace": "namespace the probe pods are dry-run in (default "
                                     "`default`)",
    "spec.interval": "time between runs in watch mode (default 5m, at least 10s)",
    "spec.remediation": "what runs may fix (nothing unless asked)",
    "spec.remediation.auto": "remediate without `--kspec-remediate` (`kspec drift detect "
                             "--no-auto-remediate` turns it off)",
    "spec.remediation.dryRun": "send fixes with `dryRun=All`; change nothing",
    "spec.remediation.types": "drift types remediation applies to (default `[policy]`)",
    "spec.remediation.prune": "delete kspec-marked policies the spec no longer asks for",
    "spec.remediation.maxDeletions": "most objects deleted per run, across xdist workers "
                                     "(default 5)",
    "spec.remediation.resources": "check id → `report` or `delete` (pods without an owner)",
    "spec.remediation.loopBreaker": "watch mode: stop fixing a resource something keeps "
                                    "changing back",
    "spec.remediation.loopBreaker.restores": "restores within `window` after which the "
                                             "resource is left alone (default 3)",
    "spec.remediation.loopBreaker.window": "the window those restores are counted in "
                                           "(default 10m)",
    "spec.alerts": "where drift is announced",
    "spec.alerts.enabled": "send alerts at all",
    "spec.alerts.webhook": "one generic or Slack webhook",
    "spec.alerts.webhook.url": "receiver URL (or from a Secret: see the channels' `urlEnv`)",
    "spec.alerts.webhook.severity": "lowest severity that is sent",
    "spec.alerts.webhook.format": "payload format (`auto` picks Slack for Slack URLs)",
    "spec.alerts.webhook.allowInsecure": "allow plain `http://` receivers",
    "spec.alerts.email": "mail through an SMTP server",
    "spec.alerts.email.enabled": "send mail",
    "spec.alerts.email.severity": "lowest severity that is sent",
    "spec.alerts.email.host": "SMTP server",
    "spec.alerts.email.port": "SMTP port",
    "spec.alerts.email.starttls": "upgrade the connection with STARTTLS",
    "spec.alerts.email.from": "sender address",
    "spec.alerts.email.to": "recipient addresses",
    "spec.alerts.email.username": "SMTP user (then a password is needed)",
    "spec.alerts.email.passwordEnv": "environment variable holding the SMTP password",
    "spec.alerts.email.passwordFile": "file holding the SMTP password (a mounted Secret)",
    "spec.alerts.email.allowInsecure": "allow SMTP without TLS",
    "spec.alerts.minInterval": "the same drift is alerted at most once per interval",
    "spec.alerts.reminder": "re-alert drift still present after this long",
    "spec.alerts.timeout": "per-delivery timeout",
    "spec.alerts.retries": "delivery retries",
    "spec.alerts.channels": "named channels (webhook, Slack, PagerDuty, SMTP)",
    "spec.alerts.channels[].name": "the channel's name (in logs and the alert history)",
    "spec.alerts.channels[].type": "webhook, Slack, PagerDuty or SMTP",
    "spec.alerts.channels[].severity": "lowest severity this channel receives",
    "spec.alerts.channels[].minInterval": "as `alerts.minInterval`, for this channel",
    "spec.alerts.channels[].reminder": "as `alerts.reminder`, for this channel",
    "spec.alerts.channels[].timeout": "as `alerts.timeout`, for this channel",
    "spec.alerts.channels[].retries": "as `alerts.retries`, for this channel",
    "spec.alerts.channels[].allowInsecure": "allow plain HTTP / SMTP without TLS",
    "spec.alerts.channels[].url": "receiver URL written in the file",
    "spec.alerts.channels[].urlEnv": "environment variable holding the URL (a Secret as env: "
                                     "the CronJob's optional `kspec-alerts` Secret)",
    "spec.alerts.channels[].urlFile": "file holding the URL (a mounted Secret)",
    "spec.alerts.channels[].routingKeyEnv": "environment variable holding the PagerDuty "
                                            "routing key",
    "spec.alerts.channels[].routingKeyFile": "file holding the PagerDuty routing key",
    "spec.alerts.channels[].host": "SMTP server",
    "spec.alerts.channels[].port": "SMTP port",
    "spec.alerts.channels[].starttls": "upgrade the SMTP connection with STARTTLS",
    "spec.alerts.channels[].from": "sender address",
    "spec.alerts.channels[].to": "recipient addresses",
    "spec.alerts.channels[].username": "SMTP user",
    "spec.alerts.channels[].passwordEnv": "environment variable holding the SMTP password",
    "spec.alerts.channels[].passwordFile": "file holding the SMTP password",
    "spec.waivers": "accepted exceptions: waived events are neither drift nor remediated",
    "spec.waivers[].name": "the waiver's name (in reports)",
    "spec.waivers[].check": "the compliance check id it waives",
    "spec.waivers[].policy": "the policy name it waives",
    "spec.waivers[].resources": "which resources: without it, every resource of the check",
    "spec.waivers[].resources.namespace": "namespace glob",
    "spec.waivers[].resources.name": "name glob",
    "spec.waivers[].resources.labels": "labels the resource must carry",
    "spec.waivers[].reason": "why the exception is accepted (required)",
    "spec.waivers[].owner": "who answers for it (required)",
    "spec.waivers[].expires": "date it stops waiving (required; at most 90 days ahead)",
    "spec.allowLongWaivers": "allow waivers expiring more than 90 days ahead",
    "spec.clusters": "check several clusters in one run (a fleet run: node ids "
                     "`<spec>::<name>::<type>::<id>`, one report per cluster plus "
                     "`fleet-report.json`); `--kspec-context` overrides it",
    "spec.clusters[].name": "the cluster's name in node ids, reports and history (letters, "
                            "digits, `.`, `_`, `-`; unique)",
    "spec.clusters[].context": "its context in the kubeconfig (`--kspec-kubeconfig`, else "
                               "`$KUBECONFIG`, else `~/.kube/config`; or its own `kubeconfig`)",
    "spec.clusters[].kubeconfig": "a kubeconfig of its own (its current context unless "
                                  "`context` is given; relative to where the run starts)",
    "spec.storage": "the history",
    "spec.storage.type": "`sqlite` or `postgres`",
    "spec.storage.url": "with `postgres`: the `postgresql://` URL (no password in it)",
    "spec.storage.passwordEnv": "environment variable holding the PostgreSQL password",
    "spec.storage.passwordFile": "file holding the PostgreSQL password (a mounted Secret)",
    "spec.storage.path": "history database (default `<reports>/history.db`; relative paths "
                         "start in the directory the run was started in)",
    "spec.storage.retention": "runs older than this are pruned (default 30d)",
    "spec.storage.keepRuns": "report copies kept under `<reports>/runs/` (default 20)",
}

REPORT_FIELDS: Mapping[str, str] = {
    "timestamp": "when the run finished (UTC, RFC 3339)",
    "spec": "the spec checked",
    "spec.name": "`metadata.name` of the spec",
    "spec.version": "`metadata.version` of the spec",
    "drift": "the run's verdict",
    "drift.detected": "true when any check drifted",
    "drift.severity": "highest severity among the drift events (`none` without drift)",
    "drift.types": "drift types with at least one event",
    "drift.summary": "event counts",
    "drift.summary.total": "all drift events",
    "drift.summary.policies": "policy events",
    "drift.summary.compliance": "compliance events",
    "drift.summary.configuration": "configuration events",
    "drift.summary.resources": "resource events",
    "drift.summary.custom": "events from custom checks in `checks/`",
    "events": "one per drifted resource (format: the drift plan's Drift Report Format)",
    "events[].type": "`policy`, `compliance`, `configuration` or `resource`",
    "events[].severity": "`critical`, `high`, `medium`, `low` or `info`",
    "events[].resource": "`Kind/name` or `Kind/namespace/name`",
    "events[].drift": "`missing`, `deleted`, `modified`, `extra`, `violation`, "
                      "`new-violation`, `resolved`, ...",
    "events[].expected": "what the spec expects (for policies: name, action, rules)",
    "events[].actual": "what the cluster has (null when absent)",
    "events[].message": "one line for people",
    "events[].node_id": "the pytest item that found it",
    "events[].first_seen": "start of the first run that saw this drift",
    "events[].diff": "field differences (policies)",
    "events[].changed_by": "who changed it and when, from `managedFields`",
    "events[].remediation": "what was done: `action`, `status`, `timestamp`, `error`, "
                            "`details`, `dry_run`",
    "kspec": "kspec's extras (allowed by the format)",
    "kspec.version": "kspec's version",
    "kspec.spec_path": "the spec file",
    "kspec.spec_hash": "SHA-256 of the spec's content",
    "kspec.cluster": "`server`, `context` (and `namespace` in a pod); never credentials",
    "kspec.started": "when the run started",
    "kspec.finished": "when it finished",
    "kspec.items": "item counts: `total`, `passed`, `failed`, `error`, `skipped`",
    "kspec.pass_rate": "passed % of the checks evaluated; errors are counted apart (null when "
                       "none was evaluated)",
    "kspec.results": "every item: `node_id`, `type`, `id`, `status`, `severity`, `message`",
    "kspec.errors": "items that could not be evaluated, with the reason",
    "kspec.remediation": "events per remediation status",
    "kspec.trend": "pass % direction over recent runs: `direction`, `change_pp`, "
                   "`pass_rates`, `errors`, `daily`, `rule`",
    "kspec.plan": "the remediation plan written this run (`--kspec-plan`)",
    "kspec.alerts": "alerts sent this run",
    "kspec.waivers": "waivers in force, expiring soon or expired, and what they waived",
    "kspec.notices": "watch mode: what happened beside drift (an API server outage and what "
                     "changed during it, a remediation loop)",
}

PYTEST_EXIT_CODES = (
    (0, "every item passed: no drift"),
    (1, "some item failed: drift found"),
    (2, "interrupted; with kspec: the cluster could not be used at all (no kubeconfig, "
        "unknown context, unreachable, credentials rejected): one line, nothing recorded"),
    (3, "internal error"),
    (4, "usage error: bad option, invalid spec or DriftConfig (one line naming file and field)"),
    (5, "no tests collected"),
)
CLI_EXIT_CODES = (
    (EXIT_OK, "no drift"),
    (EXIT_DRIFT, "drift found (also after it was remediated: it happened)"),
    (EXIT_INCOMPLETE, "could not complete: bad input, cluster unusable, a check could not be "
                      "evaluated"),
)


class _Recorder:
    """Stands in for pytest's parser: records what ``add_options`` declares."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.ini: list[tuple[str, str]] = []

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.append((names, kwargs))

    def addini(self, name: str, help: str, *args: Any, **kwargs: Any) -> None:
        self.ini.append((name, help))


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def pytest_options() -> list[str]:
    recorder = _Recorder()
    add_options(recorder)  # type: ignore[arg-type]
    rows = ["| option | ini | meaning |", "|---|---|---|"]
    ini = {name for name, _ in recorder.ini}
    for names, kw in recorder.options:
        metavar = kw.get("metavar")
        shown = ", ".join(f"`{n}{' ' + metavar if metavar else ''}`" for n in names)
        dest = str(kw.get("dest", ""))
        rows.append(f"| {shown} | {'`' + dest + '`' if dest in ini else ''} | "
                    f"{_cell(kw.get('help', ''))} |")
    return rows


def _commands(parser: argparse.ArgumentParser, prefix: str) -> Iterator[
        tuple[str, argparse.ArgumentParser]]:
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def cli_flags() -> list[str]:
    out: list[str] = []
    for name, parser in _commands(build_parser(), "kspec"):
        actions = [a for a in parser._actions if a.option_strings
                   and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]
        if not actions or name == "kspec":
            continue
        out += ["", f"### `{name}`", "", "| flag | meaning |", "|---|---|"]
        for a in actions:
            metavar = f" {a.metavar}" if a.metavar and a.nargs != 0 else ""
            flags = ", ".join(f"`{s}{metavar}`" for s in a.option_strings)
            out.append(f"| {flags} | {_cell(a.help or '')} |")
    return out


def _schema_fields(node: Mapping[str, Any], defs: Mapping[str, Any],
                   path: str = "") -> Iterator[tuple[str, str]]:
    for key, sub in (node.get("properties") or {}).items():
        where = f"{path}.{key}" if path else key
        if "$ref" in sub:
            sub = {**defs.get(sub["$ref"].rsplit("/", 1)[-1], {}), **sub}
        yield where, _schema_type(sub)
        yield from _schema_fields(sub, defs, where)
        items = sub.get("items") or {}
        if "$ref" in items:
            items = {**defs.get(items["$ref"].rsplit("/", 1)[-1], {}), **items}
        yield from _schema_fields(items, defs, f"{where}[]")


def _schema_type(sub: Mapping[str, Any]) -> str:
    if "const" in sub:
        return f"`{sub['const']}`"
    if "enum" in sub:
        return " \\| ".join(f"`{v}`" for v in sub["enum"])
    if sub.get("$ref", "").endswith("/duration"):
        return "duration (`30s`, `5m`, `1h30m`, `7d`)"
    kind = str(sub.get("type", "object"))
    if kind == "array":
        return f"list of {_schema_type(sub.get('items') or {})}"
    return kind


def drift_config_fields() -> tuple[list[str], list[str]]:
    """(table rows, fields the schema has and the descriptions lack)."""
    schema = json.loads(resources.files("pytest_kspec.spec").joinpath(
        "schema/drift-config.json").read_text(encoding="utf-8"))
    rows = ["| field | type | meaning |", "|---|---|---|"]
    missing = []
    for path, kind in _schema_fields(schema, schema.get("$defs") or {}):
        if path not in DRIFT_CONFIG_FIELDS:
            missing.append(path)
        rows.append(f"| `{path}` | {kind} | {_cell(DRIFT_CONFIG_FIELDS.get(path, ''))} |")
    return rows, missing


def _sample_report() -> dict[str, Any]:
    report = RunReport(spec_name="s", spec_version="1", spec_path="s.yaml", spec_hash="h",
                       cluster={"server": "https://x", "context": "c"}, started="t")
    report.add(ItemRecord(node_id="s.yaml::policy::p", type="policy", id="p", status="failed",
                          severity="high", message="m", order=0, events=[
                              {"type": "policy", "severity": "high", "resource": "X/p",
                               "drift": "deleted", "expected": {}, "actual": None}]))
    return report.to_json()


def _keys(data: Mapping[str, Any], path: str = "") -> Iterator[str]:
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        yield where
        if isinstance(value, Mapping) and where not in {"kspec.items", "kspec.cluster",
                                                        "kspec.remediation", "kspec.trend"}:
            yield from _keys(value, where)


def report_fields() -> tuple[list[str], list[str]]:
    """(table rows, fields the report has and the descriptions lack)."""
    present = {k for k in _keys(_sample_report()) if not k.startswith("events")}
    missing = sorted(present - set(REPORT_FIELDS))
    rows = ["| field | meaning |", "|---|---|"]
    rows += [f"| `{k}` | {_cell(v)} |" for k, v in REPORT_FIELDS.items()]
    return rows, missing


FLEET_REPORT_FIELDS: Mapping[str, str] = {
    "timestamp": "when the last cluster's run finished (UTC, RFC 3339)",
    "spec": "the spec checked (`name`, `version`)",
    "drift": "the fleet's verdict",
    "drift.detected": "whether any cluster has drift",
    "drift.severity": "the highest severity of any cluster's drift (`none` when none)",
    "drift.clusters": "the clusters with drift",
    "clusters": "one entry per cluster that ran, in the order given",
    "clusters[].name": "the cluster's name (its context, or its DriftConfig `clusters:` name)",
    "clusters[].context": "the kubeconfig context used",
    "clusters[].server": "the API server URL",
    "clusters[].status": "`clean`, `drift`, `error` (some checks errored, no drift) or "
                         "`unreachable` (the cluster could not be used: every item errored)",
    "clusters[].error": "why the cluster could not be used (only when it could not)",
    "clusters[].drift": "its drift report's `drift` section",
    "clusters[].items": "its items per status (as `kspec.items` in a drift report)",
    "clusters[].pass_rate": "its passed checks in % of those evaluated (null: none was)",
    "clusters[].run_id": "its run's id in the history",
    "clusters[].report": "its drift report, relative to the reports folder",
    "clusters[].trend": "its pass % trend from the history (when history is on)",
    "kspec": "what kspec adds",
    "kspec.version": "pytest-kspec's version",
    "kspec.spec_path": "the spec file",
    "kspec.spec_hash": "sha256 of the spec file",
    "kspec.started": "when the first cluster's run started",
    "kspec.finished": "when the last cluster's run finished",
    "kspec.items": "items per status over every cluster",
    "kspec.unreachable": "the clusters that could not be used",
}
"""Fields of ``<reports>/fleet-report.json`` (a run over several clusters)."""


def render() -> str:
    config_rows, _ = drift_config_fields()
    report_rows, _ = report_fields()
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m pytest_kspec.plugin.reference > docs/configuration.md`;",
        "     tests/docs/test_reference.py fails when this file and the code disagree. -->",
        "",
        "Every pytest option, `kspec` flag, DriftConfig field, drift-report field and exit",
        "code. Relative paths (`--kspec-reports`, `--kspec-history`, `storage.path`) start in",
        "the directory pytest or kspec was started in, never beside the spec.",
        "",
        "## pytest options",
        "",
        *pytest_options(),
        "",
        "## kspec command-line flags",
        *cli_flags(),
        "",
        "## DriftConfig (`kspec.dev/v1`)",
        "",
        *config_rows,
        "",
        "## Drift report (`reports/drift-report.json`)",
        "",
        *report_rows,
        "",
        "## Fleet report (`reports/fleet-report.json`)",
        "",
        "Written by a run over several clusters (`--kspec-context a,b`, `all`, DriftConfig",
        "`clusters:`), beside each cluster's own drift report in",
        "`reports/clusters/<name>/drift-report.json` (the format above).",
        "",
        "| field | meaning |",
        "|---|---|",
        *[f"| `{k}` | {_cell(v)} |" for k, v in FLEET_REPORT_FIELDS.items()],
        "",
        "## Exit codes",
        "",
        "| pytest | meaning |",
        "|---|---|",
        *[f"| {code} | {_cell(text)} |" for code, text in PYTEST_EXIT_CODES],
        "",
        "| `kspec drift detect` / `remediate` | meaning |",
        "|---|---|",
        *[f"| {code} | {_cell(text)} |" for code, text in CLI_EXIT_CODES],
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
