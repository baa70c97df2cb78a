"""Which clusters one run checks: ``--kspec-context a,b``, ``all``, or DriftConfig ``clusters:``.

One cluster (no option, a single context name, a one-entry ``clusters:``) is the classic run:
node ids and reports as they always were. More than one makes a fleet run: each cluster gets
its own items (``<spec>::<cluster>::<type>::<id>``), report folder and history scope.

What the user typed is checked here, offline (the kubeconfig is read with the stage's own
reader, :func:`~pytest_kspec.cluster.kubeconfig.read_kubeconfig`, merging ``$KUBECONFIG`` as
kubectl does; nothing connects):
a context that is not in the kubeconfig is one line naming the file and listing the contexts it
has. A cluster whose own ``kubeconfig:`` file is missing is not an input error of the whole run:
its items error when it is used, the other clusters run.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_kspec.cluster.kubeconfig import read_kubeconfig
from pytest_kspec.errors import ClusterError

if TYPE_CHECKING:
    from pytest_kspec.spec import ClusterEntry

ALL = "all"


@dataclass(frozen=True)
class ClusterRef:
    """One cluster of a run: ``name`` ("" in a classic one-cluster run: the context tells),
    its kubeconfig ``context`` (None: the file's current one) and ``kubeconfig`` file (None:
    kubectl's search, then in-cluster)."""

    name: str
    context: str | None = None
    kubeconfig: str | None = None
    hint: str | None = None  # what to fix when ``kubeconfig`` is missing (None: the flags)

    @property
    def folder(self) -> str:
        """The name as a folder name (context names may hold ``/`` or ``:``)."""
        return re.sub(r"[^A-Za-z0-9._-]", "_", self.name) or "cluster"


def select_clusters(option: str | None, *, kubeconfig: str | None,
                    configured: Sequence[ClusterEntry] = (), base: Path = Path(),
                    check: bool = True, flag: str = "--kspec-context",
                    kubeconfig_flag: str = "--kspec-kubeconfig") -> list[ClusterRef]:
    """The clusters to check, in the order given (``all``: the kubeconfig's order).

    ``option`` is the raw ``--kspec-context`` value and wins over ``configured`` (the
    DriftConfig's ``clusters:``). ``check`` False skips reading kubeconfigs where the names are
    known without them (``--collect-only`` needs no cluster and no kubeconfig).
    Raises :class:`ClusterError` with one line naming the option and what to do.
    """
    if option is not None:
        value = option.strip()
        if value == ALL:
            return _all_contexts(kubeconfig, flag, kubeconfig_flag)
        if "," not in value:
            if not value:
                raise ClusterError(f"{flag}: empty context name (give a context, a list a,b, "
                                   f"or {ALL})")
            return [ClusterRef("", value, kubeconfig)]
        names = _names(value, flag)
        if check:
            known, source = _contexts(kubeconfig, f"{flag} {value}", kubeconfig_flag)
            for name in names:
                _require(name, known, source, flag)
        refs = [ClusterRef(n, n, kubeconfig) for n in names]
        _distinct_folders(refs, flag)
        return refs
    if not configured:
        return [ClusterRef("", None, kubeconfig)]
    refs = []
    for entry in configured:
        own = entry.kubeconfig
        path = str(base / own) if own and not Path(own).is_absolute() else own
        hint = (f"fix the kubeconfig of the DriftConfig's clusters: entry {entry.name!r}"
                if own else None)
        refs.append(ClusterRef(entry.name, entry.context, path or kubeconfig, hint))
        where = path or kubeconfig
        if check and entry.context and (where is None or Path(where).is_file()):
            # a missing file is this cluster's problem at run time, not the run's
            config = read_kubeconfig(where)
            if config is not None:
                _require(entry.context, config.context_names(), config.source,
                         f"clusters: {entry.name}: context")
    return refs


def _contexts(kubeconfig: str | None, where: str,
              kubeconfig_flag: str) -> tuple[list[str], str]:
    """The context names of the run's kubeconfig and how messages name it."""
    try:
        config = read_kubeconfig(kubeconfig, hint=f"pass {kubeconfig_flag} PATH")
    except ClusterError as e:
        raise ClusterError(f"{where}: {e}") from None
    if config is None:
        raise ClusterError(f"{where}: no kubeconfig to read the contexts of (pass "
                           f"{kubeconfig_flag} PATH or set KUBECONFIG)")
    return config.context_names(), config.source


def _require(name: str, known: Sequence[str], source: str, flag: str) -> None:
    if name not in known:
        raise ClusterError(f"{flag}: no context {name!r} in {source} (it has: "
                           f"{', '.join(known) or 'no contexts'})")


def _names(value: str, flag: str) -> list[str]:
    names: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if not name:
            raise ClusterError(f"{flag} {value}: empty name in the list (write a,b,c)")
        if name == ALL:
            raise ClusterError(f"{flag} {value}: {ALL} means every context; give it alone")
        if "::" in name:
            raise ClusterError(f"{flag}: context {name!r} holds '::', which separates node id "
                               "parts: name it in a DriftConfig clusters: entry instead")
        if name in names:
            raise ClusterError(f"{flag} {value}: {name!r} is named twice")
        names.append(name)
    return names


def _all_contexts(kubeconfig: str | None, flag: str,
                  kubeconfig_flag: str) -> list[ClusterRef]:
    names, source = _contexts(kubeconfig, f"{flag} {ALL}", kubeconfig_flag)
    if not names:
        raise ClusterError(f"{flag} {ALL}: {source} has no contexts")
    bad = next((n for n in names if "::" in n), None)
    if bad is not None:
        raise ClusterError(f"{flag} {ALL}: context {bad!r} in {source} holds '::', which "
                           "separates node id parts: list the clusters in a DriftConfig "
                           "clusters: section instead")
    refs = [ClusterRef(n, n, kubeconfig) for n in names]
    _distinct_folders(refs, flag)
    return refs


def _distinct_folders(refs: Sequence[ClusterRef], flag: str) -> None:
    seen: dict[str, str] = {}
    for ref in refs:
        other = seen.setdefault(ref.folder, ref.name)
        if other != ref.name:
            raise ClusterError(f"{flag}: contexts {other!r} and {ref.name!r} would share the "
                               f"report folder {ref.folder!r}: name them in a DriftConfig "
                               "clusters: section instead")
