"""A scheduler and a fake kubelet per Node, after kwok: pods run without containers.

- An unscheduled Pod (no ``spec.nodeName``, default scheduler) is bound to the Ready,
  schedulable Node running the fewest pods; with Nodes but none that fits it stays Pending
  with ``PodScheduled=False`` (Unschedulable). A cluster without any Node schedules nothing.
- A Pod bound to an existing Ready Node goes Pending (ContainerCreating) → Running with the
  conditions, container statuses (ready, started, restartCount, imageID), hostIP and podIP a
  real kubelet reports; one bound to a Node that does not exist stays Pending.
- A Job's pod runs to Succeeded (containers terminated with exit code 0, reason Completed).
- A Pod deleted with a grace period keeps running with ``deletionTimestamp`` set until the
  kubelet has "stopped" it, then goes away.

``delay`` seconds pass between those steps (0: each step at once, as tests want; demos use a
second or so, so ``kubectl get pods -w`` shows the transitions).

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import time
from typing import Any

from pytest_kspec.sim.controllers.base import NODES, PODS, Base, controller_of, deleting
from pytest_kspec.sim.controllers.manager import Manager, parse_time
from pytest_kspec.sim.defaults import qos_class
from pytest_kspec.sim.store import Key

POD_NET = ipaddress.ip_network("10.244.0.0/16")
NODE_NET = ipaddress.ip_network("10.0.0.0/16")
FINISHED = ("Succeeded", "Failed")


def node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions")
    if not conditions:  # a Node object nobody gave a status: treat it as a healthy kwok node
        return True
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_ip(node: dict[str, Any]) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP" and addr.get("address"):
            return str(addr["address"])
    digest = int(hashlib.sha256(node["metadata"]["name"].encode()).hexdigest(), 16)
    return str(NODE_NET[2 + digest % (NODE_NET.num_addresses - 4)])


def image_id(image: str) -> str:
    """``docker.io/library/nginx@sha256:…`` as containerd reports a pulled image."""
    ref = image.split("@", 1)[0]
    name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in name.split("/", 1)[0] and ":" not in name.split("/", 1)[0]:
        name = f"docker.io/{name}"
    if "@" in image:
        return f"{name}@{image.split('@', 1)[1]}"
    return f"{name}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _condition(kind: str, value: bool, when: str, reason: str | None = None,
               message: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "status": "True" if value else "False",
                           "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


class Kubelet(Base):
    """The scheduler and every Node's kubelet (one controller keyed by pod)."""

    name = "kubelet"
    component = "kubelet"

    def __init__(self, manager: Manager, delay: float = 0.0) -> None:
        super().__init__(manager)
        self.delay = delay
        self._since: dict[str, float] = {}  # pod uid -> monotonic time of its last step

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key == PODS and event_type != "DELETED":
            return [(obj["metadata"].get("namespace") or "", obj["metadata"]["name"])]
        if key == PODS:
            self._since.pop(str(obj["metadata"].get("uid")), None)
        if key == NODES and event_type != "DELETED":
            node = obj["metadata"]["name"]
            return [(p.namespace, p.name) for p in self.store.entries(PODS)
                    if p.obj.get("spec", {}).get("nodeName") in (None, "", node)]
        return []

    def _wait(self, pod: dict[str, Any]) -> float | None:
        """Seconds before this pod may take its next step (None: it may now)."""
        if self.delay <= 0:
            return None
        since = self._since.get(str(pod["metadata"].get("uid")))
        if since is None:
            self._since[str(pod["metadata"].get("uid"))] = time.monotonic()
            return self.delay
        left = since + self.delay - time.monotonic()
        return left if left > 0 else None

    def _stepped(self, pod: dict[str, Any]) -> None:
        self._since[str(pod["metadata"].get("uid"))] = time.monotonic()

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            pod = self.get(PODS, namespace, name)
            if pod is None:
                return None
            spec, status = pod.get("spec") or {}, pod.get("status") or {}
            if deleting(pod):
                return self._terminate(pod)
            if status.get("phase") in FINISHED:
                return None
            node_name = spec.get("nodeName")
            if not node_name:
                self._schedule(pod)
                return None
            node = self.get(NODES, "", str(node_name))
            if node is None or not node_ready(node):
                return None  # no kubelet to run it: stays Pending
            if status.get("phase") != "Running":
                wait = self._wait(pod)
                if wait is not None:
                    if not status.get("hostIP"):
                        self._creating(pod, node)
                    return wait
                self._run(pod, node)
                self._stepped(pod)
                return None
            if self._completes(pod):
                wait = self._wait(pod)
                if wait is not None:
                    return wait
                self._succeed(pod)
            return None

    # --- scheduling --------------------------------------------------------------------------
    def _schedule(self, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        if spec.get("schedulerName") not in (None, "", "default-scheduler"):
            return
        nodes = self.objects(NODES)
        if not nodes:
            return
        fits = [n for n in nodes if node_ready(n) and not (n.get("spec") or {}).get(
            "unschedulable") and _selects(spec.get("nodeSelector") or {}, n)]
        when = self.clock.stamp()
        if not fits:
            message = (f"0/{len(nodes)} nodes are available: {len(nodes)} node(s) didn't match "
                       "Pod's node affinity/selector, were unschedulable or not ready. "
                       "preemption: not eligible due to preemptionPolicy=Never.")
            conditions = [_condition("PodScheduled", False, when, "Unschedulable", message)]
            status = dict(pod.get("status") or {}, phase="Pending", conditions=conditions)
            reasons = [c.get("reason") for c in (pod.get("status") or {}).get("conditions")
                       or []]
            if reasons != ["Unschedulable"] and self.set_status(PODS, pod, status):
                self.event(pod, "FailedScheduling", message, kind="Warning",
                           component="default-scheduler")
            return
        load = {n["metadata"]["name"]: 0 for n in fits}
        for entry in self.store.entries(PODS):
            bound = entry.obj.get("spec", {}).get("nodeName")
            if bound in load:
                load[bound] += 1
        target = min(fits, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
        bound_pod = copy.deepcopy(pod)
        bound_pod["spec"]["nodeName"] = target["metadata"]["name"]
        bound_pod.setdefault("status", {})["conditions"] = [
            _condition("PodScheduled", True, when)]
        stored = self.update(PODS, bound_pod)
        if stored is not None:
            self.event(stored, "Scheduled", f"Successfully assigned "
                       f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']} to "
                       f"{target['metadata']['name']}", component="default-scheduler")

    # --- running -----------------------------------------------------------------------------
    def _completes(self, pod: dict[str, Any]) -> bool:
        ref = controller_of(pod)
        return (ref is not None and ref.get("kind") == "Job"
                and (pod.get("spec") or {}).get("restartPolicy") in ("Never", "OnFailure"))

    def _base_status(self, pod: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        status = copy.deepcopy(pod.get("status") or {})
        when = self.clock.stamp()
        ip = self._pod_ip(pod)
        status.update({"hostIP": node_ip(node), "hostIPs": [{"ip": node_ip(node)}],
                       "podIP": ip, "podIPs": [{"ip": ip}],
                       "qosClass": status.get("qosClass") or qos_class(pod.get("spec") or {}),
                       "startTime": status.get("startTime") or when})
        return status

    def _pod_ip(self, pod: dict[str, Any]) -> str:
        spec = pod.get("spec") or {}
        node = self.get(NODES, "", str(spec.get("nodeName")))
        if spec.get("hostNetwork") and node is not None:
            return node_ip(node)
        digest = int(hashlib.sha256(str(pod["metadata"].get("uid")).encode()).hexdigest(), 16)
        return str(POD_NET[2 + digest % (POD_NET.num_addresses - 4)])

    def _containers(self, pod: dict[str, Any], state: str, when: str) -> list[dict[str, Any]]:
        out = []
        for c in (pod.get("spec") or {}).get("containers") or []:
            image = str(c.get("image") or "")
            entry: dict[str, Any] = {"name": c.get("name"), "image": image,
                                     "imageID": "", "ready": False, "restartCount": 0,
                                     "started": False, "lastState": {}}
            if state == "creating":
                entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
            else:
                entry["imageID"] = image_id(image)
                entry["containerID"] = "containerd://" + hashlib.sha256(
                    f"{pod['metadata'].get('uid')}/{c.get('name')}".encode()).hexdigest()
                if state == "running":
                    entry.update(ready=True, started=True,
                                 state={"running": {"startedAt": when}})
                else:
                    entry["state"] = {"terminated": {
                        "exitCode": 0, "reason": "Completed", "startedAt": when,
                        "finishedAt": when, "containerID": entry["containerID"]}}
            out.append(entry)
        return out

    def _init_containers(self, pod: dict[str, Any], when: str) -> list[dict[str, Any]]:
        out = []
        for c in (pod.get("spec") or {}).get("initContainers") or []:
            image = str(c.get("image") or "")
            cid = "containerd://" + hashlib.sha256(
                f"{pod['metadata'].get('uid')}/init/{c.get('name')}".encode()).hexdigest()
            out.append({"name": c.get("name"), "image": image, "imageID": image_id(image),
                        "containerID": cid, "ready": True, "restartCount": 0,
                        "started": False, "lastState": {},
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                 "startedAt": when, "finishedAt": when,
                                                 "containerID": cid}}})
        return out

    def _creating(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        when = self.clock.stamp()
        status = self._base_status(pod, node)
        status["phase"] = "Pending"
        status["conditions"] = [
            _condition("PodReadyToStartContainers", False, when),
            _condition("Initialized", True, when),
            _condition("Ready", False, when, "ContainersNotReady",
                       "containers with unready status: " + _names(pod)),
            _condition("ContainersReady", False, when, "ContainersNotReady",
                       "containers with unready status: " + _names(pod)),
            _condition("PodScheduled", True, _scheduled_at(pod, when))]
        status["containerStatuses"] = self._containers(pod, "creating", when)
        self.set_status(PODS, pod, status)

    def _run(self, pod: dict[str, Any], node: dict[str, Any]) -> None:
        when = self.clock.stamp()
        status = self._base_status(pod, node)
        status["phase"] = "Running"
        status["conditions"] = [
            _condition("PodReadyToStartContainers", True, when),
            _condition("Initialized", True, when), _condition("Ready", True, when),
            _condition("ContainersReady", True, when),
            _condition("PodScheduled", True, _scheduled_at(pod, when))]
        if (pod.get("spec") or {}).get("initContainers"):
            status["initContainerStatuses"] = self._init_containers(pod, when)
        status["containerStatuses"] = self._containers(pod, "running", when)
        if self.set_status(PODS, pod, status):
            for c in (pod.get("spec") or {}).get("containers") or []:
                self.event(pod, "Pulled", f'Container image "{c.get("image")}" already present '
                           "on machine")
                self.event(pod, "Created", f"Created container {c.get('name')}")
                self.event(pod, "Started", f"Started container {c.get('name')}")

    def _succeed(self, pod: dict[str, Any]) -> None:
        when = self.clock.stamp()
        status = copy.deepcopy(pod.get("status") or {})
        started = {c.get("name"): ((c.get("state") or {}).get("running") or {}).get("startedAt")
                   for c in status.get("containerStatuses") or []}
        status["phase"] = "Succeeded"
        status["conditions"] = [
            _condition("PodReadyToStartContainers", False, when),
            _condition("Initialized", True, when, "PodCompleted"),
            _condition("Ready", False, when, "PodCompleted"),
            _condition("ContainersReady", False, when, "PodCompleted"),
            _condition("PodScheduled", True, _scheduled_at(pod, when))]
        containers = self._containers(pod, "terminated", when)
        for c in containers:
            if started.get(c["name"]):
                c["state"]["terminated"]["startedAt"] = started[c["name"]]
        status["containerStatuses"] = containers
        self.set_status(PODS, pod, status)

    # --- deletion ----------------------------------------------------------------------------
    def _terminate(self, pod: dict[str, Any]) -> float | None:
        meta = pod["metadata"]
        if meta.get("finalizers"):
            return None
        deadline = parse_time(meta.get("deletionTimestamp"))
        grace = float(meta.get("deletionGracePeriodSeconds") or 0)
        wait = min(self.delay, grace)
        if deadline is not None and wait > 0:
            started = deadline - grace
            left = started + wait - self.clock.now()
            if left > 0:
                return left
        self.delete(PODS, meta.get("namespace") or "", meta["name"], grace=0)
        return None


def _names(pod: dict[str, Any]) -> str:
    return "[" + " ".join(str(c.get("name")) for c in
                          (pod.get("spec") or {}).get("containers") or []) + "]"


def _scheduled_at(pod: dict[str, Any], default: str) -> str:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "True":
            return str(c.get("lastTransitionTime") or default)
    return default


def _selects(selector: dict[str, str], node: dict[str, Any]) -> bool:
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())
