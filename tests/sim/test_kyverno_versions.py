"""Kyverno 1.12 vs 1.13: structural ClusterPolicy schemas in the simulator (pruning, strict
field validation), version-aware generation, and detection reading the installed version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import raw

from pytest_kspec.desired import kyverno_versions
from pytest_kspec.desired.expected import generate_policies_for, render_yaml
from pytest_kspec.sim import Simulator
from pytest_kspec.sim.schemas import prune, version_schema

ROOT = Path(__file__).resolve().parents[2]
BODY: dict[str, Any] = {
    "workloads": {"containers": {"forbidden": [{"key": "securityContext.privileged",
                                                "value": True}],
                                 "required": [{"key": "resources.limits.memory",
                                               "value": "512Mi"}]},
                  "images": {"blockedRegistries": ["docker.io/*"], "requireDigests": True}}}
kubectl_only = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


def policies(version: tuple[int, int] | None) -> list[dict[str, Any]]:
    return generate_policies_for(BODY, spec_name="t", spec_version="1.0.0",
                                 kyverno_version=version)


def crd(sim: Simulator) -> dict[str, Any]:
    found = sim.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                    "clusterpolicies.kyverno.io")
    assert found is not None
    return found


def test_generation_puts_the_action_where_each_version_reads_it() -> None:
    for policy in policies((1, 12)):
        assert policy["spec"]["validationFailureAction"] == "Enforce"
        assert all("failureAction" not in r["validate"] for r in policy["spec"]["rules"])
    for policy in policies((1, 13)):
        assert "validationFailureAction" not in policy["spec"]
        assert {r["validate"]["failureAction"] for r in policy["spec"]["rules"]} == {"Enforce"}
    both = policies(None)[0]
    assert both["spec"]["validationFailureAction"] == "Enforce"
    assert both["spec"]["rules"][0]["validate"]["failureAction"] == "Enforce"


@pytest.mark.parametrize(("variant", "form", "unknown"), [
    ("1.12", (1, 12), []), ("1.13", (1, 13), []), ("1.13", None, []),
    ("1.12", (1, 13), ["spec.rules[0].validate.failureAction"]),
])
def test_generated_policies_against_each_schema(variant: str, form: tuple[int, int] | None,
                                                unknown: list[str]) -> None:
    with Simulator(kyverno=variant) as sim:
        schema = version_schema(crd(sim), "v1")
        assert schema is not None
        for policy in policies(form):
            _, found = prune(schema, policy)
            assert found[:1] == unknown, policy["metadata"]["name"]


def test_installed_version_is_read_from_the_crd() -> None:
    for variant, expected in (("1.12", (1, 12)), ("1.13", (1, 13))):
        with Simulator(kyverno=variant) as sim:
            assert kyverno_versions.installed_version(crd(sim)) == expected
            assert crd(sim)["metadata"]["labels"]["app.kubernetes.io/version"].startswith(
                f"v{variant}.")
    with Simulator(kyverno=True) as sim:  # open schema, chart label: unknown
        assert kyverno_versions.installed_version(crd(sim)) is None


def test_a_1_12_server_prunes_the_rule_level_action_and_strict_refuses_it() -> None:
    policy = policies((1, 13))[0]
    with Simulator(kyverno="1.12") as sim:
        path = "/apis/kyverno.io/v1/clusterpolicies"
        strict = raw(sim, "POST", path + "?fieldValidation=Strict", json=policy)
        assert strict.status_code == 400
        assert ('strict decoding error: unknown field "spec.rules[0].validate.failureAction"'
                in strict.json()["message"])
        assert raw(sim, "POST", path, json=policy).status_code == 201
        stored = sim.get("kyverno.io/v1", "ClusterPolicy", policy["metadata"]["name"])
        assert stored is not None
        assert all("failureAction" not in r["validate"] for r in stored["spec"]["rules"])


@pytest.mark.kubectl
@kubectl_only
def test_kubectl_apply_of_1_12_policies_into_a_1_12_simulator_succeeds(tmp_path: Path) -> None:
    def kubectl(sim: Simulator, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path, *args],
                              capture_output=True, text=True, timeout=60, check=False)

    old = tmp_path / "policies-1.12.yaml"
    old.write_text(render_yaml(policies((1, 12))))
    new = tmp_path / "policies-1.13.yaml"
    new.write_text(render_yaml(policies((1, 13))))
    with Simulator(kyverno="1.12") as sim:
        applied = kubectl(sim, "apply", "-f", str(old))
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.count("created") == len(policies((1, 12)))
        refused = kubectl(sim, "apply", "-f", str(new))
        assert refused.returncode != 0
        assert 'unknown field "spec.rules[0].validate.failureAction"' in refused.stderr
    with Simulator(kyverno="1.13") as sim:
        applied = kubectl(sim, "apply", "-f", str(new))
        assert applied.returncode == 0, applied.stderr


@pytest.mark.kubectl
@kubectl_only
def test_kspec_policies_for_1_12_pipes_into_kubectl_apply(tmp_path: Path) -> None:
    spec = ROOT / "examples" / "strict.yaml"
    out = subprocess.run([sys.executable, "-m", "pytest_kspec.cli", "policies", "--spec",
                          str(spec), "--kyverno-version", "1.12"],
                         capture_output=True, text=True, timeout=60, check=True)
    with Simulator(kyverno="1.12") as sim:
        applied = subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path, "apply",
                                  "-f", "-"], input=out.stdout, capture_output=True, text=True,
                                 timeout=60, check=False)
        assert applied.returncode == 0, applied.stderr
