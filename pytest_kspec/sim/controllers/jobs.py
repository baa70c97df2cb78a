"""Job → Pods → completion, and CronJob → Jobs on schedule (by the simulator's clock).

A Job keeps ``parallelism`` pods running until ``completions`` have Succeeded (the kubelet
runs a Job's pods to Succeeded), then sets ``Complete`` (and ``SuccessCriteriaMet``), with
``succeeded``, ``startTime`` and ``completionTime``. A suspended Job runs nothing.

A CronJob creates ``<name>-<minutes since the epoch>`` Jobs at the times its 5-field schedule
(``@hourly`` and friends, ``*/n``, ranges, lists; ``spec.timeZone``) names, keeps ``active``,
``lastScheduleTime`` and ``lastSuccessfulTime`` true, honours ``concurrencyPolicy`` and
``suspend``, and deletes finished Jobs past the history limits. Only the most recent missed
time runs, as the real controller does; tests move the clock with ``Simulator.advance()``.

PYTEST_DONT_REWRITE: engine module, kept out of pytest's assertion rewriting.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_kspec.sim.controllers.base import (
    CRONJOBS,
    JOBS,
    PODS,
    Base,
    controller_of,
    deleting,
    owned_by,
    owner_ref,
    owner_triggers,
    pod_active,
)
from pytest_kspec.sim.controllers.cron import CronError, Schedule
from pytest_kspec.sim.controllers.manager import parse_time
from pytest_kspec.sim.store import Key

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _finished(job: dict[str, Any]) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


class JobController(Base):
    name = "job"
    component = "job-controller"
    primary: Key = JOBS

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key in (JOBS, PODS):
            return owner_triggers(key, obj, "Job", JOBS)
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            job = self.get(JOBS, namespace, name)
            if job is None or deleting(job) or _finished(job):
                return None
            spec = job.get("spec") or {}
            completions = 1 if spec.get("completions") is None else int(spec["completions"])
            parallelism = 1 if spec.get("parallelism") is None else int(spec["parallelism"])
            pods = self.pods_of(job)
            succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase")
                            == "Succeeded")
            failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
            active = [p for p in pods if pod_active(p)]
            if not spec.get("suspend"):
                want = min(parallelism, completions - succeeded) - len(active)
                uid = str(job["metadata"].get("uid"))
                labels = {"batch.kubernetes.io/controller-uid": uid,
                          "batch.kubernetes.io/job-name": name, "controller-uid": uid,
                          "job-name": name}
                for _ in range(max(0, want)):
                    pod = self.pod_from_template(job, spec.get("template") or {},
                                                 labels=labels)
                    created = self.create(PODS, pod)
                    if created is None:
                        break
                    self.event(job, "SuccessfulCreate",
                               f"Created pod: {created['metadata']['name']}")
                    active.append(created)
            self._status(job, succeeded, failed, active, completions)
        return None

    def _status(self, job: dict[str, Any], succeeded: int, failed: int,
                active: list[dict[str, Any]], completions: int) -> None:
        old = job.get("status") or {}
        when = self.clock.stamp()
        status: dict[str, Any] = {}
        if not (job.get("spec") or {}).get("suspend"):
            status["startTime"] = old.get("startTime") or when
        if active:
            status["active"] = len(active)
        status["ready"] = sum(1 for p in active if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []))
        if succeeded:
            status["succeeded"] = succeeded
        if failed:
            status["failed"] = failed
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        if succeeded >= completions:
            cond = {"lastProbeTime": when, "lastTransitionTime": when, "status": "True"}
            status["conditions"] = [
                dict(cond, type="SuccessCriteriaMet", reason="CompletionsReached",
                     message="Reached expected number of succeeded pods"),
                dict(cond, type="Complete", reason="CompletionsReached",
                     message="Reached expected number of succeeded pods")]
            status["completionTime"] = when
            status.pop("active", None)
            self.event(job, "Completed", "Job completed")
        if self.set_status(JOBS, job, status) and succeeded >= completions:
            owner = controller_of(job)
            if owner is not None and owner.get("kind") == "CronJob":
                self.m.enqueue("cronjob", job["metadata"].get("namespace") or "",
                               str(owner.get("name")))


class CronJobController(Base):
    name = "cronjob"
    component = "cronjob-controller"
    primary: Key = CRONJOBS
    timed: Key = CRONJOBS

    def triggers(self, key: Key, obj: dict[str, Any], event_type: str) -> list[tuple[str, str]]:
        if key in (CRONJOBS, JOBS):
            return owner_triggers(key, obj, "CronJob", CRONJOBS)
        return []

    def reconcile(self, namespace: str, name: str) -> float | None:
        with self.store.cond:
            cj = self.get(CRONJOBS, namespace, name)
            if cj is None or deleting(cj):
                return None
            spec = cj.get("spec") or {}
            try:
                schedule = Schedule(str(spec.get("schedule") or ""), spec.get("timeZone"))
            except CronError:
                return None
            jobs = [j for j in self.objects(JOBS, namespace) if owned_by(j, cj)]
            running = [j for j in jobs if not _finished(j)]
            now = self.clock.now()
            status = copy.deepcopy(cj.get("status") or {})
            last = parse_time(status.get("lastScheduleTime")) or parse_time(
                cj["metadata"].get("creationTimestamp")) or now
            due = schedule.latest(last, now)
            if due is not None and not spec.get("suspend"):
                deadline = spec.get("startingDeadlineSeconds")
                late = deadline is not None and now - due > int(deadline)
                policy = spec.get("concurrencyPolicy", "Allow")
                if not late and not (policy == "Forbid" and running):
                    if policy == "Replace":
                        for job in running:
                            self.delete(JOBS, namespace, job["metadata"]["name"],
                                        propagation="Background")
                        running = []
                    created = self._job(cj, due)
                    if created is not None:
                        running.append(created)
                status["lastScheduleTime"] = self.clock.stamp(due)
            success = [j for j in jobs if _finished(j) == "Complete"]
            done_times = [parse_time((j.get("status") or {}).get("completionTime"))
                          for j in success]
            if any(done_times):
                status["lastSuccessfulTime"] = self.clock.stamp(max(t for t in done_times if t))
            if running:
                status["active"] = [{"apiVersion": "batch/v1", "kind": "Job",
                                     "name": j["metadata"]["name"], "namespace": namespace,
                                     "uid": j["metadata"].get("uid"),
                                     "resourceVersion": j["metadata"].get("resourceVersion")}
                                    for j in running]
            else:
                status.pop("active", None)
            self.set_status(CRONJOBS, cj, status)
            self._history(spec, jobs)
            nxt = schedule.next_after(now)
        return None if nxt is None else max(0.05, nxt - now)

    def _job(self, cj: dict[str, Any], due: float) -> dict[str, Any] | None:
        template = (cj.get("spec") or {}).get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        meta: dict[str, Any] = {
            "name": f"{cj['metadata']['name']}-{int(due // 60)}",
            "namespace": cj["metadata"].get("namespace"),
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": {**(tmeta.get("annotations") or {}),
                            SCHEDULED_AT: self.clock.stamp(due)},
            "ownerReferences": [owner_ref(cj)]}
        job = self.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                                 "spec": copy.deepcopy(template.get("spec") or {})})
        if job is not None:
            self.event(cj, "SuccessfulCreate", f"Created job {meta['name']}")
        return job

    def _history(self, spec: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                            ("Failed", spec.get("failedJobsHistoryLimit", 1))):
            done = sorted((j for j in jobs if _finished(j) == kind),
                          key=lambda j: j["metadata"]["name"])
            for job in done[: max(0, len(done) - int(limit))]:
                self.delete(JOBS, job["metadata"].get("namespace") or "",
                            job["metadata"]["name"], propagation="Background")
