"""Loading and dumping state, the kspec_sim fixture, and ``kspec sim serve``."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from sim_helpers import api_client, raw

import pytest_kspec.sim
from pytest_kspec.cli.sim import add_arguments, run
from pytest_kspec.errors import SimulatorError
from pytest_kspec.sim import Simulator, dump_objects, load_objects

STATE = """apiVersion: v1
kind: Pod
metadata: {name: api, namespace: prod, labels: {app: api}}
spec:
  containers: [{name: api, image: "registry/api:1"}]
status: {phase: Running}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings, namespace: prod}
  data: {mode: strict}
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: disallow-privileged}
spec: {validationFailureAction: Enforce, rules: []}
"""


def test_load_and_dump_round_trip(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "objects.yaml").write_text(STATE)
    objs = load_objects(tmp_path / "state")
    assert [o["kind"] for o in objs] == ["Pod", "ConfigMap", "ClusterPolicy"]
    sim = Simulator(objs, kyverno=True)
    assert sim.get("v1", "Namespace", "prod") is not None  # created for the loaded objects
    assert sim.get("v1", "Pod", "api", "prod")["status"]["phase"] == "Running"
    dumped = list(yaml.safe_load_all(sim.dump()))
    assert dumped[0]["kind"] == "Namespace"
    kinds = [(d["kind"], d["metadata"]["name"]) for d in dumped]
    assert ("ClusterPolicy", "disallow-privileged") in kinds
    crd = ("CustomResourceDefinition", "clusterpolicies.kyverno.io")
    assert kinds.index(crd) < kinds.index(("ClusterPolicy", "disallow-privileged"))
    assert sim.dump() == sim.dump()  # deterministic
    again = Simulator(list(yaml.safe_load_all(sim.dump())))
    pod = again.get("v1", "Pod", "api", "prod")
    assert pod is not None
    assert pod["metadata"]["uid"] == sim.get("v1", "Pod", "api", "prod")["metadata"]["uid"]
    assert "kind: ConfigMap" in dump_objects([{"kind": "ConfigMap"}])


def test_bad_state_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: x\n")
    with pytest.raises(SimulatorError, match=r"bad.yaml:\d+: invalid YAML"):
        load_objects(bad)
    nokind = tmp_path / "nokind.yaml"
    nokind.write_text("metadata: {name: x}\n")
    with pytest.raises(SimulatorError, match="without apiVersion/kind"):
        load_objects(nokind)
    with pytest.raises(SimulatorError, match=r"example\.com/v1 Widget: the simulator serves"):
        Simulator([{"apiVersion": "example.com/v1", "kind": "Widget",
                    "metadata": {"name": "w"}}])


def test_default_namespaces(kspec_sim: Simulator) -> None:
    v1 = client.CoreV1Api(api_client(kspec_sim))
    names = [n.metadata.name for n in v1.list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    kube_system = kspec_sim.get("v1", "Namespace", "kube-system")
    assert kube_system is not None and kube_system["metadata"]["uid"] == kspec_sim.kube_system_uid
    assert kspec_sim.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def test_serve_runs_until_stopped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(STATE)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--state", str(state), "--kubeconfig-out",
                              str(tmp_path / "kc"), "--version", "1.30.1"])
    ready, stop = threading.Event(), threading.Event()
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(run(args, ready=ready, stop=stop)))
    t.start()
    assert ready.wait(10)
    out = capsys.readouterr().out
    url = out.split("serving at ")[1].split()[0]
    written = yaml.safe_load((tmp_path / "kc").read_text())
    assert written["clusters"][0]["cluster"]["server"] == url
    api = client.VersionApi(config.new_client_from_config(str(tmp_path / "kc")))
    assert api.get_code().git_version == "v1.30.1"
    stop.set()
    t.join(10)
    assert codes == [0]


def test_serve_bad_state_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--state", str(tmp_path / "missing.yaml"), "--no-kyverno"])
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing.yaml: no such file or folder" in err


def test_plain_http_mode() -> None:
    with Simulator(tls=False) as sim:
        assert sim.url.startswith("http://")
        assert raw(sim, "GET", "/version").json()["gitVersion"] == "v1.29.4"


def test_state_objects_replace_what_the_simulator_preloads() -> None:
    crds = [d for d in yaml.safe_load_all(
        (Path(pytest_kspec.sim.__file__).parent / "data" / "kyverno-crds.yaml").read_text()) if d]
    default = {"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "default", "labels": {"team": "platform"}}}
    uid = "0d5e7a4c-0000-4000-8000-000000000001"
    kube_system = {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "kube-system", "uid": uid}}
    with Simulator(objects=[default, kube_system, *crds], kyverno=True) as sim:
        stored = sim.get("v1", "Namespace", "default")
        assert stored is not None and stored["metadata"]["labels"]["team"] == "platform"
        assert sim.kube_system_uid == uid
        assert sim.list("kyverno.io/v1", "ClusterPolicy") == []
    with pytest.raises(SimulatorError, match="already exists"):
        Simulator(objects=[crds[0], crds[0]])


def test_serve_loads_every_state_file_together(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A custom resource in the first --state file, its CRD in the second: the CRD is
    served first, whichever file holds it, as when the files are one folder."""
    widgets = tmp_path / "widgets.yaml"
    widgets.write_text("apiVersion: example.com/v1\nkind: Widget\n"
                       "metadata: {name: w1, namespace: shop}\nspec: {size: 3}\n")
    crd = tmp_path / "crd.yaml"
    crd.write_text(yaml.safe_dump({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]}}))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--state", str(widgets), "--state", str(crd), "--no-kyverno",
                              "--kubeconfig-out", str(tmp_path / "kc")])
    ready, stop = threading.Event(), threading.Event()
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(run(args, ready=ready, stop=stop)))
    t.start()
    try:
        assert ready.wait(10), capsys.readouterr().err
        api = client.CustomObjectsApi(config.new_client_from_config(str(tmp_path / "kc")))
        widget = api.get_namespaced_custom_object("example.com", "v1", "shop", "widgets", "w1")
        assert widget["spec"] == {"size": 3}
        assert widget["metadata"]["managedFields"][0]["manager"] == "kspec-sim"
    finally:
        stop.set()
        t.join(10)
    assert codes == [0]
