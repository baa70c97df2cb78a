"""Policies for the drift tests: a generated-style expected ClusterPolicy and its live copy."""

from __future__ import annotations

import copy
import json
from typing import Any

PATTERN: dict[str, Any] = {
    "spec": {
        "=(initContainers)": [{"=(securityContext)": {"=(privileged)": "false"}}],
        "containers": [{"=(securityContext)": {"=(privileged)": "false"}}],
    }
}


def expected_policy() -> dict[str, Any]:
    """What kspec generates for ``forbidden: securityContext.privileged=true``."""
    return {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {
            "name": "disallow-privileged-containers",
            "labels": {"app.kubernetes.io/managed-by": "kspec"},
            "annotations": {
                "kspec.dev/generated": "true",
                "policies.kyverno.io/title": "Disallow Privileged Containers",
                "policies.kyverno.io/category": "Pod Security Standards (Baseline)",
                "policies.kyverno.io/severity": "high",
                "policies.kyverno.io/description": "Privileged mode disables most isolation.",
            },
        },
        "spec": {
            "validationFailureAction": "Enforce",
            "background": True,
            "rules": [
                {
                    "name": "check-privileged",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "exclude": {"any": [{"resources": {"namespaces": ["kube-system"]}}]},
                    "validate": {
                        "message": "Privileged mode is not allowed.",
                        "pattern": copy.deepcopy(PATTERN),
                    },
                },
                {
                    "name": "check-privileged-ephemeral",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "validate": {
                        "message": "Privileged ephemeral containers are not allowed.",
                        "pattern": {"spec": {"=(ephemeralContainers)": [
                            {"=(securityContext)": {"=(privileged)": "false"}}]}},
                    },
                },
            ],
        },
    }


def live_copy(expected: dict[str, Any]) -> dict[str, Any]:
    """``expected`` as a cluster returns it after ``kubectl apply``: server metadata,
    managedFields, status and the last-applied annotation (no Kyverno defaults yet)."""
    live = copy.deepcopy(expected)
    meta = live["metadata"]
    meta.update({
        "uid": "7c9d3f0e-2b1a-4c55-9a8e-0f4d2c1b6a77",
        "resourceVersion": "48213",
        "generation": 3,
        "creationTimestamp": "2025-01-10T08:00:00Z",
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "kyverno.io/v1",
                "time": "2025-01-10T08:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:annotations": {".": {}, "f:kspec.dev/generated": {}}},
                    "f:spec": {"f:background": {}, "f:rules": {},
                               "f:validationFailureAction": {}},
                },
            },
            {
                "manager": "kyverno",
                "operation": "Update",
                "apiVersion": "kyverno.io/v1",
                "time": "2025-01-10T08:00:02Z",
                "subresource": "status",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:ready": {}}},
            },
        ],
    })
    meta["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
        expected)
    live["status"] = {
        "ready": True,
        "rulecount": {"validate": 2, "mutate": 0, "generate": 0, "verifyimages": 0},
        "autogen": {"rules": [{"name": "autogen-check-privileged"}]},
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                        "lastTransitionTime": "2025-01-10T08:00:02Z", "message": "Ready"}],
    }
    return live


def defaulted(live: dict[str, Any]) -> dict[str, Any]:
    """``live`` with every Kyverno admission default written out, as Kyverno stores it."""
    live = copy.deepcopy(live)
    spec = live["spec"]
    spec.update({"admission": True, "background": True, "emitWarning": False,
                 "failurePolicy": "Fail", "webhookTimeoutSeconds": 10})
    for rule in spec["rules"]:
        rule["skipBackgroundRequests"] = True
        rule["validate"]["allowExistingViolations"] = True
    return live


def rule(policy: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in policy["spec"]["rules"] if r["name"] == name)


def edit_entry(live: dict[str, Any], manager: str, time: str,
               fields: dict[str, Any]) -> None:
    """Record that ``manager`` last set ``fields`` at ``time`` (as an Update would)."""
    live["metadata"]["managedFields"].append({
        "manager": manager, "operation": "Update", "apiVersion": "kyverno.io/v1",
        "time": time, "fieldsType": "FieldsV1", "fieldsV1": fields})
