"""The Dockerfile cannot be built here: parse it and check what can be checked — a slim Python
base, a non-root numeric USER matching the manifests, no remote ADD, ``pip install .``, the
suite and examples inside, and the commands the manifests run installed by ``pip install .``."""

from __future__ import annotations

import fnmatch
import shlex
import tomllib
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _cronjob_pod() -> dict[str, object]:
    doc = yaml.safe_load((REPO / "manifests/base/cronjob.yaml").read_text())
    return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def test_base_is_slim_python_311() -> None:
    (base,) = [rest for word, rest in _instructions() if word == "FROM"]
    assert base.startswith("python:3.11-slim")


def test_runs_as_the_non_root_numeric_user_the_manifests_expect() -> None:
    users = [rest for word, rest in _instructions() if word == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    security = _cronjob_pod()["securityContext"]
    assert security["runAsUser"] == int(uid)  # type: ignore[index]


def test_no_remote_add_and_installs_the_package() -> None:
    instructions = _instructions()
    assert not [rest for word, rest in instructions if word == "ADD"], "use COPY, never ADD"
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert "pip install ." in runs
    copied = {shlex.split(rest)[0] for word, rest in instructions if word == "COPY"}
    assert {"checks", "examples", "pytest_kspec"} <= copied


def test_workdir_is_where_the_cronjob_runs_checks() -> None:
    workdirs = [rest for word, rest in _instructions() if word == "WORKDIR"]
    (container,) = _cronjob_pod()["containers"]  # type: ignore[misc]
    assert workdirs[-1] == container["workingDir"] == "/app"
    assert container["args"][0] == "checks/"


def test_the_commands_the_manifests_run_exist_after_pip_install() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, func = scripts["kspec"].partition(":")
    assert callable(getattr(import_module(module), func))
    installed = {e.name for e in entry_points(group="console_scripts")}
    assert {"kspec", "pytest"} <= installed  # pytest is a dependency of the package


def test_dockerignore_keeps_what_the_dockerfile_copies_and_nothing_else() -> None:
    patterns = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, bare) or path.startswith(bare + "/") or (
                    bare.startswith("**/") and fnmatch.fnmatch(path.rsplit("/", 1)[-1],
                                                               bare[3:])):
                result = not negate
        return result

    for kept in ("pyproject.toml", "README.md", "pytest_kspec/cli/main.py",
                 "checks/test_workload_hygiene.py", "examples/strict.yaml"):
        assert not ignored(kept), kept
    for dropped in (".venv", ".git", "reports", "tests/e2e/test_image.py", "bench",
                    "pytest_kspec/__pycache__/x.pyc"):
        assert ignored(dropped), dropped
