"""JUnit XML for ``kspec drift`` runs (pytest writes its own): one test case per item; and a
fleet run's JUnit file split into one testsuite per cluster.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from junit_xml import TestCase, TestSuite

from pytest_kspec.atomic import write_bytes
from pytest_kspec.report.model import RunReport


def write_junit(report: RunReport, path: Path, properties: dict[str, dict[str, str]]) -> None:
    """Write ``report`` as a JUnit suite; ``properties`` maps node ids to item properties."""
    root = ET.Element("testsuites")
    root.append(_kspec_suite(report, properties, "kspec"))
    write_bytes(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))


def write_fleet_junit(reports: Mapping[str, RunReport], path: Path,
                      properties: dict[str, dict[str, str]]) -> None:
    """A fleet run's JUnit file: one suite per cluster, named ``kspec.<cluster>``."""
    root = ET.Element("testsuites")
    for name, report in reports.items():
        root.append(_kspec_suite(report, properties, f"kspec.{name}"))
    write_bytes(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _kspec_suite(report: RunReport, properties: dict[str, dict[str, str]],
                 suite_name: str) -> ET.Element:
    cases = []
    for record in report.ordered():
        classname, _, name = record.node_id.rpartition("::")
        case = TestCase(name=name, classname=classname.replace("::", "."), file=report.spec_path)
        if record.status == "failed":
            case.add_failure_info(message=record.message, output=_event_lines(record.events))
        elif record.status == "error":
            case.add_error_info(message=record.message)
        elif record.status == "skipped":
            case.add_skipped_info(message=record.message)
        elif record.status == "waived":  # an expected failure: a person accepted the drift
            case.add_skipped_info(message=f"waived: {record.message}",
                                  output=_event_lines(record.events))
        cases.append(case)
    suite = TestSuite(suite_name, cases, timestamp=report.started,
                      properties={"spec": f"{report.spec_name}@{report.spec_version}",
                                  "cluster": report.cluster.get("server", "")})
    suite_el: ET.Element = suite.build_xml_doc(encoding="utf-8")
    # junit-xml has no per-case properties; CI dashboards read them, so add them here.
    for record, case_el in zip(report.ordered(), suite_el.iter("testcase"), strict=True):
        props = properties.get(record.node_id)
        if props:
            holder = ET.Element("properties")
            for name, value in props.items():
                ET.SubElement(holder, "property", name=name, value=value)
            case_el.insert(0, holder)
    return suite_el


def _event_lines(events: list[dict[str, object]]) -> str:
    return "\n".join(f"{e.get('resource')}: {e.get('drift')} ({e.get('severity')}) "
                     f"{e.get('message', '')}".rstrip() for e in events)


def split_junit_by_cluster(path: Path, reports: Mapping[str, RunReport]) -> None:
    """Rewrite pytest's JUnit file of a fleet run with one ``<testsuite>`` per cluster
    (named for it, counts and time recomputed, the cluster's server and context as suite
    properties), keyed on each test case's ``kspec.cluster`` property. Cases of no cluster
    stay in the original suite; the file is replaced atomically."""
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        return
    original = suites[0]
    by_cluster: dict[str, list[ET.Element]] = {name: [] for name in reports}
    rest: list[ET.Element] = []
    for suite in suites:
        for case in list(suite.findall("testcase")):
            cluster = next((p.get("value") for p in case.iter("property")
                            if p.get("name") == "kspec.cluster"), None)
            (by_cluster.setdefault(cluster, []) if cluster is not None else rest).append(case)
    out = ET.Element("testsuites", dict(root.attrib) if root.tag == "testsuites" else {})
    common = {k: v for k, v in original.attrib.items() if k in ("timestamp", "hostname")}
    base = original.get("name") or "pytest"
    if rest:
        out.append(_suite(base, rest, common, original.find("properties")))
    for name, cases in by_cluster.items():
        if not cases:
            continue
        props = ET.Element("properties")
        report = reports.get(name)
        where = dict(report.cluster) if report is not None else {}
        for key, value in (("kspec.cluster", name), ("kspec.context", where.get("context", "")),
                           ("kspec.server", where.get("server", ""))):
            if value:
                ET.SubElement(props, "property", name=key, value=value)
        out.append(_suite(f"{base}.{name}", cases, common, props))
    write_bytes(path, ET.tostring(out, encoding="utf-8", xml_declaration=True))


def _suite(name: str, cases: list[ET.Element], common: Mapping[str, str],
           properties: ET.Element | None) -> ET.Element:
    def count(tag: str) -> int:
        return sum(1 for c in cases if c.find(tag) is not None)

    time = sum(float(c.get("time") or 0) for c in cases)
    suite = ET.Element("testsuite", {
        "name": name, "errors": str(count("error")), "failures": str(count("failure")),
        "skipped": str(count("skipped")), "tests": str(len(cases)), "time": f"{time:.3f}",
        **common})
    if properties is not None and len(properties):
        suite.append(properties)
    suite.extend(cases)
    return suite
