"""The rules of tasks and approvals, pure.

Task statuses (docs/SESSIONS.md has the full table):

    pending -> in_progress -> completed | failed
    pending -> completed | failed                      (done without a separate start)
    awaiting_approval -> pending    (an approval decided "approved")
    awaiting_approval -> rejected   (an approval decided "rejected")
    pending -> awaiting_approval    (POST /approvals on a pending task)

PUT /tasks/{id} moves only along the first two lines; the approval moves
belong to approvals, so a PUT to or from awaiting_approval, or to rejected,
is 409 INVALID_TRANSITION. Same status again on an open task: a no-op (200);
terminal statuses (completed, failed, rejected) never change, asked again
included. Approvals: pending -> approved | rejected, exactly once.
"""
from __future__ import annotations

import enum
import hashlib
import json
from typing import Any

from chalicelib.core.transitions import Answer, judge


class TaskStatus(str, enum.Enum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.REJECTED})

# What PUT /tasks/{id} may do.
PUT_MOVES: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED}),
    TaskStatus.AWAITING_APPROVAL: frozenset(),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.REJECTED: frozenset(),
}


def put_transition(current: TaskStatus, wanted: TaskStatus) -> Answer:
    return judge(PUT_MOVES, current, wanted)


def may_set_result(current: TaskStatus) -> bool:
    return not current.terminal


def initial_status(requires_approval: bool) -> TaskStatus:
    return TaskStatus.AWAITING_APPROVAL if requires_approval else TaskStatus.PENDING


def may_request_approval(current: TaskStatus) -> bool:
    return current is TaskStatus.PENDING


class ApprovalStatus(str, enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Decision(str, enum.Enum):
    APPROVED = "approved"
    REJECTED = "rejected"


def after_decision(decision: Decision) -> tuple[ApprovalStatus, TaskStatus]:
    """What the approval and its task become."""
    if decision is Decision.APPROVED:
        return ApprovalStatus.APPROVED, TaskStatus.PENDING
    return ApprovalStatus.REJECTED, TaskStatus.REJECTED


def fingerprint(body: dict[str, Any]) -> str:
    """The identity of a create request: a repeat with the same idempotencyKey must match it."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def latest_per_key(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """fetch_status: one task per idempotencyKey, the newest (ids are time-ordered), newest first."""
    latest: dict[str, dict[str, Any]] = {}
    for task in tasks:
        seen = latest.get(task["idempotencyKey"])
        if seen is None or task["taskId"] > seen["taskId"]:
            latest[task["idempotencyKey"]] = task
    return sorted(latest.values(), key=lambda t: t["taskId"], reverse=True)
