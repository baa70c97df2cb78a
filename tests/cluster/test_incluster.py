"""In-cluster configuration against the simulator: the service variables and the mounted
service-account files point at it, as they point at the API server in a pod."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pytest_kspec.cluster import Cluster
from pytest_kspec.cluster.incluster import DIR_ENV, TokenFile
from pytest_kspec.errors import ApiError, ClusterError
from pytest_kspec.sim import Simulator, load_objects

REPO = Path(__file__).resolve().parents[2]
SA_USER = "system:serviceaccount:kspec-system:kspec"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kspec-system",
             "system:authenticated")


class Mount:
    """A service-account volume laid out as the kubelet does: ``token`` -> ``..data/token``,
    ``..data`` -> a timestamped directory, swapped atomically on every rotation."""

    def __init__(self, root: Path, ca_file: str, namespace: str) -> None:
        self.root = root
        self.generation = 0
        root.mkdir()
        self._write({"token": "tok-1", "ca.crt": Path(ca_file).read_text(),
                     "namespace": namespace})
        for name in ("token", "ca.crt", "namespace"):
            (root / name).symlink_to(Path("..data") / name)

    def _write(self, files: dict[str, str]) -> None:
        self.generation += 1
        target = self.root / f"..2026_12_01_{self.generation:02d}"
        target.mkdir()
        for name, text in files.items():
            (target / name).write_text(text)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(target.name)
        os.replace(tmp, self.root / "..data")

    def rotate(self, token: str) -> None:
        current = self.root / "..data"
        files = {p.name: p.read_text() for p in current.iterdir()}
        self._write({**files, "token": token})


@pytest.fixture
def sim() -> Iterator[Simulator]:
    objects = (load_objects([REPO / "examples/demo-cluster.yaml"])
               + load_objects([REPO / "manifests/base/rbac.yaml"]))
    with Simulator(objects=objects, kyverno=True, rbac=True,
                   users={"tok-1": (SA_USER, SA_GROUPS)}) as s:
        yield s


@pytest.fixture
def pod_env(sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mount:
    """This process looks like a pod whose API server is the simulator."""
    mount = Mount(tmp_path / "serviceaccount", sim.ca_path, "kspec-system")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.kube/config
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(sim.port))
    monkeypatch.setenv(DIR_ENV, str(mount.root))
    return mount


def test_service_variables_and_files_are_honoured(pod_env: Mount, sim: Simulator) -> None:
    cluster = Cluster.connect()
    try:
        assert cluster.context == "in-cluster"
        assert cluster.namespace == "kspec-system"
        assert cluster.server == f"https://127.0.0.1:{sim.port}"
        names = {n["metadata"]["name"] for n in cluster.list("v1", "Namespace")}
        assert "kube-system" in names
        # The request was verified against ca.crt and authenticated as the service account.
        with pytest.raises(ApiError) as denied:
            cluster.list("v1", "Secret")
        assert denied.value.status == 403 and SA_USER in str(denied.value)
    finally:
        cluster.close()


def test_token_is_reread_when_the_kubelet_rotates_it(pod_env: Mount, sim: Simulator) -> None:
    cluster = Cluster.connect()
    try:
        assert cluster.list("v1", "Namespace")
        # The old token expires: without re-reading the file every request is now 401.
        sim.revoke_token("tok-1")
        with pytest.raises(ApiError) as expired:
            cluster.list("v1", "Namespace")
        assert expired.value.status == 401
        # The kubelet writes the new token (symlink swap); the same client picks it up.
        sim.add_token("tok-2", SA_USER, SA_GROUPS)
        pod_env.rotate("tok-2")
        assert cluster.list("v1", "Namespace")
        sim.revoke_token("tok-2")
        sim.add_token("tok-3", SA_USER, SA_GROUPS)
        pod_env.rotate("tok-3")
        assert cluster.list("apps/v1", "Deployment") is not None
    finally:
        cluster.close()


def test_token_file_is_read_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("a\n")
    token = TokenFile(path)
    assert [token.token() for _ in range(5)] == ["a"] * 5
    assert token.reads == 1
    path.write_text("bb\n")
    assert token.token() == "bb" and token.reads == 2


@pytest.mark.parametrize(("change", "message"), [
    ("no-port", "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set"),
    ("bad-port", "KUBERNETES_SERVICE_PORT='https' is not a port number"),
    ("no-ca", "ca.crt: in-cluster CA certificate not found"),
    ("empty-token", "token: service-account token file is empty"),
    ("no-token", "token: service-account token unreadable"),
])
def test_broken_in_cluster_setup_is_one_clear_line(
        pod_env: Mount, monkeypatch: pytest.MonkeyPatch, change: str, message: str) -> None:
    data = pod_env.root / "..data"
    if change == "no-port":
        monkeypatch.delenv("KUBERNETES_SERVICE_PORT")
    elif change == "bad-port":
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "https")
    elif change == "no-ca":
        (data / "ca.crt").unlink()
    elif change == "empty-token":
        (data / "token").write_text("\n")
    else:
        (data / "token").unlink()
    with pytest.raises(ClusterError) as e:
        Cluster.connect()
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_a_run_in_a_pod_detects_with_the_service_account(
        pod_env: Mount, sim: Simulator, tmp_path: Path) -> None:
    spec = tmp_path / "cluster-spec.yaml"
    shutil.copy(REPO / "examples/strict.yaml", spec)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kspec.cli", "drift", "detect", "--spec", str(spec),
         "--reports", "r", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r" / "drift-report.json").read_text())
    assert report["kspec"]["errors"] == []
    assert report["kspec"]["cluster"]["context"] == "in-cluster"
    assert report["kspec"]["cluster"]["namespace"] == "kspec-system"
    assert not [r for r in sim.requests if r.status in (401, 403)]
    assert yaml.safe_load((pod_env.root / "namespace").read_text()) == "kspec-system"
