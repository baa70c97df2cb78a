"""Bearer-token authentication and RBAC authorization from the simulator's own RBAC objects.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_kspec.sim import status
from pytest_kspec.sim.store import Store

ADMIN_USER = "kspec-admin"
MASTERS = "system:masters"
RBAC_GROUP = "rbac.authorization.k8s.io"
# Non-resource paths the default bootstrap roles open to every authenticated user.
_PUBLIC_PREFIXES = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


class StoredRbac:
    """The RbacObjects view rbac.authorize reads: Role/Binding objects stored in the simulator."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _objs(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        return [e.obj for e in self.store.entries((RBAC_GROUP, plural), namespace)]

    def roles(self, namespace: str) -> list[dict[str, Any]]:
        return self._objs("roles", namespace)

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]:
        return self._objs("rolebindings", namespace)

    def cluster_roles(self) -> list[dict[str, Any]]:
        return self._objs("clusterroles", None)

    def cluster_role_bindings(self) -> list[dict[str, Any]]:
        return self._objs("clusterrolebindings", None)


class Authenticator:
    """Maps bearer tokens to users; the admin token is always a system:masters member."""

    def __init__(self, users: Mapping[str, tuple[str, Sequence[str]]] | None) -> None:
        from pytest_kspec.sim.rbac import UserInfo

        self.admin_token = secrets.token_hex(16)
        self._users = {self.admin_token: UserInfo(ADMIN_USER, (MASTERS,))}
        for token, (name, groups) in (users or {}).items():
            self._users[token] = UserInfo(name, tuple(groups))

    def add(self, token: str, name: str, groups: Sequence[str]) -> None:
        from pytest_kspec.sim.rbac import UserInfo

        self._users[token] = UserInfo(name, tuple(groups))

    def revoke(self, token: str) -> None:
        self._users.pop(token, None)

    def user(self, authorization: str | None) -> Any:
        """The UserInfo for an ``Authorization`` header; 401 Status when unknown."""
        if authorization and authorization.startswith("Bearer "):
            found = self._users.get(authorization[len("Bearer "):].strip())
            if found is not None:
                return found
        raise status.unauthorized()


def is_public_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in _PUBLIC_PREFIXES)


def check(user: Any, attrs: Any, store: Store, rbac_on: bool) -> tuple[bool, str]:
    """(allowed, reason) for a request; system:masters and RBAC-off always pass."""
    if not rbac_on or MASTERS in user.groups:
        return True, ""
    if not attrs.resource_request and is_public_path(attrs.path):
        return True, ""
    from pytest_kspec.sim.rbac import authorize

    decision = authorize(user, attrs, StoredRbac(store))
    return bool(decision.allowed), str(decision.reason)


def deny(user: Any, attrs: Any) -> status.StatusError:
    from pytest_kspec.sim.rbac import forbidden_message

    message = forbidden_message(user, attrs)
    plural = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    if not attrs.resource_request:
        return status.StatusError(403, "Forbidden", message, {})
    return status.forbidden(message, attrs.api_group, plural, attrs.name)
