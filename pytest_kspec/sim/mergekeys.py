"""Merge keys and list types of built-in kinds, for strategic merge patch and managedFields.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """How one field of a built-in type merges.

    ``type`` names the struct type of a map field or of a list's elements (None: free-form).
    ``list`` is "" (not a list), "atomic" (replaced whole), "map" (keyed by ``keys``) or
    "set" (a merged set of scalars). ``keys[0]`` is the strategic-merge-patch merge key; all
    of ``keys`` form the server-side-apply key. ``strategy`` is the patchStrategy tag.
    ``atomic`` marks a struct replaced whole; ``granular`` a map[string]X whose entries are
    owned one by one.
    """

    type: str | None = None
    list: str = ""
    keys: tuple[str, ...] = ()
    strategy: str = ""
    atomic: bool = False
    granular: bool = False


_MERGE = "merge"
GRANULAR = Field(granular=True)
ATOMIC_LIST = Field(list="atomic")
ATOMIC_STRUCT = Field(atomic=True)


def _keyed(*keys: str, type: str | None = None, strategy: str = _MERGE) -> Field:
    return Field(type=type, list="map", keys=keys, strategy=strategy)


SET = Field(list="set", strategy=_MERGE)
CONDITIONS = _keyed("type")

# Struct types: field name -> Field. Fields not listed are free-form maps (merged key by key)
# or atomic lists, except the few names in _DEFAULT_FIELDS.
TYPES: dict[str, dict[str, Field]] = {
    "ObjectMeta": {
        "labels": GRANULAR,
        "annotations": GRANULAR,
        "finalizers": SET,
        "ownerReferences": _keyed("uid"),
        "managedFields": ATOMIC_LIST,
    },
    "PodTemplateSpec": {
        "metadata": Field(type="ObjectMeta"),
        "spec": Field(type="PodSpec"),
    },
    "PodSpec": {
        "containers": _keyed("name", type="Container"),
        "initContainers": _keyed("name", type="Container"),
        "ephemeralContainers": _keyed("name", type="Container"),
        "imagePullSecrets": _keyed("name"),
        "schedulingGates": _keyed("name"),
        "volumes": _keyed("name", strategy="merge,retainKeys"),
        "resourceClaims": _keyed("name", strategy="merge,retainKeys"),
        "hostAliases": _keyed("ip"),
        "topologySpreadConstraints": _keyed("topologyKey", "whenUnsatisfiable"),
        "nodeSelector": GRANULAR,
        "overhead": GRANULAR,
        "resources": Field(type="ResourceRequirements"),
    },
    "Container": {
        "ports": _keyed("containerPort", "protocol"),
        "env": _keyed("name"),
        "volumeMounts": _keyed("mountPath"),
        "volumeDevices": _keyed("devicePath"),
        "resources": Field(type="ResourceRequirements"),
    },
    "ResourceRequirements": {
        "limits": GRANULAR,
        "requests": GRANULAR,
        "claims": Field(list="map", keys=("name",)),
    },
    "PodStatus": {
        "conditions": CONDITIONS,
        "podIPs": _keyed("ip"),
        "hostIPs": _keyed("ip"),
    },
    "DeploymentSpec": {
        "template": Field(type="PodTemplateSpec"),
        "selector": ATOMIC_STRUCT,
        "strategy": Field(strategy="retainKeys"),
    },
    "WorkloadSpec": {
        "template": Field(type="PodTemplateSpec"),
        "selector": ATOMIC_STRUCT,
    },
    "CronJobSpec": {"jobTemplate": Field(type="JobTemplateSpec")},
    "JobTemplateSpec": {
        "metadata": Field(type="ObjectMeta"),
        "spec": Field(type="WorkloadSpec"),
    },
    "ReplicationControllerSpec": {
        "template": Field(type="PodTemplateSpec"),
        "selector": GRANULAR,
    },
    "ServiceSpec": {
        "ports": _keyed("port", "protocol"),
        "selector": GRANULAR,
    },
    "NodeSpec": {"podCIDRs": SET},
    "NodeStatus": {
        "conditions": CONDITIONS,
        "addresses": _keyed("type"),
        "capacity": GRANULAR,
        "allocatable": GRANULAR,
    },
    "NetworkPolicySpec": {"podSelector": ATOMIC_STRUCT},
}

# Root types: kind -> top-level fields (metadata is always ObjectMeta).
_POD_ROOT = {"spec": Field(type="PodSpec"), "status": Field(type="PodStatus")}
_DEPLOY_ROOT = {"spec": Field(type="DeploymentSpec")}
_WORKLOAD_ROOT = {"spec": Field(type="WorkloadSpec")}
ROOTS: dict[str, dict[str, Field]] = {
    "Pod": _POD_ROOT,
    "PodTemplate": {"template": Field(type="PodTemplateSpec")},
    "Deployment": _DEPLOY_ROOT,
    "ReplicaSet": _WORKLOAD_ROOT,
    "DaemonSet": _WORKLOAD_ROOT,
    "StatefulSet": {"spec": Field(type="StatefulSetSpec")},
    "Job": _WORKLOAD_ROOT,
    "CronJob": {"spec": Field(type="CronJobSpec")},
    "ReplicationController": {"spec": Field(type="ReplicationControllerSpec")},
    "Service": {"spec": Field(type="ServiceSpec")},
    "ServiceAccount": {"secrets": _keyed("name")},
    "Node": {"spec": Field(type="NodeSpec"), "status": Field(type="NodeStatus")},
    "ConfigMap": {"data": GRANULAR, "binaryData": GRANULAR},
    "Secret": {"data": GRANULAR, "stringData": GRANULAR},
    "NetworkPolicy": {"spec": Field(type="NetworkPolicySpec")},
    "ValidatingWebhookConfiguration": {"webhooks": _keyed("name")},
    "MutatingWebhookConfiguration": {"webhooks": _keyed("name")},
}
TYPES["StatefulSetSpec"] = {
    **TYPES["WorkloadSpec"],
    "volumeClaimTemplates": ATOMIC_LIST,
}

# API groups served by the API server itself (not by CustomResourceDefinitions).
BUILTIN_GROUPS = frozenset({
    "", "apps", "batch", "autoscaling", "policy", "networking.k8s.io",
    "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "storage.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "scheduling.k8s.io",
    "node.k8s.io", "certificates.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "authorization.k8s.io", "authentication.k8s.io", "apiregistration.k8s.io",
    "resource.k8s.io", "storagemigration.k8s.io", "internal.apiserver.k8s.io",
})

# Default values server-side apply assumes for list-map key fields a manifest leaves out.
KEY_DEFAULTS: dict[str, object] = {"protocol": "TCP"}


def api_group(api_version: str) -> str:
    """The group of an apiVersion: "" for "v1", "apps" for "apps/v1"."""
    return api_version.rpartition("/")[0]


def is_builtin(api_version: str, kind: str) -> bool:
    """Whether the API server knows this kind natively (strategic merge patch works on it)."""
    return bool(kind) and api_group(api_version) in BUILTIN_GROUPS


def root_type(api_version: str, kind: str) -> str | None:
    """The schema name of the object's top level, or None for a custom resource."""
    if not is_builtin(api_version, kind):
        return None
    return "root:" + kind


def field_of(type_name: str | None, name: str) -> Field | None:
    """The schema of field ``name`` in ``type_name``; None when nothing special is known."""
    if type_name is None:
        return None
    if type_name.startswith("root:"):
        if name == "metadata":
            return Field(type="ObjectMeta")
        fields = ROOTS.get(type_name[5:], {})
        found = fields.get(name)
        if found is None and name == "status":
            return Field(type="GenericStatus")
        return found
    found = TYPES.get(type_name, {}).get(name)
    if found is None and name == "conditions":
        return CONDITIONS
    return found
