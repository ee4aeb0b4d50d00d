"""The jobs domain's event payloads, built here only (docs/API.md lists them).

Operator-side events (job:queued, job:cancelled) carry the job's summary
without nulls; the lease check's events (job:queued after a lease expired,
job:failed LEASE_EXPIRED/TIMED_OUT) carry the run's view of the job, nulls
included; the agent's own events (job:progress, job:completed, job:failed)
carry the run and what the agent reported.
"""
from __future__ import annotations

from typing import Any

from chalicelib.jobs.rules import Status
from chalicelib.jobs.models import Job
from chalicelib.jobs.store import JobRun

QUEUED, CANCELLED, PROGRESS = "job:queued", "job:cancelled", "job:progress"
COMPLETED, FAILED = "job:completed", "job:failed"


def _without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _summary(job: Job, status: Status, at: str, **extra: Any) -> dict[str, Any]:
    return _without_nulls({"jobId": job.job_id, "status": status.value, "type": job.job_type,
                           "agentId": job.agent_id, "pool": job.pool, "attempts": job.attempts, "at": at,
                           **extra})


def queued(job: Job, at: str) -> dict[str, Any]:
    """A new job, waiting for its agent or pool."""
    return _summary(job, Status.QUEUED, at, priority=job.priority)


def cancelled(job: Job, at: str) -> dict[str, Any]:
    """`job` as it was when cancelled (its run, if it was running)."""
    return _summary(job, Status.CANCELLED, at, runId=job.run_id if job.status is Status.RUNNING else None,
                    claimedBy=job.claimed_by)


def progress(job_id: str, run_id: str, agent_id: str, percent: float, message: str | None,
             at: str) -> dict[str, Any]:
    return _without_nulls({"jobId": job_id, "runId": run_id, "status": Status.RUNNING.value, "claimedBy": agent_id,
                           "progressPercent": percent, "progressMessage": message, "at": at})


def finished_by_agent(job_id: str, run_id: str, agent_id: str, status: Status, result: Any, error: Any,
                      at: str) -> tuple[str, dict[str, Any]]:
    """(event, data) of an agent's completion."""
    data: dict[str, Any] = {"jobId": job_id, "runId": run_id, "status": status.value, "claimedBy": agent_id,
                            "at": at}
    if result is not None:
        data["result"] = result
    if error is not None:
        data["error"] = error
    return (COMPLETED if status is Status.COMPLETED else FAILED), data


def _of_run(run: JobRun, at: str) -> dict[str, Any]:
    return {"jobId": run.job_id, "runId": run.run_id, "type": run.job_type, "agentId": run.agent_id,
            "pool": run.pool, "attempts": run.attempt, "at": at}


def requeued(run: JobRun, reason: str, at: str) -> dict[str, Any]:
    """The lease of `run` expired with attempts left: the job waits again."""
    return {**_of_run(run, at), "status": Status.QUEUED.value, "reason": reason}


def lease_failed(run: JobRun, error: dict[str, Any], at: str) -> dict[str, Any]:
    """The lease expired on the last attempt, or the run passed its timeout."""
    return {**_of_run(run, at), "status": Status.FAILED.value, "claimedBy": run.claimed_by, "error": error}
