"""One error hierarchy, so the CLI and the plugin can turn any failure into one clear line.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

# Where the ClusterRoles that a 403's hint names are defined (kustomize base).
RBAC_FILE = "manifests/base/rbac.yaml"


class KspecError(Exception):
    """Base of every error pytest-kspec raises on purpose.

    ``str(err)`` is the one line shown to the user: it names the file, field or resource
    and says what to do. Never put a Secret value or a bearer token in it.
    """


class SpecError(KspecError):
    """The ClusterSpecification or DriftConfig is unreadable or invalid.

    ``problems`` holds every problem found (one line each); ``str()`` joins them.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(KspecError):
    """A command-line option or its value is wrong."""


class ClusterError(KspecError):
    """The cluster could not be reached or answered with an error we cannot work around."""


class ApiError(ClusterError):
    """The API server answered a request with a non-success status.

    ``verb`` and ``resource`` say what was attempted (``list``, ``pods``), ``status`` is the
    HTTP code (0 for a connection failure or timeout), ``reason`` the Status reason.
    """

    def __init__(
        self,
        message: str,
        *,
        verb: str,
        resource: str,
        status: int = 0,
        reason: str = "",
    ) -> None:
        self.verb = verb
        self.resource = resource
        self.status = status
        self.reason = reason
        super().__init__(message)


class SimulatorError(KspecError):
    """The embedded Kubernetes API simulator could not start or load its state."""
