"""API access: kubeconfig / in-cluster connection, discovery, raw-JSON requests with retries.

Everything here speaks raw JSON (dicts as the API server sends them), never the official
client's model objects: at 10k pods the models cost several times the memory and time.
Requests go through our own :mod:`.transport` (urllib3); :mod:`.connect` finds the server
and the credentials as kubectl does.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import urllib3

from pytest_kspec.cluster.connect import connect
from pytest_kspec.cluster.transport import Transport
from pytest_kspec.errors import ApiError

log = logging.getLogger("pytest_kspec.cluster.client")

Objects = list[dict[str, Any]]
_Slot = list[str]
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_TRANSIENT = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.DecodeError,
    urllib3.exceptions.SSLError,  # a handshake cut short; a certificate refused is not retried
    urllib3.exceptions.ProxyError,
    ConnectionError,
    TimeoutError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``Retry-After`` is honoured up to ``max_wait``."""

    attempts: int = 5
    base: float = 0.2
    cap: float = 5.0
    max_wait: float = 30.0
    timeout: tuple[float, float] = (5.0, 60.0)

    def delay(self, attempt: int, retry_after: str | None, rng: random.Random) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_wait)
            except ValueError:
                pass
        return rng.uniform(0, min(self.cap, self.base * (2 ** attempt)))


@dataclass(frozen=True)
class Resource:
    """How one kind is served: ``/apis/apps/v1[/namespaces/ns]/deployments``."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = api_prefix(self.api_version)
        if self.namespaced and namespace:
            prefix += f"/namespaces/{quote(namespace, safe='')}"
        path = f"{prefix}/{self.plural}"
        return f"{path}/{quote(name, safe='')}" if name else path

    def describe(self) -> str:
        """``deployments.apps`` / ``pods``: how kubectl and the API's messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass
class Response:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class Cluster:
    """One API server, addressed with raw JSON requests that retry transient failures."""

    def __init__(
        self,
        transport: Transport,
        *,
        server: str,
        context: str = "",
        namespace: str = "",
        retry: RetryPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        self._transport = transport
        self.server = server
        self.context = context
        self.namespace = namespace  # in a pod: the service account's namespace
        self.retry = retry or RetryPolicy()
        self._rng = random.Random(seed)
        self._resources: dict[str, dict[str, Resource]] = {}
        self.sleep: Callable[[float], None] = time.sleep

    # -- construction -------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        hint: str = "pass --kspec-kubeconfig PATH or --kspec-sim STATE",
    ) -> Cluster:
        """Connect the way kubectl does: ``kubeconfig``, else ``$KUBECONFIG``'s files
        (merged), else ``~/.kube/config``, else the pod's service account (the token is
        re-read whenever its file changes); see :mod:`.connect`. ``hint`` says which
        options choose a cluster, in the words of the caller (pytest or the CLI)."""
        conn = connect(kubeconfig, context, hint=hint)
        return cls(conn.transport, server=conn.server, context=conn.context,
                   namespace=conn.namespace, retry=retry)

    def close(self) -> None:
        self._transport.close()

    # -- requests -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> Response:
        """Send one request, retrying 429/5xx/timeouts; raise :class:`ApiError` otherwise.

        ``verb`` and ``resource`` name the request in errors ("cannot list pods: ...").
        """
        attempts = max(self.retry.attempts, 1)
        last: ApiError | None = None
        for attempt in range(attempts):
            try:
                resp = self._send(method, path, query, body, content_type)
            except _TRANSIENT as e:
                last = ApiError(
                    f"cannot {verb} {resource} at {self.server}: {_transport_reason(e)}",
                    verb=verb, resource=resource)
                if _untrusted(e):
                    raise last from e
                retry_after = None
            else:
                if resp.status in ok:
                    return resp
                last = _api_error(resp, verb=verb, resource=resource, server=self.server)
                if resp.status not in _RETRY_STATUS:
                    raise last
                retry_after = resp.headers.get("Retry-After")
            if attempt + 1 < attempts:
                wait = self.retry.delay(attempt, retry_after, self._rng)
                log.debug("%s %s failed (%s); retry %d in %.2fs", method, path, last,
                          attempt + 1, wait)
                self.sleep(wait)
        assert last is not None
        raise last

    def _send(self, method: str, path: str, query: Mapping[str, str] | None, body: Any,
              content_type: str) -> Response:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        raw = self._transport.open(method, path, query=query, body=data, headers=headers,
                                   timeout=self.retry.timeout)
        payload = raw.data
        try:
            decoded = json.loads(payload) if payload else None
        except ValueError as e:
            if 200 <= raw.status < 300:
                raise urllib3.exceptions.DecodeError(
                    f"truncated or malformed JSON response ({len(payload)} bytes)") from e
            decoded = payload.decode("utf-8", "replace")
        return Response(raw.status, decoded, {k: v for k, v in raw.headers.items()})

    # -- discovery ----------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        """The served resource for ``kind`` in ``api_version``; :class:`ApiError` (404) if none."""
        served = self._resources.get(api_version)
        if served is None:
            try:
                resp = self.request("GET", api_prefix(api_version), verb="discover",
                                    resource=api_version)
            except ApiError as e:
                if e.status != 404:
                    raise
                served = {}
            else:
                served = {
                    r["kind"]: Resource(api_version, r["kind"], r["name"], bool(r["namespaced"]))
                    for r in resp.body.get("resources", []) if "/" not in r["name"]
                }
            self._resources[api_version] = served
        if kind not in served:
            raise ApiError(
                f"the server at {self.server} does not serve {kind} ({api_version})"
                + (" — is Kyverno installed?" if api_version.startswith("kyverno.io/") else ""),
                verb="discover", resource=f"{kind} ({api_version})", status=404,
                reason="NotFound")
        return served[kind]

    def version(self) -> dict[str, Any]:
        body = self.request("GET", "/version", verb="get", resource="/version").body
        return dict(body) if isinstance(body, dict) else {}

    # -- reads --------------------------------------------------------------------------

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             *, limit: int = 500, label_selector: str | None = None) -> Objects:
        """Every object of ``kind`` (all namespaces when ``namespace`` is None), paginated.

        Items get ``apiVersion``/``kind`` set (the API server leaves them out of list items).
        A continue token that expired mid-way (410) restarts the list once from the top.
        """
        return self.list_versioned(api_version, kind, namespace, limit=limit,
                                   label_selector=label_selector)[0]

    def list_versioned(self, api_version: str, kind: str, namespace: str | None = None,
                       *, limit: int = 500, label_selector: str | None = None,
                       project: Callable[[dict[str, Any]], dict[str, Any]] | None = None
                       ) -> tuple[Objects, str]:
        """:meth:`list` plus the list's ``resourceVersion`` (where a watch starts from).
        ``project`` is applied to each object as its page arrives (a watch keeps only
        what it needs: the raw objects are never all held at once)."""
        res = self.resource(api_version, kind)
        for restart in (False, True):
            items: Objects = []
            version: _Slot = []
            try:
                for page in self._pages(res, namespace, limit, label_selector, version):
                    items.extend(page if project is None else map(project, page))
                return items, version[0] if version else ""
            except ApiError as e:
                if e.status != 410 or restart:
                    raise
                log.info("list of %s expired mid-way; starting again", res.describe())
        raise AssertionError("unreachable")

    def pages(self, api_version: str, kind: str, namespace: str | None = None,
              *, limit: int = 500) -> Iterator[Objects]:
        """Every object of ``kind``, one LIST page (up to ``limit`` items) at a time, for
        readers that keep only what they conclude from each page. A continue token that
        expires mid-way raises :class:`ApiError` 410: the reader starts again if it can."""
        return self._pages(self.resource(api_version, kind), namespace, limit, None)

    def _pages(self, res: Resource, namespace: str | None, limit: int,
               label_selector: str | None, version: _Slot | None = None
               ) -> Iterator[Objects]:
        token = ""
        while True:
            query = {"limit": str(limit)}
            if token:
                query["continue"] = token
            if label_selector:
                query["labelSelector"] = label_selector
            resp = self.request("GET", res.path(namespace), verb="list",
                                resource=res.describe(), query=query)
            body = resp.body if isinstance(resp.body, dict) else {}
            items = _stamped(body.get("items") or [], res)
            if version is not None and not version:
                version.append(str((body.get("metadata") or {}).get("resourceVersion") or ""))
            token = (body.get("metadata") or {}).get("continue") or ""
            del resp, body
            yield items
            # Hold nothing of this page while the next one is read: a reader that drops
            # each page keeps one page in memory, not two.
            items = []
            if not token:
                return

    def watch(self, api_version: str, kind: str, resource_version: str, *,
              timeout_seconds: int = 300) -> Iterator[dict[str, Any]]:
        """Stream watch events (``{"type", "object"}``) of ``kind`` cluster-wide from
        ``resource_version``, with bookmarks, until the server ends the stream.

        Not retried here: the caller (:mod:`pytest_kspec.cluster.watch`) reconnects with
        backoff. An HTTP error raises :class:`ApiError`; a 410 inside the stream comes as an
        ``ERROR`` event, as the API server sends it.
        """
        res = self.resource(api_version, kind)
        query = {"watch": "true", "allowWatchBookmarks": "true",
                 "resourceVersion": resource_version, "timeoutSeconds": str(timeout_seconds)}
        stream = self._transport.open("GET", res.path(), query=query,
                                      headers={"Accept": "application/json"},
                                      timeout=(self.retry.timeout[0], timeout_seconds + 30.0),
                                      stream=True)
        try:
            if stream.status != 200:
                payload = stream.read()
                try:
                    body: Any = json.loads(payload)
                except ValueError:
                    body = payload.decode("utf-8", "replace")
                raise _api_error(Response(stream.status, body), verb="watch",
                                 resource=res.describe(), server=self.server)
            buffer = b""
            for chunk in stream.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            stream.release_conn()

    def get(self, api_version: str, kind: str, name: str,
            namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        res = self.resource(api_version, kind)
        try:
            body = self.request("GET", res.path(namespace, name), verb="get",
                                resource=f'{res.describe()} "{name}"').body
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return dict(body) if isinstance(body, dict) else None

    # -- writes (remediation) ------------------------------------------------------------

    def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """POST ``obj`` (``fieldManager=kspec``); ``dry_run`` sends ``dryRun=All``.

        Raises :class:`ApiError` (409 AlreadyExists when it exists, 403 when not allowed).
        """
        res, name, namespace = self._target(obj)
        body = self.request("POST", res.path(namespace), verb="create",
                            resource=f'{res.describe()} "{name}"',
                            query=_write_query(dry_run), body=dict(obj), ok=(200, 201, 202)).body
        return dict(body) if isinstance(body, dict) else {}

    def replace(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """PUT ``obj`` in place of the live object, guarded by its ``metadata.resourceVersion``:
        the API server answers 409 Conflict when the object changed since that version, so
        a concurrent edit is never overwritten. A missing resourceVersion is refused here."""
        res, name, namespace = self._target(obj)
        if not str((obj.get("metadata") or {}).get("resourceVersion") or ""):
            raise ApiError(f'cannot update {res.describe()} "{name}": no metadata.'
                           "resourceVersion to guard the update with (read the object first)",
                           verb="update", resource=f'{res.describe()} "{name}"')
        body = self.request("PUT", res.path(namespace, name), verb="update",
                            resource=f'{res.describe()} "{name}"',
                            query=_write_query(dry_run), body=dict(obj), ok=(200, 201)).body
        return dict(body) if isinstance(body, dict) else {}

    def patch(self, api_version: str, kind: str, name: str, patch: Any, *,
              namespace: str | None = None,
              content_type: str = "application/merge-patch+json",
              dry_run: bool = False) -> dict[str, Any]:
        """PATCH one object (merge patch by default; put ``metadata.resourceVersion`` in the
        patch to make it conditional)."""
        res = self.resource(api_version, kind)
        body = self.request("PATCH", res.path(namespace, name), verb="patch",
                            resource=f'{res.describe()} "{name}"', query=_write_query(dry_run),
                            body=patch, content_type=content_type, ok=(200, 201)).body
        return dict(body) if isinstance(body, dict) else {}

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str | None = None,
               uid: str | None = None, resource_version: str | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        """DELETE one object (background propagation). ``uid`` / ``resource_version`` become
        DeleteOptions preconditions: a recreated or changed object gives 409, not a deletion.
        404 raises :class:`ApiError` like any other failure."""
        res = self.resource(api_version, kind)
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                                   "propagationPolicy": "Background"}
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            options["preconditions"] = pre
        if dry_run:
            options["dryRun"] = ["All"]
        body = self.request("DELETE", res.path(namespace, name), verb="delete",
                            resource=f'{res.describe()} "{name}"', query=_write_query(dry_run),
                            body=options, ok=(200, 202)).body
        return dict(body) if isinstance(body, dict) else {}

    def _target(self, obj: Mapping[str, Any]) -> tuple[Resource, str, str | None]:
        meta = obj.get("metadata") or {}
        res = self.resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        namespace = str(meta.get("namespace") or "") or None if res.namespaced else None
        return res, str(meta.get("name", "")), namespace


FIELD_MANAGER = "kspec"


def _write_query(dry_run: bool) -> dict[str, str]:
    query = {"fieldManager": FIELD_MANAGER}
    if dry_run:
        query["dryRun"] = "All"
    return query


def api_prefix(api_version: str) -> str:
    """``/api/v1`` for the core group, ``/apis/apps/v1`` for the others."""
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _untrusted(e: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate error under a TLS failure (the server is not who the kubeconfig
    trusts: retrying cannot help), or None."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = (seen.reason if isinstance(seen, urllib3.exceptions.MaxRetryError)
                else seen.__cause__ or (seen.args[0] if seen.args and
                                        isinstance(seen.args[0], BaseException) else None))
    return None


def _transport_reason(e: BaseException) -> str:
    if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason is not None:
        e = e.reason
    untrusted = _untrusted(e)
    if untrusted is not None:
        return (f"TLS verification failed: {untrusted.verify_message or untrusted.reason} "
                "(check the kubeconfig's certificate-authority, tls-server-name and server)")
    # NewConnectionError subclasses urllib3's timeout error, but "refused" is not a timeout.
    if isinstance(e, (urllib3.exceptions.NewConnectionError, ConnectionError)):
        return f"connection failed: {_one_line(e)} (is the API server up and reachable?)"
    if isinstance(e, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return "timed out (the API server did not answer in time)"
    if isinstance(e, urllib3.exceptions.DecodeError):
        return _one_line(e)
    return f"connection failed: {_one_line(e)}"


def _api_error(resp: Response, *, verb: str, resource: str, server: str) -> ApiError:
    body = resp.body
    reason = ""
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = str(body.get("reason", ""))
        detail = str(body.get("message", "")) or reason
    else:
        detail = " ".join(str(body or "").split())[:200]
    hint = ""
    if resp.status == 401:
        hint = " (credentials rejected: refresh the kubeconfig or token)"
    elif resp.status == 403:
        hint = " (the kspec ClusterRole in manifests/ grants what kspec needs)"
    text = f"cannot {verb} {resource}: {resp.status} {reason or 'error'}: {detail}{hint}"
    return ApiError(text, verb=verb, resource=resource, status=resp.status, reason=reason)


def _stamped(items: Objects, res: Resource) -> Objects:
    """List items with ``apiVersion``/``kind`` set (the API server leaves them out)."""
    for item in items:
        item.setdefault("apiVersion", res.api_version)
        item.setdefault("kind", res.kind)
    return items
