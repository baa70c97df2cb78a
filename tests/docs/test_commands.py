"""Every shell block marked ``sh runnable`` in docs/ runs, as a user would, against the simulator.

A block is fenced as ```` ```sh runnable ```` (optionally ``exit=N``): each line is one command,
run from a directory holding copies of ``examples/``, ``checks/`` and ``manifests/``; the first
line must exit N (default 0), every later line 0.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FENCE = re.compile(r"^```sh runnable(?: exit=(\d+))?\n(.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[str, int, list[str]]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text()
        for match in FENCE.finditer(text):
            line = text[:match.start()].count("\n") + 1
            commands = [c for c in match.group(2).splitlines() if c.strip()]
            found.append((f"{doc.name}:{line}", int(match.group(1) or 0), commands))
    return found


BLOCKS = _blocks()


def test_the_docs_have_runnable_blocks() -> None:
    assert len(BLOCKS) >= 10
    assert {b[0].split(":")[0] for b in BLOCKS} >= {
        "detection.md", "remediation.md", "deployment.md", "troubleshooting.md",
        "custom-checks.md"}


@pytest.mark.parametrize(("where", "code", "commands"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_runnable_block(where: str, code: int, commands: list[str], tmp_path: Path) -> None:
    if any(c.startswith("kubectl") for c in commands) and shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    for folder in ("examples", "checks", "manifests"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["KUBECONFIG"] = str(tmp_path / "no-such-kubeconfig")  # never the developer's cluster
    env["HOME"] = str(tmp_path)
    for i, command in enumerate(commands):
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        expected = code if i == 0 else 0
        assert proc.returncode == expected, (
            f"{where}: `{command}` exited {proc.returncode}, expected {expected}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        assert "Traceback" not in proc.stderr, proc.stderr
