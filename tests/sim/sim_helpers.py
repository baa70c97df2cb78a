"""Helpers shared by the simulator tests (pytest puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

import requests
from kubernetes import client, config

from pytest_kspec.sim import Simulator


def api_client(sim: Simulator, token: str | None = None) -> client.ApiClient:
    path = sim.kubeconfig_path if token is None else sim.kubeconfig_for(token)
    return config.new_client_from_config(path)


def pod(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
        **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


def raw(sim: Simulator, method: str, path: str, token: str | None = None,
        **kwargs: Any) -> requests.Response:
    """A plain HTTP request with the admin (or given) token."""
    headers = {"Authorization": f"Bearer {token or sim.admin_token}",
               **kwargs.pop("headers", {})}
    return requests.request(method, sim.url + path, verify=sim.ca_path, timeout=10,
                            headers=headers, **kwargs)
