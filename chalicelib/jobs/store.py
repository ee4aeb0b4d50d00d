"""Jobs in the main table: keys, index attributes and the conditional writes.

Two items per job, in one partition (one Query reads both):

  PK ORG#{org}#JOB#{jobId}, SK JOB   the job: definition, status, result. In four list indexes.
    GSI1  ORG#{org}#JOBS                       / jobId     every job           GET /jobs
    GSI2  ORG#{org}#JOBS#{status}              / jobId     by status           GET /jobs?status=
    GSI3  ORG#{org}#JOBS#{target}              / jobId     by agent or pool    GET /jobs?agentId= | ?pool=
    GSI4  ORG#{org}#JOBS#{target}#{status}     / jobId,    target and status   GET /jobs?pool=&status=
          (QUEUED: / orderKey, the ready queue a poll reads: highest priority, then oldest)
  PK ORG#{org}#JOB#{jobId}, SK RUN   the current run: runId, claimedBy, lease, progress. In no index.

{target} is agent#{agentId} or pool#{pool}. Progress, the hot write, touches only
the small RUN item: with ALL-projected indexes, every write to the JOB item is
also a write to each of its four index entries, sized by the payload.
"""
from __future__ import annotations

from collections.abc import Iterator

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.jobs import rules
from chalicelib.jobs.rules import Status

RUNNING, ENDED = "RUNNING", "ENDED"  # RUN item states


def _table() -> str:
    return settings().main_table


def job_pk(org_id: str, job_id: str) -> str:
    return f"ORG#{org_id}#JOB#{job_id}"


def job_key(org_id: str, job_id: str) -> dict:
    return {"PK": job_pk(org_id, job_id), "SK": "JOB"}


def run_key(org_id: str, job_id: str) -> dict:
    return {"PK": job_pk(org_id, job_id), "SK": "RUN"}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- index attributes ----------------------------------------------------------

def ready_pk(org_id: str, target: str) -> str:
    return f"ORG#{org_id}#JOBS#{target}#{Status.QUEUED.value}"


def status_index(org_id: str, job_id: str, target: str, status: Status, order_key: str) -> dict:
    """The index attributes that move with the status (GSI2, GSI4)."""
    return {
        "GSI2PK": f"ORG#{org_id}#JOBS#{status.value}", "GSI2SK": job_id,
        "GSI4PK": f"ORG#{org_id}#JOBS#{target}#{status.value}",
        "GSI4SK": order_key if status is Status.QUEUED else job_id,
    }


def list_index(org_id: str, target: str | None, status: Status | None) -> tuple[str, str, bool]:
    """(index, partition, newest_first) for a GET /jobs filter."""
    if target and status:
        # Queued jobs list in the order polls will claim them; the others newest first.
        return "GSI4", f"ORG#{org_id}#JOBS#{target}#{status.value}", status is not Status.QUEUED
    if target:
        return "GSI3", f"ORG#{org_id}#JOBS#{target}", True
    if status:
        return "GSI2", f"ORG#{org_id}#JOBS#{status.value}", True
    return "GSI1", f"ORG#{org_id}#JOBS", True


# --- items -----------------------------------------------------------------------

def new_job_item(org_id: str, job_id: str, agent_id: str | None, pool: str | None, job_type: str, payload: Any,
                 priority: int, timeout_seconds: int | None, max_attempts: int, lease_seconds: int,
                 now: str) -> dict:
    target = rules.target(agent_id, pool)
    order_key = rules.order_key(priority, job_id)
    return {
        **job_key(org_id, job_id), "type": "job", "orgId": org_id, "jobId": job_id,
        "agentId": agent_id, "pool": pool, "target": target, "jobType": job_type,
        "payloadJson": _dumps(payload), "status": Status.QUEUED.value, "priority": priority,
        "attempts": 0, "maxAttempts": max_attempts, "leaseSeconds": lease_seconds,
        "timeoutSeconds": timeout_seconds, "createdAt": now, "updatedAt": now, "orderKey": order_key,
        "GSI1PK": f"ORG#{org_id}#JOBS", "GSI1SK": job_id,
        "GSI3PK": f"ORG#{org_id}#JOBS#{target}", "GSI3SK": job_id,
        **status_index(org_id, job_id, target, Status.QUEUED, order_key),
        # The GSI4 partitions an agent's completion moves the job to, kept on the item so
        # that POST /jobs/complete can move it without reading it first (Update.copy).
        **{_finish_pk_attr(s): f"ORG#{org_id}#JOBS#{target}#{s.value}" for s in (Status.COMPLETED, Status.FAILED)},
    }


def _finish_pk_attr(status: Status) -> str:
    return f"gsi4{status.value.title()}"


def job_put(item: dict) -> dynamo.Put:
    return dynamo.Put(_table(), item, condition="attribute_not_exists(PK)")


def new_run_item(job: dict, run_id: str, agent_id: str, now_ms: int, now_iso: str) -> dict:
    attempt = int(job.get("attempts", 0)) + 1
    timeout = job.get("timeoutSeconds")
    return {
        **run_key(job["orgId"], job["jobId"]), "type": "jobRun", "orgId": job["orgId"], "jobId": job["jobId"],
        "runId": run_id, "state": RUNNING, "claimedBy": agent_id, "attempt": attempt,
        "maxAttempts": job["maxAttempts"], "leaseSeconds": job["leaseSeconds"], "timeoutSeconds": timeout,
        "startedAt": now_iso, "startedMs": now_ms, "renewedMs": now_ms,
        "deadlineMs": now_ms + int(timeout) * 1000 if timeout else None,
        # What a re-queue needs to put the job back in its ready queue without reading it.
        "target": job["target"], "orderKey": job["orderKey"], "jobAgentId": job.get("agentId"),
        "pool": job.get("pool"), "jobType": job["jobType"],
    }


def claim_ops(job: dict, run: dict, now_iso: str) -> list:
    """QUEUED -> RUNNING, conditional on the status and attempt count the poll saw."""
    org_id, job_id = job["orgId"], job["jobId"]
    return [
        dynamo.Update(_table(), job_key(org_id, job_id), set={
            "status": Status.RUNNING.value, "attempts": run["attempt"], "runId": run["runId"],
            "claimedBy": run["claimedBy"], "startedAt": now_iso, "updatedAt": now_iso,
            **status_index(org_id, job_id, job["target"], Status.RUNNING, job["orderKey"]),
        }, condition="#st = :queued AND attempts = :seen", names={"#st": "status"},
            values={":queued": Status.QUEUED.value, ":seen": int(job.get("attempts", 0))}),
        dynamo.Put(_table(), run),
    ]


def _run_condition(run_id: str, agent_id: str | None = None, renewed_ms: int | None = None) -> tuple[str, dict, dict]:
    condition = "runId = :run AND #state = :running"
    values: dict[str, Any] = {":run": run_id, ":running": RUNNING}
    if agent_id is not None:
        condition += " AND claimedBy = :agent"
        values[":agent"] = agent_id
    if renewed_ms is not None:
        condition += " AND renewedMs = :renewed"
        values[":renewed"] = renewed_ms
    return condition, {"#state": "state"}, values


def progress_update(org_id: str, job_id: str, run_id: str, agent_id: str, percent: float, message: str | None,
                    now_ms: int, now_iso: str) -> dynamo.Update:
    condition, names, values = _run_condition(run_id, agent_id)
    fields: dict[str, Any] = {"progressPercent": percent, "renewedMs": now_ms, "progressAt": now_iso}
    if message is not None:
        fields["progressMessage"] = message
    return dynamo.Update(_table(), run_key(org_id, job_id), set=fields, condition=condition, names=names,
                         values=values)


def end_run_update(org_id: str, job_id: str, run_id: str, now_ms: int, agent_id: str | None = None,
                   renewed_ms: int | None = None) -> dynamo.Update:
    condition, names, values = _run_condition(run_id, agent_id, renewed_ms)
    return dynamo.Update(_table(), run_key(org_id, job_id), set={"state": ENDED, "endedMs": now_ms},
                         condition=condition, names=names, values=values)


def finish_job_update(org_id: str, job_id: str, target: str, order_key: str, status: Status, now_iso: str,
                      expect: Status, run_id: str | None = None, result: Any = None, error: dict | None = None,
                      fingerprint: str | None = None) -> dynamo.Update:
    """RUNNING or QUEUED -> a terminal status."""
    condition = "#st = :expect"
    values: dict[str, Any] = {":expect": expect.value}
    if run_id is not None:
        condition += " AND runId = :run"
        values[":run"] = run_id
    return dynamo.Update(_table(), job_key(org_id, job_id), set={
        "status": status.value, "finishedAt": now_iso, "updatedAt": now_iso,
        "resultJson": _dumps(result) if result is not None else None,
        "errorJson": _dumps(error) if error is not None else None,
        "completion": fingerprint,
        **status_index(org_id, job_id, target, status, order_key),
    }, condition=condition, names={"#st": "status"}, values=values)


def complete_job_update(org_id: str, job_id: str, run_id: str, status: Status, now_iso: str, result: Any,
                        error: dict | None, fingerprint: str) -> dynamo.Update:
    """RUNNING -> COMPLETED/FAILED by the agent, knowing only the job and run ids."""
    return dynamo.Update(_table(), job_key(org_id, job_id), set={
        "status": status.value, "finishedAt": now_iso, "updatedAt": now_iso,
        "resultJson": _dumps(result) if result is not None else None,
        "errorJson": _dumps(error) if error is not None else None,
        "completion": fingerprint,
        "GSI2PK": f"ORG#{org_id}#JOBS#{status.value}", "GSI2SK": job_id, "GSI4SK": job_id,
    }, copy={"GSI4PK": _finish_pk_attr(status)}, condition="#st = :running AND runId = :run",
        names={"#st": "status"}, values={":running": Status.RUNNING.value, ":run": run_id})


def requeue_ops(run: dict, now_iso: str) -> list:
    """RUNNING -> QUEUED after a lease expired: back into its ready queue, the run deleted.

    Conditional on the run still being the one whose lease was judged expired
    (same runId, no progress since): a late progress wins over the re-queue.
    """
    org_id, job_id = run["orgId"], run["jobId"]
    condition, names, values = _run_condition(run["runId"], renewed_ms=run["renewedMs"])
    return [
        dynamo.Update(_table(), job_key(org_id, job_id), set={
            "status": Status.QUEUED.value, "updatedAt": now_iso,
            **status_index(org_id, job_id, run["target"], Status.QUEUED, run["orderKey"]),
        }, remove=("runId", "claimedBy", "startedAt"), condition="#st = :running AND runId = :run",
            names={"#st": "status"}, values={":running": Status.RUNNING.value, ":run": run["runId"]}),
        dynamo.Delete(_table(), run_key(org_id, job_id), condition=condition, names=names, values=values),
    ]


# --- reads -------------------------------------------------------------------------

def get_job_and_run(org_id: str, job_id: str) -> tuple[dict | None, dict | None]:
    """Both items of a job in one strongly consistent Query."""
    page = dynamo.query(_table(), "PK = :pk", {":pk": job_pk(org_id, job_id)}, consistent=True)
    by_sk = {item["SK"]: item for item in page.items}
    return by_sk.get("JOB"), by_sk.get("RUN")


def get_run(org_id: str, job_id: str) -> dict | None:
    return dynamo.get(_table(), run_key(org_id, job_id), consistent=True)


def ready(org_id: str, target: str, limit: int) -> list[dict]:
    """The first `limit` jobs of a ready queue, in claim order (eventually consistent: claims re-check)."""
    return dynamo.query(_table(), "GSI4PK = :pk", {":pk": ready_pk(org_id, target)}, index="GSI4",
                        limit=limit).items


def list_jobs(org_id: str, target: str | None, status: Status | None, limit: int,
              start_key: dict | None) -> dynamo.Page:
    index, pk, newest_first = list_index(org_id, target, status)
    return dynamo.query(_table(), f"{index}PK = :pk", {":pk": pk}, index=index, limit=limit,
                        start_key=start_key, forward=not newest_first)


def running_jobs(org_id: str) -> Iterator[dict]:
    """Every RUNNING job of an organization (GSI2, a page at a time): the lease sweep's input."""
    return dynamo.query_all(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#JOBS#{Status.RUNNING.value}"},
                            index="GSI2")


def runs_of(org_id: str, job_ids: list[str]) -> dict[str, dict]:
    if not job_ids:
        return {}
    return {item["jobId"]: item for item in dynamo.batch_get(_table(), [run_key(org_id, j) for j in job_ids])}
