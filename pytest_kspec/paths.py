"""Where a run writes and how it names its items, whatever pytest's rootdir is.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.

pytest derives its rootdir from every path on the command line (``--kspec-spec
/etc/kspec/cluster-spec.yaml`` makes it ``/``; a ``--kspec-sim`` file in another checkout makes
it that checkout), so nothing here depends on it: relative paths start in the directory pytest
or kspec was started in, and node ids start with the spec's name. Light on purpose: the plugin
imports it at load time.
"""

from __future__ import annotations

import os
from pathlib import Path


def under(base: Path, path: str | Path) -> Path:
    """``path`` resolved against ``base`` when relative (reports, history, plans: never beside
    the spec, never under pytest's rootdir)."""
    return Path(path) if Path(path).is_absolute() else base / path


def spec_node_id(spec: Path, base: Path) -> str:
    """The first part of every node id: the spec's path relative to ``base`` (the directory
    the run was started in) when the spec lies inside it, else its file name.

    Never a ``../`` path and never dependent on pytest's rootdir: the history keys on node
    ids, so ``/etc/kspec/cluster-spec.yaml`` run from ``/app`` is ``cluster-spec.yaml::…``
    on every run.
    """
    path = Path(os.path.abspath(base / spec))
    try:
        return path.relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return path.name
