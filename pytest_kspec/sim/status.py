"""Kubernetes ``Status`` error replies with the reasons, codes and messages the real server uses.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

from typing import Any

from pytest_kspec.errors import SimulatorError


class StatusError(SimulatorError):
    """A request failed; ``body()`` is the ``Status`` object sent back to the client.

    Direct writes on a Simulator raise it too: ``code`` and ``reason`` say what went wrong.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def qualified(group: str, plural: str) -> str:
    """``pods`` for the core group, ``deployments.apps`` otherwise (as in NotFound messages)."""
    return f"{plural}.{group}" if group else plural


def _details(group: str, plural: str, name: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:  # the core group is left out, as the server's omitempty does
        out["group"] = group
    out["kind"] = plural
    return out


def not_found(group: str, plural: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{qualified(group, plural)} "{name}" not found',
                       _details(group, plural, name))


def namespace_not_found(name: str) -> StatusError:
    return not_found("", "namespaces", name)


def already_exists(group: str, plural: str, name: str) -> StatusError:
    return StatusError(409, "AlreadyExists", f'{qualified(group, plural)} "{name}" already exists',
                       _details(group, plural, name))


def name_generation_failed(group: str, plural: str, name: str) -> StatusError:
    details = _details(group, plural, name)
    details["retryAfterSeconds"] = 1
    return StatusError(
        409, "AlreadyExists",
        f'{qualified(group, plural)} "{name}" already exists, the server was not able to '
        "generate a unique name for the object", details)


def conflict(group: str, plural: str, name: str) -> StatusError:
    return StatusError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {qualified(group, plural)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        _details(group, plural, name))


def invalid(group: str, kind: str, name: str, causes: list[tuple[str, str, str]]) -> StatusError:
    """422 Invalid; ``causes`` holds (reason, message, field) such as
    ("FieldValueRequired", "Required value", "spec.containers[0].name")."""
    text = ", ".join(f"{field}: {msg}" for _reason, msg, field in causes)
    if len(causes) > 1:
        text = "[" + text + "]"
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind,
                               "causes": [{"reason": r, "message": m, "field": f}
                                          for r, m, f in causes]}
    return StatusError(422, "Invalid", f'{kind}.{group} "{name}" is invalid: {text}'
                       if group else f'{kind} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def forbidden(message: str, group: str = "", plural: str = "", name: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, _details(group, plural, name))


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def method_not_allowed(verb: str, plural: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed",
                       f'{verb} is not supported on resources of kind "{plural}"',
                       {"kind": plural})


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        {"kind": content_type} if content_type else None)


def path_not_found(path: str) -> StatusError:
    del path
    return StatusError(404, "NotFound", "the server could not find the requested resource",
                       {})


def from_code(code: int, retry_after: int | None = None) -> StatusError:
    """A generic failure for fault injection (500, 503, 429 ...)."""
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests",
               500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
    messages = {429: "Too many requests, please try again later.",
                500: "Internal error occurred: injected fault",
                503: "the server is currently unable to handle the request",
                504: "the server was unable to return a response in the time allotted"}
    details: dict[str, Any] | None = None
    headers: dict[str, str] = {}
    if retry_after is not None:
        details = {"retryAfterSeconds": retry_after}
        headers["Retry-After"] = str(retry_after)
    elif code == 429:
        details = {"retryAfterSeconds": 1}
        headers["Retry-After"] = "1"
    return StatusError(code, reasons.get(code, "InternalError" if code >= 500 else "BadRequest"),
                       messages.get(code, f"injected fault ({code})"), details, headers)
