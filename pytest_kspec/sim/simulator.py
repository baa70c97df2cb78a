"""The Simulator: an in-memory Kubernetes API server on 127.0.0.1 for tests, demos and users.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import base64
import builtins
import shutil
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources as pkg_resources
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from pytest_kspec.errors import SimulatorError
from pytest_kspec.sim.admission.webhook import KyvernoWebhook
from pytest_kspec.sim.api import Verbs
from pytest_kspec.sim.auth import Authenticator
from pytest_kspec.sim.controllers import Clock, Manager, install, make_node
from pytest_kspec.sim.faults import Faults, Hook, Hooks
from pytest_kspec.sim.kyverno_crds import clusterpolicy_crd
from pytest_kspec.sim.loader import dump_objects, load_objects
from pytest_kspec.sim.resources import Registry, ResourceType
from pytest_kspec.sim.server import HttpServer, RequestRecord
from pytest_kspec.sim.status import StatusError
from pytest_kspec.sim.store import Entry, Store, gc_paused
from pytest_kspec.sim.writes import NS_KEY, Writer

MANAGER = "kspec-sim"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_FIRST = {("v1", "Namespace"): 0, ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): 1}


def _data(name: str) -> str:
    return pkg_resources.files("pytest_kspec.sim").joinpath(f"data/{name}").read_text(
        encoding="utf-8")


class Simulator:
    """An in-memory Kubernetes API server speaking the REST protocol over HTTP on loopback.

    ``with Simulator(objects, version="1.29.4") as sim:`` starts it (``start()``/``stop()``
    do the same by hand; a restarted simulator serves on the same port with the same state).
    Point clients at ``sim.kubeconfig_path`` (context ``kspec-sim``, admin token) or build
    one for another user with ``kubeconfig_for(token)``; ``users`` maps extra bearer tokens to
    ``(username, groups)``, authorized from the stored RBAC objects when ``rbac=True``.
    ``kyverno=True`` preloads Kyverno's CRDs (``kyverno="1.12"`` / ``"1.13"``: the
    ClusterPolicy CRD with that version's structural schema, which prunes undeclared fields and
    refuses them under ``fieldValidation=Strict``); while they are served, API creates and
    updates of Pods and workload controllers go through Kyverno admission (Enforce
    ClusterPolicies refuse them with Kyverno's message, see :mod:`pytest_kspec.sim.admission`)
    unless ``admission=False`` or ``admission_enabled`` is set false. It serves HTTPS with a
    bundled self-signed certificate (``ca_path``; kubectl only sends tokens over TLS);
    ``tls=False`` serves HTTP. Controllers run on what API writes change (a fake kubelet per
    Node runs pods, workload controllers make pods, the garbage collector honours
    ownerReferences); loaded state and direct writes are kept as they are. ``nodes`` adds
    that many Ready Nodes when the state has fewer; ``kubelet_delay`` is the seconds between
    a pod's phases (0: at once); ``clock`` is the time controllers see (``advance()`` moves
    it), ``settle()`` waits for them. ``watch_window`` is how many events watches can resume
    from before a 410 Expired. ``faults``, ``on_request``, ``requests`` and ``writes()``
    serve reliability tests; ``create/get/update/delete/list`` write the store directly
    (as manager ``kspec-sim``, with resourceVersions and watch events like API writes).
    """

    def __init__(self, objects: Iterable[dict[str, Any]] | None = None, *,
                 version: str = "1.29.4", port: int = 0, kyverno: bool | str = False,
                 rbac: bool = False,
                 users: Mapping[str, tuple[str, Sequence[str]]] | None = None,
                 watch_window: int = 1000, tls: bool = True, admission: bool = True,
                 nodes: int = 0, kubelet_delay: float = 0.0) -> None:
        self.version = version
        self.tls = tls
        self.rbac = rbac
        self.bookmark_interval = 1.0
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._hooks = Hooks()
        self._store = Store(watch_window)
        self._registry = Registry()
        self._writer = Writer(self._store, self._registry)
        self._webhook = KyvernoWebhook(self._store, self._registry, enabled=admission)
        self._controllers = Manager(self._store, self._writer, self._registry)
        install(self._controllers, version=version, kubelet_delay=kubelet_delay)
        self._verbs = Verbs(self._store, self._writer, lambda: self.rbac, self._webhook)
        self._auth = Authenticator(users)
        self._stopping = threading.Event()
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = port
        self._tmp = tempfile.mkdtemp(prefix="kspec-sim-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        self.kube_system_uid = str(uuid.uuid4())
        self._preloaded: set[tuple[Any, str, str]] = set()
        tls_data = yaml.safe_load(_data("tls.yaml"))
        self._cert_pem = str(tls_data["certificate"])
        Path(self.ca_path).write_text(self._cert_pem, encoding="utf-8")
        key_path = Path(self._tmp) / "tls.key"
        key_path.write_text(str(tls_data["key"]), encoding="utf-8")
        self._tls_files = (self.ca_path, str(key_path))
        with self._controllers.muted():
            self._preload(kyverno)
        if objects is not None:
            self._load_all(list(objects))
        self.ensure_nodes(nodes)

    def _preload(self, kyverno: bool | str) -> None:
        for ns in DEFAULT_NAMESPACES:
            meta: dict[str, Any] = {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}
            if ns == "kube-system":
                meta["uid"] = self.kube_system_uid
            self._load_one({"apiVersion": "v1", "kind": "Namespace", "metadata": meta},
                           preload=True)
        if kyverno:
            for crd in yaml.safe_load_all(_data("kyverno-crds.yaml")):
                if crd and isinstance(kyverno, str) and \
                        crd["metadata"]["name"] == "clusterpolicies.kyverno.io":
                    crd = clusterpolicy_crd(crd, kyverno)
                if crd:
                    self._load_one(crd, preload=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Simulator:
        if self._server is not None:
            return self
        self._stopping = threading.Event()
        try:
            self._server = HttpServer(("127.0.0.1", self._port), self,
                                      self._tls_files if self.tls else None)
        except OSError as e:
            raise SimulatorError(f"cannot listen on 127.0.0.1:{self._port}: {e}; pick another "
                                 "port or pass port=0") from e
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"kspec-sim-{self._port}", daemon=True)
        self._thread.start()
        self._controllers.start()
        self._write_kubeconfig(self._auth.admin_token, self.kubeconfig_path)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        self._controllers.stop()
        with self._store.cond:
            self._store.cond.notify_all()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def admission_enabled(self) -> bool:
        """Whether API writes of Pods and controllers go through Kyverno admission."""
        return self._webhook.enabled

    @admission_enabled.setter
    def admission_enabled(self, value: bool) -> None:
        self._webhook.enabled = bool(value)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        if not self._port:
            raise SimulatorError("the simulator has no port yet; call start() first")
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def ca_path(self) -> str:
        """PEM file of the certificate the simulator serves (``verify=`` for requests)."""
        return str(Path(self._tmp) / "ca.crt")

    @property
    def admin_token(self) -> str:
        return self._auth.admin_token

    @property
    def kubeconfig_path(self) -> str:
        return str(Path(self._tmp) / "kubeconfig")

    def add_token(self, token: str, user: str, groups: Sequence[str] = ()) -> None:
        """Accept ``token`` as ``user`` from now on (a service-account token being issued)."""
        self._auth.add(token, user, groups)

    def revoke_token(self, token: str) -> None:
        """Reject ``token`` from now on with 401 (a bound token that expired)."""
        self._auth.revoke(token)

    def kubeconfig_for(self, token: str, path: str | None = None) -> str:
        """Write a kubeconfig using ``token`` (to ``path`` or a temp file); return its path."""
        target = path or str(Path(self._tmp) / f"kubeconfig-{uuid.uuid4().hex[:8]}")
        self._write_kubeconfig(token, target)
        return target

    def _write_kubeconfig(self, token: str, path: str) -> None:
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls:
            cluster["certificate-authority-data"] = base64.b64encode(
                self._cert_pem.encode()).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "kspec-sim",
            "clusters": [{"name": "kspec-sim", "cluster": cluster}],
            "users": [{"name": "kspec-sim", "user": {"token": token}}],
            "contexts": [{"name": "kspec-sim",
                          "context": {"cluster": "kspec-sim", "user": "kspec-sim",
                                      "namespace": "default"}}],
            "preferences": {},
        }
        Path(path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    # --- state -------------------------------------------------------------------------------
    def load(self, paths: str | Path | Iterable[str | Path]) -> builtins.list[dict[str, Any]]:
        """Add the objects of YAML files/folders; returns them as stored."""
        return [entry.obj for entry in self._load_all(load_objects(paths))]

    def _load_all(self, objects: list[dict[str, Any]]) -> list[Entry]:
        ordered = sorted(objects, key=lambda o: _FIRST.get(
            (str(o.get("apiVersion")), str(o.get("kind"))), 2))
        with self._controllers.muted(), gc_paused():
            return [self._load_one(o) for o in ordered]

    def ensure_nodes(self, count: int) -> builtins.list[str]:
        """Add Ready Nodes (``kspec-sim-node-N``) until at least ``count`` exist; their names."""
        existing = {e.name for e in self._store.entries(("", "nodes"))}
        index = 0
        while len(existing) < count:
            index += 1
            name = f"kspec-sim-node-{index}"
            if name not in existing:
                self.create(make_node(name, self.version, self.clock.stamp()))
                existing.add(name)
        return [e.name for e in self._store.entries(("", "nodes"))]

    def _load_one(self, obj: dict[str, Any], *, preload: bool = False) -> Entry:
        """Store one object as loaded state. What the simulator preloads itself (the default
        namespaces, Kyverno's CRDs) gives way to the same object in the state: a namespace
        dumped from a real cluster keeps its labels and uid."""
        rt = self._type(obj)
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default" if rt.namespaced else None
        ident = (rt.key, ns or "", str(meta.get("name") or ""))
        try:
            if ns and self._store.get(NS_KEY, "", ns) is None:
                self._load_one({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": ns}})
            existing = self._store.get(*ident)
            if existing is not None and ident in self._preloaded:
                self._preloaded.discard(ident)
                self._store.remove(*ident)
            elif existing is not None and rt.key == NS_KEY:
                return existing  # created for an earlier object: keep it
            entry = self._writer.load(rt, obj, ns, manager=MANAGER)
            if preload:
                self._preloaded.add(ident)
            if ident == (NS_KEY, "", "kube-system"):
                self.kube_system_uid = str(entry.body["metadata"]["uid"])
            return entry
        except StatusError as e:
            where = f"{ns}/" if ns else ""
            raise SimulatorError(f"{obj.get('kind')} {where}{meta.get('name')}: {e.message}"
                                 ) from e

    def dump(self) -> str:
        """Every stored object as multi-document YAML (namespaces, CRDs, then by apiVersion,
        kind, namespace, name)."""
        objs = [e.copy() for key in self._store.resource_keys() for e in self._store.entries(key)]
        objs.sort(key=lambda o: (_FIRST.get((o["apiVersion"], o["kind"]), 2), o["apiVersion"],
                                 o["kind"], o["metadata"].get("namespace", ""),
                                 o["metadata"]["name"]))
        return dump_objects(objs)

    def _type(self, obj: Any) -> ResourceType:
        if not isinstance(obj, dict):
            raise SimulatorError(f"expected a Kubernetes object (a mapping), got {obj!r:.60}")
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        return self._type_of(api_version, kind)

    def _type_of(self, api_version: str, kind: str) -> ResourceType:
        rt = self._registry.by_kind(api_version, kind)
        if rt is None or not rt.stored:
            raise SimulatorError(f"{api_version} {kind}: the simulator serves no such type; "
                                 "create its CustomResourceDefinition first")
        return rt

    # --- direct store access -----------------------------------------------------------------
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self._type(obj)
        ns = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
        with self._controllers.muted():
            return self._writer.create(rt, obj, ns, manager=MANAGER)

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        rt = self._type_of(api_version, kind)
        entry = self._store.get(rt.key, (namespace or "default") if rt.namespaced else "", name)
        return entry.copy() if entry is not None else None

    def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        rt = self._type(obj)
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or "default") if rt.namespaced else None
        with self._controllers.muted():
            return self._writer.update(rt, obj, ns, str(meta.get("name")), manager=MANAGER)

    def delete(self, api_version: str, kind: str, name: str,
               namespace: str | None = None) -> dict[str, Any]:
        rt = self._type_of(api_version, kind)
        ns = (namespace or "default") if rt.namespaced else None
        with self._controllers.muted():
            obj, _gone = self._writer.delete(rt, ns, name)
        return obj

    def list(self, api_version: str, kind: str,
             namespace: str | None = None) -> list[dict[str, Any]]:
        rt = self._type_of(api_version, kind)
        return [e.copy() for e in self._store.entries(rt.key, namespace)]

    # --- controllers -------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        """The time controllers see (CronJob schedules, status timestamps)."""
        return self._controllers.clock

    def advance(self, seconds: float) -> None:
        """Move the cluster's clock forward and run what falls due (CronJobs, ...)."""
        self._controllers.clock.advance(seconds)
        self._controllers.tick()
        self._controllers.drain()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until the controllers have nothing left to do soon; False on timeout."""
        return self._controllers.settle(timeout)

    def reconcile(self) -> None:
        """Run every controller over every object now, loaded state included (a state
        file's Deployment then gets its ReplicaSet and pods)."""
        self._controllers.reconcile_all()
        self._controllers.drain()

    @property
    def resource_version(self) -> int:
        """The cluster-wide resourceVersion of the last write."""
        return self._store.rv

    # --- observation and faults --------------------------------------------------------------
    def expire_watches(self) -> None:
        """Compact the watch history: every open watch stream gets the ``ERROR`` event with
        410 Expired (``too old resource version``) and ends, and resuming from any older
        resourceVersion is refused the same way, as after an etcd compaction; clients must
        re-list."""
        self._store.compact()

    def on_request(self, callback: Callable[[Simulator, str, str, dict[str, str]], None], *,
                   method: str | None = None, path: str | None = None, count: int = 1) -> Hook:
        """Call ``callback(sim, method, path, query)`` just before the next ``count``
        matching requests are handled (``path`` is a regex searched in the request path)."""
        return self._hooks.add(callback, method, path, count)

    def writes(self) -> builtins.list[RequestRecord]:
        """Records of create/update/patch/delete/deletecollection requests (not dryRun)."""
        with self._records_lock:
            return [r for r in self.requests if r.is_write]
