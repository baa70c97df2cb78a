"""A cluster running Kyverno 1.12: kspec reads the version from the ClusterPolicy CRD,
expects the spec-level action only (no false drift), and restores a deleted policy in the
form a 1.12 API server keeps."""

from __future__ import annotations

import copy
from typing import Any

from pytest_kspec.desired.expected import generate_policies
from pytest_kspec.sim import Simulator
from pytest_kspec.spec import load_spec

from .conftest import Cluster, run_pytest, write_state


def _on_kyverno_1_12(cluster: Cluster) -> None:
    """Swap the cluster's policies for their 1.12 form and add the 1.12 CRD to the state."""
    with Simulator(kyverno="1.12") as sim:
        crd = sim.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                      "clusterpolicies.kyverno.io")
    assert crd is not None
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"):
        crd["metadata"].pop(key, None)
    crd.pop("status", None)
    old = generate_policies(load_spec(cluster.spec_path), (1, 12))
    cluster.objects = [o for o in cluster.objects if o["kind"] != "ClusterPolicy"]
    cluster.objects += [crd, *copy.deepcopy(old)]


def _detect(cluster: Cluster, *args: str) -> Any:
    state = write_state(cluster, cluster.spec_path.parent / "state.yaml")
    return run_pytest(cluster.spec_path.parent, "--kspec-spec", str(cluster.spec_path),
                      "--kspec-sim", str(state), "--kspec-types", "policy", *args)


def test_1_12_policies_on_a_1_12_cluster_are_not_drift(cluster: Cluster) -> None:
    _on_kyverno_1_12(cluster)
    result = _detect(cluster)
    assert result.returncode == 0, result.stdout
    assert set(result.statuses().values()) == {"passed"}


def test_a_deleted_policy_is_restored_in_the_1_12_form(cluster: Cluster) -> None:
    _on_kyverno_1_12(cluster)
    cluster.remove("ClusterPolicy", "disallow-privileged-containers")
    result = _detect(cluster, "--kspec-remediate")
    (event,) = result.events(type="policy")
    assert event["drift"] == "missing"
    assert event["remediation"]["status"] == "verified", event["remediation"]


def test_the_detector_expects_the_form_the_installed_kyverno_reads(cluster: Cluster) -> None:
    from pytest_kspec.cluster import Snapshot
    from pytest_kspec.cluster.client import Cluster as Client
    from pytest_kspec.detect import Detector, make_plan

    plan = make_plan(load_spec(cluster.spec_path), ["policy"])
    target = next(t for t in plan.targets if t.id == "disallow-privileged-containers")
    for variant in ("1.12", "1.13"):
        with Simulator(kyverno=variant) as sim:
            client = Client.connect(sim.kubeconfig_path)
            try:
                outcome = Detector(plan, Snapshot(client)).evaluate(target)
            finally:
                client.close()
        assert outcome.status == "failed"  # missing: the simulator holds no policy
        assert outcome.expected is not None
        spec = outcome.expected["spec"]
        rule_level = {"failureAction" in r["validate"] for r in spec["rules"]}
        if variant == "1.12":
            assert (spec["validationFailureAction"], rule_level) == ("Enforce", {False})
        else:
            assert ("validationFailureAction" in spec, rule_level) == (False, {True})
