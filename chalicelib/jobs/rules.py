"""The rules of jobs, pure (no boto3): statuses, ordering, leases, timeouts, polling.

Time is integer epoch milliseconds everywhere in here, so tests can pass any
`now` they like. See docs/JOBS.md for the reasoning behind each rule.
"""
from __future__ import annotations

import enum
import hashlib
import json
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

C = TypeVar("C")  # a candidate job, as the caller holds it


class Status(str, enum.Enum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

# Which status may follow which. Every write that moves a job is conditional on
# the status it read, so this table is enforced by DynamoDB, not by luck.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.CANCELLED}),
    # RUNNING -> QUEUED is the lease re-queue; FAILED covers agent failure, LEASE_EXPIRED, TIMED_OUT.
    Status.RUNNING: frozenset({Status.QUEUED, Status.COMPLETED, Status.FAILED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}


def can_move(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]


# --- limits and defaults -----------------------------------------------------

PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = -1000, 1000, 0
LEASE_SECONDS_DEFAULT, LEASE_SECONDS_MAX = 60, 3600
MAX_ATTEMPTS_DEFAULT, MAX_ATTEMPTS_MAX = 3, 100
TIMEOUT_SECONDS_MAX = 7 * 24 * 3600
PAYLOAD_MAX_BYTES = 64 * 1024  # the contract's job payload limit; results get the same bound
POLL_MAX = 10
SQS_MAX_DELAY_SECONDS = 900  # a longer wait re-arms itself when it fires

# Error codes a job can end with besides the agent's own.
LEASE_EXPIRED = "LEASE_EXPIRED"
TIMED_OUT = "TIMED_OUT"
AGENT_FAILED = "JOB_FAILED"


def json_size(value: Any) -> int:
    """Bytes of the compact JSON text, which is how payloads and results are stored."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


# --- targets and ordering ----------------------------------------------------

def target(agent_id: str | None, pool: str | None) -> str:
    """The queue a job waits in: one per agent and one per pool."""
    if (agent_id is None) == (pool is None):
        raise ValueError("exactly one of agent_id and pool")
    return f"agent#{agent_id}" if agent_id is not None else f"pool#{pool}"


def order_key(priority: int, job_id: str) -> str:
    """Ascending order = highest priority first, then oldest (job ids are time-sortable ULIDs).

    The priority is inverted and zero-padded so that string order is numeric order.
    A re-queued job keeps its key: it goes back to its place by age, not to the end.
    """
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError("priority out of range")
    return f"{PRIORITY_MAX - priority:04d}#{job_id}"


def _gsi4sk(item: Any) -> str:
    return str(item["GSI4SK"])


def _priority(item: Any) -> Any:
    return item.get("priority")


def merge_candidates(per_target: list[list[C]], key: Callable[[C], str] = _gsi4sk) -> list[C]:
    """Merge the ready queues of an agent and its pools into one claim order (`key`: the ready queue's sort key)."""
    merged = [item for items in per_target for item in items]
    merged.sort(key=key)
    return merged


def spread(remaining: list[C], rng: random.Random | None = None,
           priority: Callable[[C], Any] = _priority) -> list[C]:
    """After a poll lost a race, the order in which it tries the rest.

    Pollers that read the same ready queue at the same moment all go for its
    head; after losing one race each, they would queue up behind each other on
    the next candidate, and the next. So a poll that lost a race tries the
    candidates of the best remaining priority in random order: priority stays
    strict, age order is kept by every poll that meets no competition (when
    another poll is claiming from the same queue at the same instant, "oldest
    first" has no single meaning anyway).
    """
    if not remaining:
        return remaining
    best = priority(remaining[0])
    head = [c for c in remaining if priority(c) == best]
    (rng or random).shuffle(head)
    return head + [c for c in remaining if priority(c) != best]


# --- lease checks on the jobs queue ----------------------------------------------

CHECK_KIND = "check-run"


def check_message(org_id: str, job_id: str, run_id: str) -> dict[str, Any]:
    """The only message on the jobs queue: check run `run_id` of a job when it arrives (see leases.py)."""
    return {"v": 1, "kind": CHECK_KIND, "orgId": org_id, "jobId": job_id, "runId": run_id}


# --- polling -------------------------------------------------------------------

IDLE_POLL_SECONDS_DEFAULT = 5


def next_poll_seconds(claimed: int, wanted: int, lost_races: int, idle_seconds: int) -> int:
    """When the agent should poll again.

    Got everything it asked for, or lost a race for a job that someone else
    took (so more work is likely there): at once. Got some but fewer than it
    asked for: the ready queues are drained, one second. Nothing: idle interval.
    """
    if claimed >= wanted or lost_races:
        return 0
    if claimed:
        return 1
    return idle_seconds


# --- leases and timeouts -----------------------------------------------------

@dataclass(frozen=True)
class Run:
    """What the lease check needs of a run (the RUN item)."""

    run_id: str
    running: bool
    claimed_by: str
    attempt: int
    max_attempts: int
    lease_seconds: int
    started_ms: int
    renewed_ms: int          # last claim or progress
    deadline_ms: int | None  # started_ms + timeoutSeconds, when the job has a timeout

    @property
    def lease_end_ms(self) -> int:
        return self.renewed_ms + self.lease_seconds * 1000


def lease_end_ms(run: Run, heartbeat_ms: int | None) -> int:
    """A heartbeat renews every lease of its agent: the later of the run's renewal and the agent's heartbeat counts."""
    renewed = run.renewed_ms if heartbeat_ms is None else max(run.renewed_ms, heartbeat_ms)
    return renewed + run.lease_seconds * 1000


class Action(str, enum.Enum):
    DROP = "drop"              # the run is over (finished, cancelled, re-queued): nothing to do
    REARM = "rearm"            # still alive: check again at `due_ms`
    NEED_HEARTBEAT = "need_heartbeat"  # the run's own lease ran out: read the agent's heartbeat, then decide
    REQUEUE = "requeue"        # lease expired, attempts left
    FAIL_LEASE = "fail_lease"  # lease expired on the last attempt: FAILED LEASE_EXPIRED
    FAIL_TIMEOUT = "fail_timeout"  # past timeoutSeconds: FAILED TIMED_OUT


@dataclass(frozen=True)
class Decision:
    action: Action
    due_ms: int | None = None


def decide(run: Run | None, run_id: str, now_ms: int, heartbeat_ms: int | None = None,
           heartbeat_known: bool = False) -> Decision:
    """What a lease check for `run_id` does now. Idempotent: it depends only on the stored state."""
    if run is None or run.run_id != run_id or not run.running:
        return Decision(Action.DROP)
    if run.deadline_ms is not None and now_ms >= run.deadline_ms:
        return Decision(Action.FAIL_TIMEOUT)
    end = run.lease_end_ms
    if now_ms >= end:
        if not heartbeat_known:
            return Decision(Action.NEED_HEARTBEAT)
        end = lease_end_ms(run, heartbeat_ms)
    if now_ms < end:
        due = end if run.deadline_ms is None else min(end, run.deadline_ms)
        return Decision(Action.REARM, due)
    if run.attempt >= run.max_attempts:
        return Decision(Action.FAIL_LEASE)
    return Decision(Action.REQUEUE)


def first_check_ms(now_ms: int, lease_seconds: int, timeout_seconds: int | None) -> int:
    """When the first check of a new run is due: its lease end, or its timeout if sooner."""
    due = now_ms + lease_seconds * 1000
    if timeout_seconds is not None:
        due = min(due, now_ms + timeout_seconds * 1000)
    return due


def delay_seconds(due_ms: int, now_ms: int) -> int:
    """An SQS DelaySeconds that fires at or just after `due_ms` (whole seconds, capped at 15 minutes).

    Rounded up, so a check never fires before its time (one that does, on a
    clock skew, finds the lease alive and re-arms for the remainder).
    """
    return max(0, min(SQS_MAX_DELAY_SECONDS, math.ceil((due_ms - now_ms) / 1000)))


# --- completion ----------------------------------------------------------------

def completion_fingerprint(status: str, result: Any, error: Any) -> str:
    """Identifies one completion, so that repeating it is recognised as the same (204) and a different one is not (409)."""
    canonical = json.dumps({"status": status, "result": result, "error": error},
                           separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def normalize_error(error: Any, default_code: str = AGENT_FAILED) -> dict[str, Any] | None:
    """Agents may report an error as a string or an object; jobs store {code, message, ...}."""
    if error is None:
        return None
    if isinstance(error, str):
        return {"code": default_code, "message": error}
    if isinstance(error, dict):
        out = dict(error)
        out.setdefault("code", default_code)
        out.setdefault("message", "")
        return out
    return {"code": default_code, "message": json.dumps(error, default=str)}


class Targeted:
    """The keys a job (models.JobResponse) and its run (store.JobRun) derive alike from the job's
    target and priority. A mixin of properties only: the classes that use it declare the fields."""

    if TYPE_CHECKING:
        job_id: str
        agent_id: str | None
        pool: str | None
        priority: int

    @property
    def target(self) -> str:
        return target(self.agent_id, self.pool)

    @property
    def order_key(self) -> str:
        return order_key(self.priority, self.job_id)
