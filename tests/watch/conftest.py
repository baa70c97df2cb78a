"""Watch-mode helpers: ``kspec drift detect --watch`` in a subprocess against an in-process
simulator the test edits, with its output read line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.conftest import cluster  # noqa: F401  (the e2e cluster fixture)

from pytest_kspec.sim import Simulator
from tests.alerts.conftest import receiver  # noqa: F401  (loopback HTTP receiver)


class WatchProcess:
    """A running ``kspec drift detect --watch``; ``wait_for`` a line matching a regex."""

    def __init__(self, cwd: Path, kubeconfig: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env["KUBECONFIG"] = str(cwd / "no-such-kubeconfig")
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--watch",
             "--spec", "cluster-spec.yaml", "--kubeconfig", kubeconfig, *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern: str, *, after: int = 0, timeout: float = 60) -> re.Match[str]:
        """The first line from index ``after`` on matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[after:]:
                    found = regex.search(line)
                    if found:
                        return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r}:\n" + self.text())
                self._cond.wait(min(remaining, 0.5))

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.close()
        return code

    def close(self) -> None:
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def watcher() -> Iterator[list[WatchProcess]]:
    started: list[WatchProcess] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(timeout=10)
        w.close()


@pytest.fixture
def sim(cluster: object) -> Iterator[Simulator]:  # noqa: F811  (uses the fixture)
    with Simulator(objects=cluster.objects, kyverno=True,  # type: ignore[attr-defined]
                   version="1.29.4") as s:
        yield s
