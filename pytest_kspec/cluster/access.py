"""Opens the cluster a run talks to: a kubeconfig context, in-cluster, or the embedded simulator.

The plugin and the CLI both go through :class:`ClusterAccess`, so ``--kspec-sim`` and a real
cluster behave the same from the first request on.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_kspec.cluster import DEFAULT_SIM_VERSION
from pytest_kspec.cluster.client import Cluster, RetryPolicy
from pytest_kspec.cluster.snapshot import Snapshot
from pytest_kspec.errors import ApiError, ClusterError

if TYPE_CHECKING:
    from pytest_kspec.sim import Simulator

log = logging.getLogger("pytest_kspec.cluster.access")


@dataclass(frozen=True)
class AccessOptions:
    """Where the cluster is: ``sim_state`` wins over ``kubeconfig``/``context``."""

    kubeconfig: str | None = None
    context: str | None = None
    sim_state: tuple[Path, ...] = ()
    sim_version: str = DEFAULT_SIM_VERSION
    retry: RetryPolicy | None = None
    kubeconfig_flag: str = "--kspec-kubeconfig"  # how hints name the options (CLI: --kubeconfig)
    sim_flag: str = "--kspec-sim"
    kubeconfig_hint: str | None = None  # what a missing kubeconfig asks for, when not the flags


class ClusterAccess:
    """Starts the simulator when asked, connects lazily, and hands out one shared snapshot."""

    def __init__(self, options: AccessOptions) -> None:
        self.options = options
        self.simulator: Simulator | None = None
        self._kubeconfig = options.kubeconfig
        self._cluster: Cluster | None = None
        self._snapshot: Snapshot | None = None
        self._fatal: ApiError | None = None
        self.unusable: ClusterError | None = None  # set by mark_unusable(): every use raises it

    @property
    def kubeconfig(self) -> str | None:
        return self._kubeconfig

    def start_simulator(self) -> str | None:
        """Start the embedded simulator if ``sim_state`` was given; returns its kubeconfig."""
        if not self.options.sim_state or self.simulator is not None:
            return self._kubeconfig
        from pytest_kspec.sim import Simulator, load_objects

        objects = load_objects(list(self.options.sim_state))
        sim = Simulator(objects=objects, version=self.options.sim_version, kyverno=True)
        sim.start()
        self.simulator = sim
        self._kubeconfig = str(sim.kubeconfig_path)
        log.info("simulator serving %d objects at %s", len(objects), sim.url)
        return self._kubeconfig

    def use_kubeconfig(self, path: str) -> None:
        """Point at a kubeconfig prepared elsewhere (an xdist worker gets the controller's)."""
        self._kubeconfig = path

    def mark_unusable(self, error: str) -> None:
        """Known unusable (the run checked it and it failed): every later use raises
        :class:`ClusterError` with ``error`` at once, without connecting again."""
        self.unusable = ClusterError(error)

    def cluster(self) -> Cluster:
        if self.unusable is not None:
            raise self.unusable
        if self._cluster is None:
            self._cluster = self._connect()
        return self._cluster

    def _connect(self) -> Cluster:
        context = None if self.options.sim_state else self.options.context
        hint = (self.options.kubeconfig_hint
                or f"pass {self.options.kubeconfig_flag} PATH or {self.options.sim_flag} STATE")
        return Cluster.connect(self._kubeconfig, context, retry=self.options.retry, hint=hint)

    def snapshot(self) -> Snapshot:
        """The run's snapshot; raises the first transport failure for every caller after it."""
        if self._fatal is not None:
            raise self._fatal
        if self.unusable is not None:
            raise self.unusable
        if self._snapshot is None:
            snap = Snapshot(self.cluster())
            try:
                snap.server_version()
            except ApiError as e:
                if e.status == 0:  # unreachable: every item would wait through retries again
                    self._fatal = e
                    raise
            self._snapshot = snap
        return self._snapshot

    def check(self) -> None:
        """Reach the API server once, before any check runs.

        Raises :class:`ClusterError` (one line) when the cluster cannot be used at all: no
        kubeconfig, an unknown context, unreadable credentials, a server that does not
        answer or rejects the credentials (401). Other answers (a 403 on ``/version``) are
        left to the checks, which then error one by one, naming the resource.
        """
        try:
            self.snapshot().server_version()
        except ApiError as e:
            if e.status in (0, 401):
                raise
            log.info("cluster check: %s", e)

    def refresh(self) -> None:
        """Forget the snapshot (and a past transport failure): the next read lists afresh."""
        self._snapshot = None
        self._fatal = None

    def describe(self) -> dict[str, str]:
        """Server URL and context, for headers and reports (never credentials)."""
        if self.simulator is not None:
            return {"server": self.simulator.url, "context": "kspec-sim (embedded simulator)"}
        try:
            if self._cluster is None:  # also when unusable: the kubeconfig still names it
                self._cluster = self._connect()
            cluster = self._cluster
        except ClusterError as e:
            return {"server": "", "context": "", "error": str(e)}
        where = {"server": cluster.server, "context": cluster.context}
        if cluster.namespace:
            where["namespace"] = cluster.namespace
        return where

    def close(self) -> None:
        """Close the connection and stop the simulator; the snapshot is let go too (at 10k
        pods it holds tens of MB that pytest's final garbage collection would walk)."""
        self._snapshot = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None


def sim_paths(values: Sequence[str] | None, *, flag: str = "--kspec-sim") -> tuple[Path, ...]:
    """``--kspec-sim`` (``flag``) values as paths, each checked to exist."""
    out: list[Path] = []
    for value in values or ():
        path = Path(value)
        if not path.exists():
            raise ClusterError(f"{value}: simulator state not found ({flag} takes a YAML "
                               "file or a folder of them)")
        out.append(path)
    return tuple(out)

