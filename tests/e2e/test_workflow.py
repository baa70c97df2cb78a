""".github/workflows/e2e.yaml cannot run here (no Docker): it parses, runs the real-cluster steps
in order, and every kspec command in it exists with the flags it passes."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.cli.main import build_parser

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "e2e.yaml"


def _steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert doc["name"] and doc[True if True in doc else "on"]  # YAML 1.1 reads `on` as True
    (job,) = doc["jobs"].values()
    return list(job["steps"])


def _kspec_commands() -> list[list[str]]:
    commands = []
    for step in _steps():
        for line in str(step.get("run", "")).splitlines():
            for part in line.split("|"):
                text = part.split("#", 1)[0].strip()
                if text.startswith("kspec "):
                    commands.append(shlex.split(text))
    return commands


def test_workflow_creates_kind_and_installs_kyverno_from_helm() -> None:
    steps = _steps()
    assert any(str(s.get("uses", "")).startswith("helm/kind-action@") for s in steps)
    runs = "\n".join(str(s.get("run", "")) for s in steps)
    assert "helm install kyverno kyverno/kyverno" in runs and "--wait" in runs
    assert "kspec policies --spec \"$SPEC\" | kubectl apply -f -" in runs
    assert "kubectl delete clusterpolicy " in runs


def test_the_steps_run_in_the_order_of_the_story() -> None:
    names = [str(s.get("name", "")) for s in _steps()]
    order = ["Install Kyverno", "Apply the policies", "Detect (no drift yet", "Delete one policy",
             "Detect (drift expected, exit 1)", "Remediate", "Detect again (no drift, exit 0)"]
    positions = [next(i for i, n in enumerate(names) if n.startswith(o)) for o in order]
    assert positions == sorted(positions)
    detect = next(s for s in _steps() if str(s.get("name")).startswith("Detect (drift expected"))
    assert 'test "$code" -eq 1' in detect["run"]
    assert 'report["drift"]["detected"] is True' in detect["run"]


@pytest.mark.parametrize("command", _kspec_commands(), ids=lambda c: " ".join(c[:3]))
def test_every_kspec_command_exists_with_its_flags(command: list[str]) -> None:
    argv = [w.replace("$SPEC", "spec.yaml") for w in command[1:]]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: unknown command or flag
        pytest.fail(f"{shlex.join(command)}: not a valid kspec command ({e})")
    assert callable(args.handler)


def test_the_workflow_covers_detect_remediate_and_policies() -> None:
    verbs = {tuple(c[1:3]) if c[1] == "drift" else (c[1],) for c in _kspec_commands()}
    assert {("drift", "detect"), ("drift", "remediate"), ("policies",)} <= verbs
