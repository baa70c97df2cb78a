"""JUnit XML for ``kspec drift`` runs (pytest writes its own): one test case per item.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from junit_xml import TestCase, TestSuite

from pytest_kspec.atomic import write_bytes
from pytest_kspec.report.model import RunReport


def write_junit(report: RunReport, path: Path, properties: dict[str, dict[str, str]]) -> None:
    """Write ``report`` as a JUnit suite; ``properties`` maps node ids to item properties."""
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
    suite = TestSuite("kspec", cases, timestamp=report.started,
                      properties={"spec": f"{report.spec_name}@{report.spec_version}",
                                  "cluster": report.cluster.get("server", "")})
    root = ET.Element("testsuites")
    suite_el = suite.build_xml_doc(encoding="utf-8")
    # junit-xml has no per-case properties; CI dashboards read them, so add them here.
    for record, case_el in zip(report.ordered(), suite_el.iter("testcase"), strict=True):
        props = properties.get(record.node_id)
        if props:
            holder = ET.Element("properties")
            for name, value in props.items():
                ET.SubElement(holder, "property", name=name, value=value)
            case_el.insert(0, holder)
    root.append(suite_el)
    write_bytes(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _event_lines(events: list[dict[str, object]]) -> str:
    return "\n".join(f"{e.get('resource')}: {e.get('drift')} ({e.get('severity')}) "
                     f"{e.get('message', '')}".rstrip() for e in events)
