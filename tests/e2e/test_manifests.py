"""manifests/: every overlay renders with ``kubectl kustomize``; the CronJob is what the docs say;
our own workload passes our own strict checks; the RBAC is proven from the rendered bindings.

The rendered objects are loaded into the simulator with RBAC on; kspec then runs with the
ServiceAccount's token only, as it does in the pod.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kspec.cli.main import build_parser
from pytest_kspec.cluster import Cluster
from pytest_kspec.desired import generate_policies
from pytest_kspec.errors import ApiError
from pytest_kspec.sim import Simulator, load_objects
from pytest_kspec.spec import load_spec
from pytest_kspec.spec.driftconfig import parse_drift_config
from pytest_kspec.spec.model import parse_spec

from .conftest import run_pytest

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
OVERLAYS = ("detect", "remediate", "watch")
SA_USER = "system:serviceaccount:kspec-system:kspec"
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kspec-system",
             "system:authenticated")
KSPEC = [sys.executable, "-m", "pytest_kspec.cli"]
OUR_IMAGE = "registry.example.com/platform/kspec@sha256:" + "c" * 64

Obj = dict[str, Any]
pytestmark = pytest.mark.kubectl


def _kustomize(path: Path) -> list[Obj]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    proc = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


_RENDERED: dict[str, list[Obj]] = {}


def render(overlay: str) -> list[Obj]:
    if overlay not in _RENDERED:
        _RENDERED[overlay] = _kustomize(MANIFESTS / "overlays" / overlay)
    return copy.deepcopy(_RENDERED[overlay])


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind
             and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_spec(workload: Obj) -> Obj:
    if workload["kind"] == "CronJob":
        return dict(workload["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(workload["spec"]["template"]["spec"])


# -- rendering and the CronJob's contract --------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_into_kspec_system(overlay: str) -> None:
    objects = render(overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
            "PersistentVolumeClaim", "NetworkPolicy"} <= kinds
    assert ("CronJob" in kinds) == (overlay != "watch")
    assert ("Deployment" in kinds) == (overlay == "watch")
    for obj in objects:
        if obj["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert obj["metadata"]["namespace"] == "kspec-system", obj["metadata"]
    config = one(objects, "ConfigMap")
    spec = parse_spec(config["data"]["cluster-spec.yaml"].encode(), "cluster-spec.yaml")
    drift = parse_drift_config(config["data"]["drift-config.yaml"].encode(), "drift-config.yaml")
    assert spec.name and drift.storage.path == "/var/lib/kspec/history.db"
    assert drift.remediation.auto is (overlay == "remediate")
    bindings = {b["roleRef"]["name"] for b in objects if b["kind"] == "ClusterRoleBinding"}
    assert bindings == ({"kspec-detect", "kspec-remediate"} if overlay == "remediate"
                        else {"kspec-detect"})


def test_cronjob_runs_the_suite_every_5_minutes_with_the_documented_fields() -> None:
    cron = one(render("detect"), "CronJob", "kspec")
    spec = cron["spec"]
    assert spec["schedule"] == "*/5 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] < 300
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] < 300
    assert job["backoffLimit"] >= 1
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "kspec"
    # Exit 1 (drift) fails the Job at once; any other failure is retried up to backoffLimit.
    rules = job["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail == [{"action": "FailJob", "onExitCodes": {
        "containerName": "kspec", "operator": "In", "values": [1]}}]
    assert all(r["action"] in {"FailJob", "Ignore", "Count"} for r in rules)
    (container,) = pod["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:2] == ["pytest", "checks/"]
    assert "--kspec-spec=/etc/kspec/cluster-spec.yaml" in command
    assert "--kspec-config=/etc/kspec/drift-config.yaml" in command
    assert "--kspec-reports=/var/lib/kspec/reports" in command
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/kspec"].get("readOnly") is True
    assert "/tmp" in mounts and "/var/lib/kspec" in mounts


def test_every_pytest_flag_the_cronjob_passes_exists(tmp_path: Path) -> None:
    cron = one(render("detect"), "CronJob", "kspec")
    (container,) = pod_spec(cron)["containers"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True,
                          text=True, timeout=120, check=False, cwd=tmp_path)
    for arg in container["args"]:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert f"{flag}=" in proc.stdout or f"{flag} " in proc.stdout, flag


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kspec_pods_are_restricted(overlay: str) -> None:
    objects = render(overlay)
    workload = one(objects, "Deployment" if overlay == "watch" else "CronJob")
    pod = pod_spec(workload)
    ctx = pod["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] > 0
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sec = container["securityContext"]
        assert sec["allowPrivilegeEscalation"] is False
        assert sec["readOnlyRootFilesystem"] is True
        assert sec["capabilities"] == {"drop": ["ALL"]}
        for key in ("cpu", "memory", "ephemeral-storage"):
            assert key in container["resources"]["requests"]
            assert key in container["resources"]["limits"]
        # Alert credentials: one optional Secret as environment, never read through the API.
        assert container["envFrom"] == [{"secretRef": {"name": "kspec-alerts",
                                                       "optional": True}}]
    namespace = one(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_watch_overlay_runs_watch_mode_with_metrics_and_probes() -> None:
    deployment = one(render("watch"), "Deployment", "kspec-watch")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # one history writer
    (container,) = pod_spec(deployment)["containers"]
    command = [*container["command"], *container["args"]]
    assert command[:3] == ["kspec", "drift", "detect"]
    assert "--watch" in command and "--metrics-port=9090" in command
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090}]
    service = one(render("watch"), "Service", "kspec-metrics")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    parser = build_parser()
    flags = {a.split("=", 1)[0] for a in command[3:]}
    detect = parser._subparsers._group_actions[0].choices["drift"]  # type: ignore[union-attr]
    known = {o for a in detect._subparsers._group_actions[0].choices["detect"]._actions
             for o in a.option_strings}
    missing = flags - known
    if missing == {"--metrics-port"}:
        pytest.skip("watch mode's --metrics-port (documented CLI) is not in this build yet")
    assert not missing
    parser.parse_args(command[1:])


# -- dogfood: our own workload passes our own strict checks ---------------------------------


def _as_running(objects: list[Obj]) -> list[Obj]:
    """The rendered objects plus what the controllers would create from them: the CronJob's
    Job and pod, the Deployment's ReplicaSet and pod."""
    out = list(objects)
    for obj in objects:
        if obj["kind"] not in {"CronJob", "Deployment"}:
            continue
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        if obj["kind"] == "CronJob":
            owner = {"apiVersion": "batch/v1", "kind": "Job", "name": f"{name}-29000000",
                     "uid": "job-uid", "controller": True}
            out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
                "name": owner["name"], "namespace": ns, "uid": "job-uid",
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                     "name": name, "uid": "cron-uid", "controller": True}]},
                "spec": copy.deepcopy(obj["spec"]["jobTemplate"]["spec"])})
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
        else:
            owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-6d4cf56db6",
                     "uid": "rs-uid", "controller": True}
            template = obj["spec"]["template"]
        out.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": f"{owner['name']}-x7k2p", "namespace": ns,
            "labels": template["metadata"].get("labels", {}), "ownerReferences": [owner]},
            "spec": copy.deepcopy(template["spec"])})
    return out


def _with_image(overlay: str, tmp_path: Path) -> list[Obj]:
    """The overlay as a user deploys it: their own overlay setting their registry's image."""
    mine = tmp_path / f"my-{overlay}"
    mine.mkdir()
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(MANIFESTS / "overlays" / overlay, mine)],
        "images": [{"name": "ghcr.io/kspec-dev/pytest-kspec",
                    "newName": OUR_IMAGE.split("@")[0], "digest": OUR_IMAGE.split("@")[1]}],
    }))
    return _kustomize(mine)


def _ours(resource: str) -> bool:
    return "/kspec-system/" in resource or resource.endswith(("/kspec-system", "/kspec-detect",
                                                               "/kspec-remediate",
                                                               "/kspec-remediate-resources"))


@pytest.mark.parametrize("overlay", ["detect", "watch"])
def test_dogfood_our_workload_passes_the_strict_example(overlay: str, tmp_path: Path) -> None:
    objects = _as_running(_with_image(overlay, tmp_path))
    assert any(o["kind"] == "Pod" and o["spec"]["containers"][0]["image"] == OUR_IMAGE
               for o in objects)
    spec = tmp_path / "strict.yaml"
    spec.write_text((REPO / "examples/strict.yaml").read_text())
    # Strict requires signed images via Kyverno's verifyImages: the policies it expects.
    policies = generate_policies(load_spec(spec))
    with Simulator(objects=[*objects, *policies], kyverno=True, rbac=True,
                   users={"sa-token": (SA_USER, SA_GROUPS)}) as sim:
        kubeconfig = sim.kubeconfig_for("sa-token")
        result = run_pytest(tmp_path, "--kspec-spec", str(spec), "--kspec-kubeconfig",
                            kubeconfig, "--kspec-types", "compliance")
        denied = [r for r in sim.requests if r.status == 403]
    assert result.report is not None, result.stdout
    assert result.report["kspec"]["errors"] == [] and denied == []
    ours = [e for e in result.report["events"] if _ours(str(e.get("resource", "")))]
    assert ours == [], json.dumps(ours, indent=1)
    statuses = result.statuses()
    for check in ("workloads.containers.required.readOnlyRootFilesystem",
                  "workloads.containers.required.runAsNonRoot",
                  "workloads.containers.forbidden.privileged",
                  "workloads.images.allowedRegistries", "workloads.images.requireDigests",
                  "rbac.forbiddenRules.core.secrets.all"):
        assert statuses[f"compliance::{check}"] == "passed", (check, result.stdout)


def test_dogfood_catches_a_weakened_pod(tmp_path: Path) -> None:
    """The dogfood test can fail: the same run over a CronJob that lost its hardening."""
    objects = _with_image("detect", tmp_path)
    cron = one(objects, "CronJob", "kspec")
    container = pod_spec(cron)["containers"][0]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] = [container]
    spec = tmp_path / "strict.yaml"
    spec.write_text((REPO / "examples/strict.yaml").read_text())
    with Simulator(objects=_as_running(objects), kyverno=True) as sim:
        result = run_pytest(tmp_path, "--kspec-spec", str(spec), "--kspec-kubeconfig",
                            sim.kubeconfig_path, "--kspec-types", "compliance")
    assert result.statuses()[
        "compliance::workloads.containers.required.readOnlyRootFilesystem"] == "failed"
    assert any(_ours(str(e.get("resource", ""))) for e in result.events()), result.events()


# -- RBAC proven from the rendered manifests -----------------------------------------------


@pytest.fixture
def cluster_for(tmp_path: Path) -> Iterator[Any]:
    """A simulated cluster holding the demo workloads and one overlay's rendered objects,
    RBAC on; yields (simulator, kubeconfig of the kspec ServiceAccount)."""
    started: list[Simulator] = []

    def start(overlay: str, extra: list[Obj] | None = None) -> tuple[Simulator, str]:
        replaced = {(o["kind"], o["metadata"]["name"]) for o in extra or []}
        demo = [o for o in load_objects([REPO / "examples/demo-cluster.yaml"])
                if (o["kind"], o["metadata"]["name"]) not in replaced]
        objects = [*demo, *render(overlay), *(extra or [])]
        sim = Simulator(objects=objects, kyverno=True, rbac=True,
                        users={"sa-token": (SA_USER, SA_GROUPS)})
        sim.start()
        started.append(sim)
        return sim, sim.kubeconfig_for("sa-token", str(tmp_path / f"{overlay}.kubeconfig"))

    yield start
    for sim in started:
        sim.stop()


def test_detect_role_is_read_only_and_has_no_secrets() -> None:
    role = one(render("detect"), "ClusterRole", "kspec-detect")
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert not {"secrets", "configmaps", "*"} & set(rule["resources"])


def test_every_check_of_the_strict_example_runs_with_only_kspec_detect(
        tmp_path: Path, cluster_for: Any) -> None:
    sim, kubeconfig = cluster_for("detect")
    spec = tmp_path / "strict.yaml"
    spec.write_text((REPO / "examples/strict.yaml").read_text())
    result = run_pytest(tmp_path, "--kspec-spec", str(spec), "--kspec-kubeconfig", kubeconfig)
    denied = [r for r in sim.requests if r.status == 403]
    assert result.report is not None, result.stdout
    assert result.report["kspec"]["errors"] == []
    assert denied == []
    statuses = set(result.statuses().values())
    assert statuses <= {"passed", "failed"} and "failed" in statuses


def _configmap_spec(overlay: str, tmp_path: Path) -> Path:
    """The spec the overlay's pod would read from its ConfigMap."""
    config = one(render(overlay), "ConfigMap")
    path = tmp_path / "cluster-spec.yaml"
    path.write_text(config["data"]["cluster-spec.yaml"])
    return path


def test_remediate_overlay_restores_policies_with_its_own_binding(
        tmp_path: Path, cluster_for: Any) -> None:
    spec = _configmap_spec("remediate", tmp_path)
    policies = generate_policies(load_spec(spec))
    weakened = copy.deepcopy(policies[1])
    weakened["spec"]["validationFailureAction"] = "Audit"
    sim, kubeconfig = cluster_for("remediate", [*policies[2:], weakened])
    sim.delete("kyverno.io/v1", "ClusterPolicy", policies[0]["metadata"]["name"])
    config = tmp_path / "drift-config.yaml"
    config.write_text(one(render("remediate"), "ConfigMap")["data"]["drift-config.yaml"]
                      .replace("/var/lib/kspec/history.db", str(tmp_path / "h.db")))
    proc = subprocess.run(
        [*KSPEC, "drift", "detect", "--spec", str(spec), "--config", str(config),
         "--kubeconfig", kubeconfig, "--types", "policy", "--reports", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # drift was found (and fixed)
    report = json.loads((tmp_path / "r" / "drift-report.json").read_text())
    statuses = {e["remediation"]["status"] for e in report["events"] if e.get("remediation")}
    assert statuses == {"verified"}, json.dumps(report["events"], indent=1)
    assert not [r for r in sim.requests if r.status == 403]
    again = subprocess.run(
        [*KSPEC, "drift", "detect", "--spec", str(spec), "--kubeconfig", kubeconfig,
         "--types", "policy", "--reports", str(tmp_path / "r2"), "--no-history"],
        capture_output=True, text=True, timeout=180, check=False)
    assert again.returncode == 0, again.stdout


WRITES = [
    ("create", {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x", "namespace": "kspec-system"}}),
    ("create", {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "x", "namespace": "kspec-system"}}),
    ("create", {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "x", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]}}),
    ("create", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "escalate"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "kspec",
                              "namespace": "kspec-system"}]}),
    ("delete", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    ("patch", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "default-deny-all", "namespace": "kspec-system"}}),
]


@pytest.mark.parametrize("overlay", ["detect", "remediate"])
def test_every_other_write_is_forbidden(overlay: str, cluster_for: Any) -> None:
    _, kubeconfig = cluster_for(overlay)
    cluster = Cluster.connect(kubeconfig)
    try:
        for verb, obj in WRITES:
            with pytest.raises(ApiError) as denied:
                if verb == "create":
                    cluster.create(obj)
                elif verb == "delete":
                    cluster.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
                else:
                    cluster.patch(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                                  {"metadata": {"labels": {"x": "y"}}},
                                  namespace=obj["metadata"]["namespace"])
            assert denied.value.status == 403, (verb, obj["kind"], denied.value)
        policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                  "metadata": {"name": "probe"},
                  "spec": {"rules": [{"name": "r", "match": {"any": [{"resources": {
                      "kinds": ["Pod"]}}]}, "validate": {"message": "m", "pattern": {
                          "metadata": {"name": "?*"}}}}]}}
        if overlay == "detect":
            with pytest.raises(ApiError) as denied:
                cluster.create(policy)
            assert denied.value.status == 403
        else:
            assert cluster.create(policy)["metadata"]["name"] == "probe"
    finally:
        cluster.close()
