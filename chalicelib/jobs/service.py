"""Jobs: create, read, list, cancel, and the agent side (poll, progress, complete).

Every state change is one TransactWriteItems holding the conditional writes and
the outbox event (and, for operator actions, the audit event). Errors are
classified only after a write failed, with one extra read on that path.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, TypeVar

from chalicelib.agents import service as agents
from chalicelib.aws import dynamo
from chalicelib.core import audit, clock, ids
from chalicelib.core.auth import Principal
from chalicelib.core.config import settings
from chalicelib.core.errors import (
    Conflict, Forbidden, InvalidTransition, JobNotRunning, NotFound, PayloadTooLarge, Unavailable, ValidationError,
)
from chalicelib.events.outbox import event_put
from chalicelib.jobs import leases, rules, store
from chalicelib.jobs.rules import Status

log = logging.getLogger(__name__)
T = TypeVar("T")
CLAIM_SLACK = 4  # extra candidates read per poll, for the ones another poll wins first


def idle_poll_seconds() -> int:
    """nextPollSeconds when a poll found nothing (JOBS_IDLE_POLL_SECONDS through Settings, default 5)."""
    return settings().jobs_idle_poll_seconds


def _retry_conflicts(fn: Callable[[], T]) -> T:
    """Transactions touching the same item at the same moment cancel each other: retried, then 503."""
    try:
        return dynamo.retry_conflicts(fn)
    except dynamo.TransactionConflict:
        raise Unavailable("the job is busy; retry", headers={"Retry-After": "1"}) from None


# --- views -----------------------------------------------------------------------

def view(job: dict, run: dict | None = None) -> dict:
    out: dict[str, Any] = {
        "jobId": job["jobId"], "type": job["jobType"], "payload": json.loads(job["payloadJson"]),
        "status": job["status"], "attempts": int(job.get("attempts", 0)), "maxAttempts": int(job["maxAttempts"]),
        "priority": int(job["priority"]), "leaseSeconds": int(job["leaseSeconds"]),
        "createdAt": job["createdAt"], "updatedAt": job["updatedAt"],
    }
    for name in ("agentId", "pool", "claimedBy", "runId", "timeoutSeconds", "startedAt", "finishedAt"):
        if job.get(name) is not None:
            out[name] = job[name]
    if job.get("resultJson") is not None:
        out["result"] = json.loads(job["resultJson"])
    if job.get("errorJson") is not None:
        out["error"] = json.loads(job["errorJson"])
    # Progress lives on the run item; it is the latest run's only while that run is the job's.
    if run is not None and run.get("runId") == job.get("runId"):
        for name in ("progressPercent", "progressMessage"):
            if run.get(name) is not None:
                out[name] = run[name]
    return out


def _event_data(job: dict, status: Status, **extra: Any) -> dict:
    data = {"jobId": job["jobId"], "status": status.value, "type": job["jobType"], "agentId": job.get("agentId"),
            "pool": job.get("pool"), "attempts": int(job.get("attempts", 0)), "at": clock.iso()}
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


def _event_agent(job: dict) -> str | None:
    return job.get("claimedBy") or job.get("agentId")


# --- operators -------------------------------------------------------------------

def create(principal: Principal, body: Any, trace_id: str | None) -> dict:
    if (body.agent_id is None) == (body.pool is None):
        field = "agentId" if body.agent_id is None else "pool"
        raise ValidationError("give exactly one of agentId and pool",
                              [{"field": field, "message": "exactly one of agentId and pool is required"}])
    if rules.json_size(body.payload) > rules.PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge(f"payload is over {rules.PAYLOAD_MAX_BYTES} bytes",
                              [{"field": "payload", "message": f"at most {rules.PAYLOAD_MAX_BYTES} bytes of JSON"}])
    org_id = principal.org_id
    job_id, now = ids.new_id(), clock.iso()
    job = store.new_job_item(org_id, job_id, body.agent_id, body.pool, body.type, body.payload, body.priority,
                             body.timeout_seconds, body.max_attempts, body.lease_seconds, now)
    ops: list = [store.job_put(job),
                 audit.audit_put(org_id, "job", job_id, "created", principal.actor, trace_id,
                                 {"agentId": body.agent_id, "pool": body.pool, "type": body.type}),
                 event_put(org_id, "job:queued", _event_data(job, Status.QUEUED, priority=body.priority),
                           agent_id=body.agent_id)]
    if body.agent_id is not None:
        ops.insert(0, agents.active_check(org_id, body.agent_id))
    try:
        _retry_conflicts(lambda: dynamo.transact(ops))
    except dynamo.ConditionFailed as failed:
        if body.agent_id is not None and failed.index == 0:
            if agents.is_active(org_id, body.agent_id) is None:
                raise NotFound(f"no agent {body.agent_id}", [{"field": "agentId", "message": "no such agent"}]) from None
            raise Conflict(f"agent {body.agent_id} is inactive",
                           [{"field": "agentId", "message": "the agent is inactive"}]) from None
        raise
    return view(job)


def get(org_id: str, job_id: str) -> dict:
    job, run = store.get_job_and_run(org_id, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return view(job, run)


def list_page(org_id: str, agent_id: str | None, pool: str | None, status: str | None, limit: int,
              start_key: dict | None) -> tuple[list[dict], dict | None]:
    target = rules.target(agent_id, pool) if (agent_id or pool) else None
    page = store.list_jobs(org_id, target, Status(status) if status else None, limit, start_key)
    runs = store.runs_of(org_id, [j["jobId"] for j in page.items if j.get("runId")])
    return [view(j, runs.get(j["jobId"])) for j in page.items], page.last_key


def cancel(principal: Principal, job_id: str, trace_id: str | None) -> dict:
    org_id = principal.org_id
    for _ in range(4):
        job, run = store.get_job_and_run(org_id, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        status = Status(job["status"])
        if status is Status.CANCELLED:
            return view(job, run)  # cancelling twice is a no-op
        if status.terminal:
            raise InvalidTransition(f"job {job_id} is {status.value}; only QUEUED or RUNNING jobs can be cancelled")
        now_ms = int(clock.now() * 1000)
        now = clock.iso(now_ms / 1000)
        run_id = job.get("runId") if status is Status.RUNNING else None
        ops: list = [store.finish_job_update(org_id, job_id, job["target"], job["orderKey"], Status.CANCELLED, now,
                                             expect=status, run_id=run_id)]
        if run_id:
            ops.append(store.end_run_update(org_id, job_id, run_id, now_ms))
        ops += [audit.audit_put(org_id, "job", job_id, "cancelled", principal.actor, trace_id,
                                {"from": status.value}),
                event_put(org_id, "job:cancelled", _event_data(job, Status.CANCELLED, runId=run_id,
                                                               claimedBy=job.get("claimedBy")),
                          agent_id=_event_agent(job))]
        try:
            _retry_conflicts(lambda: dynamo.transact(ops))
        except dynamo.ConditionFailed:
            continue  # claimed, finished or re-queued meanwhile: judge again
        return view({**job, "status": Status.CANCELLED.value, "finishedAt": now, "updatedAt": now}, run)
    raise Unavailable("the job kept changing; retry", headers={"Retry-After": "1"})


# --- agents --------------------------------------------------------------------------

def poll(org_id: str, agent_id: str, wanted: int) -> dict:
    agent = _retry_conflicts(lambda: agents.for_poll(org_id, agent_id))
    targets = [rules.target(agent_id, None)] + [rules.target(None, p) for p in agent.get("pools") or []]
    candidates = rules.merge_candidates([store.ready(org_id, t, wanted + CLAIM_SLACK) for t in targets])
    claimed: list[dict] = []
    lost = 0
    position = 0
    while len(claimed) < wanted and position < len(candidates):
        batch = candidates[position:position + wanted - len(claimed)]
        position += len(batch)
        now_ms = int(clock.now() * 1000)
        now = clock.iso(now_ms / 1000)
        runs = [store.new_run_item(job, ids.new_id(), agent_id, now_ms, now) for job in batch]
        # The timers first: a claim never exists without its lease check (see leases.py).
        leases.schedule([(leases.message(org_id, r["jobId"], r["runId"]),
                          rules.first_check_ms(now_ms, int(r["leaseSeconds"]), r.get("timeoutSeconds")))
                         for r in runs])
        lost_before = lost
        for job, run in zip(batch, runs):
            try:
                dynamo.transact(store.claim_ops(job, run, now))
            except (dynamo.ConditionFailed, dynamo.TransactionConflict):
                lost += 1  # another poll won it (or it was cancelled): the next candidate
                continue
            claimed.append({
                "jobId": job["jobId"], "runId": run["runId"], "type": job["jobType"],
                "payload": json.loads(job["payloadJson"]), "attempt": run["attempt"],
                "leaseExpiresAt": clock.iso((now_ms + int(run["leaseSeconds"]) * 1000) / 1000),
                "leaseSeconds": int(run["leaseSeconds"]),
                **({"timeoutSeconds": int(run["timeoutSeconds"])} if run.get("timeoutSeconds") else {}),
            })
        if lost > lost_before:
            candidates[position:] = rules.spread(candidates[position:])
    return {"jobs": claimed,
            "nextPollSeconds": rules.next_poll_seconds(len(claimed), wanted, lost, idle_poll_seconds())}


def _not_running(org_id: str, job_id: str, run_id: str, agent_id: str) -> Exception:
    """Why a progress/completion write failed (one read on the error path only)."""
    active = agents.is_active(org_id, agent_id)
    if not active:
        return Forbidden(f"agent {agent_id} is unknown or inactive")
    job, run = store.get_job_and_run(org_id, job_id)
    if job is None:
        return NotFound(f"no job {job_id}")
    if run is not None and run.get("runId") == run_id and run.get("claimedBy") != agent_id:
        return Forbidden(f"run {run_id} of job {job_id} belongs to another agent")
    return JobNotRunning(f"job {job_id} is {job['status']} and not running under run {run_id}",
                         [{"field": "runId", "message": "not the job's running run"}])


def progress(org_id: str, job_id: str, run_id: str, agent_id: str, percent: float, message: str | None) -> None:
    now_ms = int(clock.now() * 1000)
    now = clock.iso(now_ms / 1000)
    ops = [agents.active_check(org_id, agent_id),
           store.progress_update(org_id, job_id, run_id, agent_id, percent, message, now_ms, now),
           event_put(org_id, "job:progress",
                     {k: v for k, v in {"jobId": job_id, "runId": run_id, "status": Status.RUNNING.value,
                                        "claimedBy": agent_id, "progressPercent": percent,
                                        "progressMessage": message, "at": now}.items() if v is not None},
                     agent_id=agent_id)]
    try:
        _retry_conflicts(lambda: dynamo.transact(ops))
    except dynamo.ConditionFailed:
        raise _not_running(org_id, job_id, run_id, agent_id) from None


def complete(org_id: str, job_id: str, run_id: str, agent_id: str, status: str, result: Any, error: Any) -> None:
    if result is not None and rules.json_size(result) > rules.PAYLOAD_MAX_BYTES:
        raise PayloadTooLarge(f"result is over {rules.PAYLOAD_MAX_BYTES} bytes",
                              [{"field": "result", "message": f"at most {rules.PAYLOAD_MAX_BYTES} bytes of JSON"}])
    new = Status(status)
    error = rules.normalize_error(error)
    if new is Status.FAILED and error is None:
        error = {"code": rules.AGENT_FAILED, "message": "the agent reported a failure"}
    fingerprint = rules.completion_fingerprint(new.value, result, error)
    now_ms = int(clock.now() * 1000)
    now = clock.iso(now_ms / 1000)
    data = {"jobId": job_id, "runId": run_id, "status": new.value, "claimedBy": agent_id, "at": now}
    if result is not None:
        data["result"] = result
    if error is not None:
        data["error"] = error
    ops = [agents.active_check(org_id, agent_id),
           store.end_run_update(org_id, job_id, run_id, now_ms, agent_id=agent_id),
           store.complete_job_update(org_id, job_id, run_id, new, now, result, error, fingerprint),
           event_put(org_id, "job:completed" if new is Status.COMPLETED else "job:failed", data, agent_id=agent_id)]
    try:
        _retry_conflicts(lambda: dynamo.transact(ops))
    except dynamo.ConditionFailed:
        job, _run = store.get_job_and_run(org_id, job_id)
        if (job is not None and job.get("runId") == run_id and job.get("completion") == fingerprint
                and job.get("claimedBy") == agent_id):
            return None  # the same completion again: a no-op
        raise _not_running(org_id, job_id, run_id, agent_id) from None
    return None
