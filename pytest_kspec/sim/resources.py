"""The table of resource types the simulator serves: built-ins plus those CRDs add at run time.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource (one group/version/plural)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    custom: bool = False
    stored: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: objects are kept per (group, plural) whatever the served version."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def base_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"

    def storage_version_hash(self) -> str:
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()

    def collection_path(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.base_path}/namespaces/{namespace}/{self.plural}"
        return f"{self.base_path}/{self.plural}"


def _r(group: str, plural: str, singular: str, kind: str, namespaced: bool,
       short: tuple[str, ...] = (), cats: tuple[str, ...] = (),
       subs: tuple[str, ...] = (), version: str = "v1") -> ResourceType:
    return ResourceType(group, version, plural, singular, kind, namespaced, short, cats, subs)


RBAC = "rbac.authorization.k8s.io"
ADMISSION = "admissionregistration.k8s.io"
APIEXT = "apiextensions.k8s.io"
AUTHZ = "authorization.k8s.io"

BUILTINS: tuple[ResourceType, ...] = (
    _r("", "namespaces", "namespace", "Namespace", False, ("ns",), (), ("status",)),
    _r("", "pods", "pod", "Pod", True, ("po",), ("all",), ("status", "log")),
    _r("", "services", "service", "Service", True, ("svc",), ("all",), ("status",)),
    _r("", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    _r("", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    _r("", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", True,
       ("pvc",), (), ("status",)),
    _r("", "secrets", "secret", "Secret", True),
    _r("", "nodes", "node", "Node", False, ("no",), (), ("status",)),
    _r("", "events", "event", "Event", True, ("ev",)),
    _r("", "endpoints", "endpoints", "Endpoints", True, ("ep",)),
    _r("", "replicationcontrollers", "replicationcontroller", "ReplicationController", True,
       ("rc",), ("all",), ("status", "scale")),
    _r("apps", "deployments", "deployment", "Deployment", True, ("deploy",), ("all",),
       ("status", "scale")),
    _r("apps", "replicasets", "replicaset", "ReplicaSet", True, ("rs",), ("all",),
       ("status", "scale")),
    _r("apps", "daemonsets", "daemonset", "DaemonSet", True, ("ds",), ("all",), ("status",)),
    _r("apps", "statefulsets", "statefulset", "StatefulSet", True, ("sts",), ("all",),
       ("status", "scale")),
    _r("batch", "jobs", "job", "Job", True, (), ("all",), ("status",)),
    _r("batch", "cronjobs", "cronjob", "CronJob", True, ("cj",), ("all",), ("status",)),
    _r("networking.k8s.io", "networkpolicies", "networkpolicy", "NetworkPolicy", True,
       ("netpol",)),
    _r(RBAC, "roles", "role", "Role", True),
    _r(RBAC, "clusterroles", "clusterrole", "ClusterRole", False),
    _r(RBAC, "rolebindings", "rolebinding", "RoleBinding", True),
    _r(RBAC, "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False),
    _r(ADMISSION, "validatingwebhookconfigurations", "validatingwebhookconfiguration",
       "ValidatingWebhookConfiguration", False, (), ("api-extensions",)),
    _r(ADMISSION, "mutatingwebhookconfigurations", "mutatingwebhookconfiguration",
       "MutatingWebhookConfiguration", False, (), ("api-extensions",)),
    _r(APIEXT, "customresourcedefinitions", "customresourcedefinition",
       "CustomResourceDefinition", False, ("crd", "crds"), ("api-extensions",), ("status",)),
    _r("apiregistration.k8s.io", "apiservices", "apiservice", "APIService", False, (),
       ("api-extensions",), ("status",)),
    ResourceType(AUTHZ, "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview",
                 "SelfSubjectAccessReview", False, verbs=("create",), stored=False),
)

# Sub-resource verbs as discovery lists them.
SUBRESOURCE_VERBS = {"status": ("get", "patch", "update"), "scale": ("get", "patch", "update"),
                     "log": ("get",)}
SUBRESOURCE_KIND = {"scale": ("autoscaling", "v1", "Scale")}


class Registry:
    """Thread-safe lookup of served resource types (built-ins + CRD-defined)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._custom: dict[str, list[ResourceType]] = {}  # CRD name -> its served types
        for rt in BUILTINS:
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.api_version, rt.kind)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        with self._lock:
            return self._by_kind.get((api_version, kind))

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._by_path.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions (preferred first); the core group is under ""."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for rt in self._by_path.values():
                versions = out.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return out

    def set_custom(self, crd_name: str, types: list[ResourceType]) -> None:
        with self._lock:
            self.remove_custom(crd_name)
            for rt in types:
                self._add(rt)
            self._custom[crd_name] = types

    def remove_custom(self, crd_name: str) -> list[ResourceType]:
        with self._lock:
            old = self._custom.pop(crd_name, [])
            for rt in old:
                self._by_path.pop((rt.group, rt.version, rt.plural), None)
                self._by_kind.pop((rt.api_version, rt.kind), None)
            return old
