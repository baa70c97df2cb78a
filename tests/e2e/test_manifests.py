"""manifests/: the read-only ClusterRole covers every kind kspec's checks read, and no more."""

from __future__ import annotations

from pathlib import Path

import yaml

from pytest_kspec.sim import Simulator, load_objects

from .conftest import run_pytest

REPO = Path(__file__).resolve().parents[2]
SA_USER = "system:serviceaccount:kspec-system:kspec"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kspec-system",
             "system:authenticated")


def _rbac() -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((REPO / "manifests/rbac.yaml").read_text()) if d]


def test_detect_role_is_read_only_and_has_no_secrets() -> None:
    (role,) = [d for d in _rbac() if d["kind"] == "ClusterRole"
               and d["metadata"]["name"] == "kspec-detect"]  # type: ignore[index]
    for rule in role["rules"]:  # type: ignore[index]
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert not {"secrets", "configmaps", "*"} & set(rule["resources"])


def test_every_check_of_the_strict_example_runs_with_only_kspec_detect(tmp_path: Path) -> None:
    objects = load_objects([REPO / "examples/demo-cluster.yaml"]) + _rbac()
    with Simulator(objects=objects, kyverno=True, rbac=True,
                   users={"sa-token": (SA_USER, SA_GROUPS)}) as sim:
        kubeconfig = sim.kubeconfig_for("sa-token")
        spec = tmp_path / "strict.yaml"
        spec.write_text((REPO / "examples/strict.yaml").read_text())
        result = run_pytest(tmp_path, "--kspec-spec", str(spec),
                            "--kspec-kubeconfig", kubeconfig, "-p", "no:randomly")
        denied = [r for r in sim.requests if r.status == 403]
    assert result.report is not None, result.stdout
    assert result.report["kspec"]["errors"] == []
    assert denied == []
    statuses = set(result.statuses().values())
    assert statuses <= {"passed", "failed"} and "failed" in statuses
