"""Jobs in the main table: keys, index attributes and the conditional writes.

Two items per job (typed: Job, JobRun), in one partition (one Query reads both):

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

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo, queues
from chalicelib.core.config import settings
from chalicelib.jobs import rules
from chalicelib.jobs.models import Job
from chalicelib.jobs.rules import Status

RUNNING, ENDED = "RUNNING", "ENDED"  # RUN item states


def _table() -> str:
    return settings().main_table


def job_pk(org_id: str, job_id: str) -> str:
    return f"ORG#{org_id}#JOB#{job_id}"


def job_key(org_id: str, job_id: str) -> dict[str, Any]:
    return {"PK": job_pk(org_id, job_id), "SK": "JOB"}


def run_key(org_id: str, job_id: str) -> dict[str, Any]:
    return {"PK": job_pk(org_id, job_id), "SK": "RUN"}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- index attributes ----------------------------------------------------------

def ready_pk(org_id: str, target: str) -> str:
    return f"ORG#{org_id}#JOBS#{target}#{Status.QUEUED.value}"


def status_index(org_id: str, job_id: str, target: str, status: Status, order_key: str) -> dict[str, Any]:
    """The index attributes that move with the status (GSI2, GSI4)."""
    return {
        "GSI2PK": f"ORG#{org_id}#JOBS#{status.value}", "GSI2SK": job_id,
        "GSI4PK": f"ORG#{org_id}#JOBS#{target}#{status.value}",
        "GSI4SK": order_key if status is Status.QUEUED else job_id,
    }


def failure_index(org_id: str, job_id: str, status: Status, now_iso: str) -> dict[str, Any]:
    """GSI6 (sparse): failed jobs by failure time, read by chalicelib/jobs/failures.py (the ops scan)."""
    if status is not Status.FAILED:
        return {}
    return {"GSI6PK": f"ORG#{org_id}#JOBS#FAILED#AT", "GSI6SK": f"{now_iso}#{job_id}"}


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


# --- items ---------------------------------------------------------------------------

def _finish_pk_attr(status: Status) -> str:
    return f"gsi4{status.value.title()}"


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def job_item(job: Job) -> dict[str, Any]:
    """The JOB item as created (QUEUED); later changes are conditional updates below."""
    org_id, job_id, target, order_key = job.org_id, job.job_id, job.target, job.order_key
    return {
        **job_key(org_id, job_id), "type": "job", "orgId": org_id, "jobId": job_id,
        "agentId": job.agent_id, "pool": job.pool, "target": target, "jobType": job.job_type,
        "payloadJson": _dumps(job.payload), "status": job.status.value, "priority": job.priority,
        "attempts": job.attempts, "maxAttempts": job.max_attempts, "leaseSeconds": job.lease_seconds,
        "timeoutSeconds": job.timeout_seconds, "createdAt": job.created_at, "updatedAt": job.updated_at,
        "orderKey": order_key,
        "GSI1PK": f"ORG#{org_id}#JOBS", "GSI1SK": job_id,
        "GSI3PK": f"ORG#{org_id}#JOBS#{target}", "GSI3SK": job_id,
        **status_index(org_id, job_id, target, job.status, order_key),
        # The GSI4 partitions an agent's completion moves the job to, kept on the item so
        # that POST /jobs/complete can move it without reading it first (Update.copy).
        **{_finish_pk_attr(s): f"ORG#{org_id}#JOBS#{target}#{s.value}" for s in (Status.COMPLETED, Status.FAILED)},
    }


def job_from_item(item: dict[str, Any]) -> Job:
    return Job(
        org_id=item["orgId"], job_id=item["jobId"], agent_id=item.get("agentId"), pool=item.get("pool"),
        type=item["jobType"], payload=_loads(item["payloadJson"]), status=Status(item["status"]),
        priority=int(item["priority"]), attempts=int(item.get("attempts", 0)),
        max_attempts=int(item["maxAttempts"]), lease_seconds=int(item["leaseSeconds"]),
        timeout_seconds=int(item["timeoutSeconds"]) if item.get("timeoutSeconds") is not None else None,
        created_at=item["createdAt"], updated_at=item["updatedAt"], run_id=item.get("runId"),
        claimed_by=item.get("claimedBy"), started_at=item.get("startedAt"), finished_at=item.get("finishedAt"),
        result=_loads(item.get("resultJson")), error=_loads(item.get("errorJson")),
        completion=item.get("completion"))


@dataclass(frozen=True)
class JobRun(rules.Targeted, rules.Run):
    """The RUN item (the current run of a job); `to_item`/`from_item` are its one mapping.

    It is the lease rules' `Run` (what a lease check decides on) plus what a
    re-queue or a lease failure needs (target, priority, the job's agentId and
    pool, its type), so the lease check never reads the JOB item."""

    org_id: str
    job_id: str
    timeout_seconds: int | None
    started_at: str
    agent_id: str | None       # the job's target agent (Job.agent_id), or
    pool: str | None           # the job's target pool
    priority: int
    job_type: str
    progress_percent: float | None = None
    progress_message: str | None = None

    @property
    def event_agent(self) -> str:
        return self.claimed_by

    @classmethod
    def start(cls, job: Job, run_id: str, agent_id: str, now_ms: int, now_iso: str) -> "JobRun":
        timeout = job.timeout_seconds
        return cls(org_id=job.org_id, job_id=job.job_id, run_id=run_id, running=True, claimed_by=agent_id,
                   attempt=job.attempts + 1, max_attempts=job.max_attempts, lease_seconds=job.lease_seconds,
                   timeout_seconds=timeout, started_at=now_iso, started_ms=now_ms, renewed_ms=now_ms,
                   deadline_ms=now_ms + timeout * 1000 if timeout else None, agent_id=job.agent_id,
                   pool=job.pool, priority=job.priority, job_type=job.job_type)

    def to_item(self) -> dict[str, Any]:
        return {
            **run_key(self.org_id, self.job_id), "type": "jobRun", "orgId": self.org_id, "jobId": self.job_id,
            "runId": self.run_id, "state": RUNNING if self.running else ENDED, "claimedBy": self.claimed_by,
            "attempt": self.attempt, "maxAttempts": self.max_attempts, "leaseSeconds": self.lease_seconds,
            "timeoutSeconds": self.timeout_seconds, "startedAt": self.started_at, "startedMs": self.started_ms,
            "renewedMs": self.renewed_ms, "deadlineMs": self.deadline_ms,
            "target": self.target, "orderKey": self.order_key, "priority": self.priority,
            "agentId": self.agent_id, "pool": self.pool, "jobType": self.job_type,
            "progressPercent": self.progress_percent, "progressMessage": self.progress_message,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "JobRun":
        order_key = item["orderKey"]
        return cls(
            org_id=item["orgId"], job_id=item["jobId"], run_id=item["runId"], running=item.get("state") == RUNNING,
            claimed_by=item["claimedBy"], attempt=int(item["attempt"]), max_attempts=int(item["maxAttempts"]),
            lease_seconds=int(item["leaseSeconds"]),
            timeout_seconds=int(item["timeoutSeconds"]) if item.get("timeoutSeconds") is not None else None,
            started_at=item["startedAt"], started_ms=int(item["startedMs"]), renewed_ms=int(item["renewedMs"]),
            deadline_ms=int(item["deadlineMs"]) if item.get("deadlineMs") is not None else None,
            # Runs written before the job's agentId kept its own name on this item carry it as jobAgentId.
            agent_id=item["agentId"] if "agentId" in item else item.get("jobAgentId"), pool=item.get("pool"),
            priority=int(item["priority"]) if item.get("priority") is not None
            else rules.PRIORITY_MAX - int(order_key.split("#", 1)[0]),
            job_type=item["jobType"], progress_percent=item.get("progressPercent"),
            progress_message=item.get("progressMessage"))


def job_put(job: Job) -> dynamo.Put:
    return dynamo.Put(_table(), job_item(job), condition="attribute_not_exists(PK)")


def claim_job_update(job: Job, run: JobRun, now_iso: str) -> dynamo.Update:
    """QUEUED -> RUNNING, conditional on the status and attempt count the poll saw."""
    org_id, job_id = job.org_id, job.job_id
    return dynamo.Update(_table(), job_key(org_id, job_id), set={
        "status": Status.RUNNING.value, "attempts": run.attempt, "runId": run.run_id,
        "claimedBy": run.claimed_by, "startedAt": now_iso, "updatedAt": now_iso,
        **status_index(org_id, job_id, job.target, Status.RUNNING, job.order_key),
    }, condition="#st = :queued AND attempts = :seen", names={"#st": "status"},
        values={":queued": Status.QUEUED.value, ":seen": job.attempts})


def run_put(run: JobRun) -> dynamo.Put:
    return dynamo.Put(_table(), run.to_item())


def _run_condition(run_id: str, agent_id: str | None = None,
                   renewed_ms: int | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
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
                      expect: Status, run_id: str | None = None, result: Any = None, error: dict[str, Any] | None = None,
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
        **failure_index(org_id, job_id, status, now_iso),
    }, condition=condition, names={"#st": "status"}, values=values)


def complete_job_update(org_id: str, job_id: str, run_id: str, status: Status, now_iso: str, result: Any,
                        error: dict[str, Any] | None, fingerprint: str) -> dynamo.Update:
    """RUNNING -> COMPLETED/FAILED by the agent, knowing only the job and run ids."""
    return dynamo.Update(_table(), job_key(org_id, job_id), set={
        "status": status.value, "finishedAt": now_iso, "updatedAt": now_iso,
        "resultJson": _dumps(result) if result is not None else None,
        "errorJson": _dumps(error) if error is not None else None,
        "completion": fingerprint,
        "GSI2PK": f"ORG#{org_id}#JOBS#{status.value}", "GSI2SK": job_id, "GSI4SK": job_id,
        **failure_index(org_id, job_id, status, now_iso),
    }, copy={"GSI4PK": _finish_pk_attr(status)}, condition="#st = :running AND runId = :run",
        names={"#st": "status"}, values={":running": Status.RUNNING.value, ":run": run_id})


def requeue_job_update(run: JobRun, now_iso: str) -> dynamo.Update:
    """RUNNING -> QUEUED after a lease expired: back into its ready queue (see requeue_run_delete)."""
    org_id, job_id = run.org_id, run.job_id
    return dynamo.Update(_table(), job_key(org_id, job_id), set={
        "status": Status.QUEUED.value, "updatedAt": now_iso,
        **status_index(org_id, job_id, run.target, Status.QUEUED, run.order_key),
    }, remove=("runId", "claimedBy", "startedAt"), condition="#st = :running AND runId = :run",
        names={"#st": "status"}, values={":running": Status.RUNNING.value, ":run": run.run_id})


def requeue_run_delete(run: JobRun) -> dynamo.Delete:
    """The re-queued run goes, conditional on it still being the one whose lease was judged
    expired (same runId, no progress since): a late progress wins over the re-queue."""
    condition, names, values = _run_condition(run.run_id, renewed_ms=run.renewed_ms)
    return dynamo.Delete(_table(), run_key(run.org_id, run.job_id), condition=condition, names=names,
                         values=values)


# --- reads -------------------------------------------------------------------------

@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    last_key: dict[str, Any] | None


def get_job_and_run(org_id: str, job_id: str) -> tuple[Job | None, JobRun | None]:
    """Both items of a job in one strongly consistent Query."""
    page = dynamo.query(_table(), "PK = :pk", {":pk": job_pk(org_id, job_id)}, consistent=True)
    by_sk = {item["SK"]: item for item in page.items}
    job, run = by_sk.get("JOB"), by_sk.get("RUN")
    return (job_from_item(job) if job else None), (JobRun.from_item(run) if run else None)


def get_run(org_id: str, job_id: str) -> JobRun | None:
    item = dynamo.get(_table(), run_key(org_id, job_id), consistent=True)
    return JobRun.from_item(item) if item else None


def ready(org_id: str, target: str, limit: int) -> list[Job]:
    """The first `limit` jobs of a ready queue, in claim order (eventually consistent: claims re-check)."""
    page = dynamo.query(_table(), "GSI4PK = :pk", {":pk": ready_pk(org_id, target)}, index="GSI4", limit=limit)
    return [job_from_item(i) for i in page.items]


def list_jobs(org_id: str, target: str | None, status: Status | None, limit: int,
              start_key: dict[str, Any] | None) -> JobPage:
    index, pk, newest_first = list_index(org_id, target, status)
    page = dynamo.query(_table(), f"{index}PK = :pk", {":pk": pk}, index=index, limit=limit,
                        start_key=start_key, forward=not newest_first)
    return JobPage([job_from_item(i) for i in page.items], page.last_key)


def running_jobs(org_id: str) -> Iterator[Job]:
    """Every RUNNING job of an organization (GSI2, a page at a time): the lease sweep's input."""
    for item in dynamo.query_all(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#JOBS#{Status.RUNNING.value}"},
                                 index="GSI2"):
        yield job_from_item(item)


def runs_of(org_id: str, job_ids: list[str]) -> dict[str, JobRun]:
    if not job_ids:
        return {}
    return {item["jobId"]: JobRun.from_item(item)
            for item in dynamo.batch_get(_table(), [run_key(org_id, j) for j in job_ids])}


# --- lease timers: delayed messages on the jobs queue -----------------------------

def send_checks(checks: list[tuple[dict[str, Any], int]]) -> None:
    """(message, delay_seconds) pairs; one SQS request per ten."""
    if checks:
        queues.send_many(settings().jobs_queue_url, checks)


# --- failures, for the ops scan (chalicelib/jobs/failures.py reads these) ------------

@dataclass(frozen=True)
class JobFailure:
    """A failed job as its GSI6 entry shows it; `cursor` (the GSI6 sort key) orders failures by time."""

    job_id: str
    job_type: str
    error: Any
    failed_at: str
    cursor: str
    agent_id: str | None = None   # the agent whose run failed (the claimer of a pool job, else its target)
    pool: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> "JobFailure":
        return cls(job_id=item["jobId"], job_type=item.get("jobType", ""),
                   error=json.loads(item["errorJson"]) if item.get("errorJson") else None,
                   failed_at=item.get("finishedAt") or item["GSI6SK"].split("#", 1)[0], cursor=item["GSI6SK"],
                   agent_id=item.get("claimedBy") or item.get("agentId"), pool=item.get("pool"))


def failed_jobs(org_id: str, after: str | None, limit: int) -> list[JobFailure]:
    """Up to `limit` failed jobs of the org, failed after the cursor `after`, oldest first (one Query on GSI6)."""
    condition, values = "GSI6PK = :pk", {":pk": f"ORG#{org_id}#JOBS#FAILED#AT"}
    if after:
        condition += " AND GSI6SK > :after"
        values[":after"] = after
    page = dynamo.query(_table(), condition, values, index="GSI6", limit=limit)
    return [JobFailure.from_item(item) for item in page.items]


@dataclass(frozen=True)
class DeadLetter:
    """A message of the jobs DLQ; `body` is its JSON, or {"raw": first 500 characters} when it is not JSON."""

    message_id: str
    sent_at_ms: int
    body: Any

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "DeadLetter":
        try:
            body = json.loads(message["body"])
        except ValueError:
            body = {"raw": message["body"][:500]}
        return cls(message_id=message["messageId"], sent_at_ms=message["sentAtMs"], body=body)


def dead_letters(limit: int) -> list[DeadLetter]:
    """Up to `limit` messages of the jobs DLQ, peeked (left in the queue, visibility untouched)."""
    return [DeadLetter.from_message(m) for m in queues.peek(settings().jobs_dlq_url, limit)]


def dead_letter_depth() -> int:
    return queues.depth(settings().jobs_dlq_url)
