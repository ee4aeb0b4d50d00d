"""Tasks and approvals: create (deduplicated by idempotencyKey), list, get, update, fetch_status,
request and decide approvals.

Each use case commits once: the task (and its idempotency key, its approval),
the audit events and the outbox events in one transaction. Audit events of a
task carry the task's traceId, so GET /audit?traceId= tells the task's story.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from chalicelib.core import ids, paging
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Conflict, IdempotencyKeyReused, InvalidTransition, Unavailable, ValidationError
from chalicelib.core.lookup import found, minted
from chalicelib.core.tx import Tx, TxFailed, retry_conflicts
from chalicelib.sessions import service as sessions
from chalicelib.tasks import rules, store
from chalicelib.tasks.models import Approval, ApprovalPage, Task, TaskPage
from chalicelib.core.transitions import moves
from chalicelib.tasks.rules import ApprovalStatus, Decision, TaskStatus
_READ_ATTEMPTS = 8


@dataclass(frozen=True)
class CreateTask:
    idempotency_key: str
    to_role: str
    type: str
    payload: Any = None
    session_id: str | None = None
    from_role: str | None = None
    trace_id: str | None = None
    requires_approval: bool = False

    def fingerprint(self) -> str:
        return rules.fingerprint({k: v for k, v in dataclasses.asdict(self).items() if v is not None})


@dataclass(frozen=True)
class UpdateTask:
    task_id: str
    status: TaskStatus | None = None
    result: Any = ...  # ... = not sent (null is a result)


@dataclass(frozen=True)
class ListTasks:
    status: TaskStatus | None = None
    to_role: str | None = None
    session_id: str | None = None
    limit: int = 50
    next_token: str | None = None


@dataclass(frozen=True)
class FetchStatus:
    session_id: str | None = None
    to_role: str | None = None


@dataclass(frozen=True)
class RequestApproval:
    task_id: str
    requested_by: str
    reason: str | None = None


@dataclass(frozen=True)
class Decide:
    approval_id: str
    decision: Decision
    decided_by: str
    comment: str | None = None


@dataclass(frozen=True)
class ListApprovals:
    status: ApprovalStatus = ApprovalStatus.PENDING
    limit: int = 50
    next_token: str | None = None


def _agent(ctx: Ctx) -> str | None:
    return ctx.principal.agent_id if ctx.principal is not None else None


def _traced(ctx: Ctx, trace_id: str) -> Ctx:
    """The same caller, under the task's trace: its audit events join the task's story."""
    return dataclasses.replace(ctx, trace_id=trace_id)


def _commit(tx: Tx) -> None:
    retry_conflicts(tx.commit, attempts=8, base_delay=0.02)


# --- tasks ------------------------------------------------------------------------

def create(ctx: Ctx, command: CreateTask) -> tuple[Task, bool]:
    """(task, created). One transaction: the idempotency key (taken only if free), the session
    check, the task, with requiresApproval its pending approval, their audit and outbox events.
    A key already taken: the existing task (same request) or 409 IDEMPOTENCY_KEY_REUSED."""
    fingerprint = command.fingerprint()
    if command.session_id is not None and not sessions.could_exist(command.session_id):
        raise ValidationError.field("sessionId", f"no session {command.session_id[:64]} in this organization")
    for _ in range(_READ_ATTEMPTS):
        now_s, at = int(ctx.now()), ctx.iso()
        task_id = ids.new_id()
        trace_id = command.trace_id or ctx.trace_id
        tctx = _traced(ctx, trace_id)
        status = rules.initial_status(command.requires_approval)
        approval = None
        if command.requires_approval:
            approval = Approval(approval_id=ids.new_id(), task_id=task_id,
                                requested_by=command.from_role or ctx.actor, reason="requiresApproval at creation",
                                status=ApprovalStatus.PENDING, created_at=at, updated_at=at)
        task = Task(task_id=task_id, idempotency_key=command.idempotency_key, session_id=command.session_id,
                    from_role=command.from_role, to_role=command.to_role, type=command.type,
                    payload=command.payload, status=status, trace_id=trace_id,
                    requires_approval=command.requires_approval, created_at=at, updated_at=at,
                    approval_id=approval.approval_id if approval else None, actor_agent_id=_agent(ctx))
        tx = tctx.tx()
        tx.put("idempotency", store.claim_key(ctx.org_id, command.idempotency_key, task_id, fingerprint, now_s,
                                              ctx.settings.idempotency_ttl_seconds))
        if command.session_id is not None:
            sessions.require_exists(tx, ctx.org_id, command.session_id)
        tx.put("task", store.put_task(ctx.org_id, task))
        tx.audit("task", task_id, "created", {"idempotencyKey": command.idempotency_key, "status": status.value,
                                              "toRole": command.to_role, "sessionId": command.session_id})
        if approval is not None:
            tx.put("approval", store.put_approval(ctx.org_id, approval))
            tx.audit("approval", approval.approval_id, "requested", {"taskId": task_id})
            tx.emit("approval:requested", approval.model_copy(update={"task": task}).event_data(),
                    agent_id=_agent(ctx))
        tx.emit("task:updated", task.event_data(), agent_id=_agent(ctx))
        try:
            _commit(tx)
        except TxFailed as failed:
            if failed.name == "session":
                raise ValidationError.field("sessionId", f"no session {command.session_id} in this organization") from None
            if failed.name != "idempotency":
                raise
            existing = _existing(ctx, command, fingerprint, now_s, failed.item)
            if existing is None:
                continue  # the key expired or its task vanished between our write and read: try again
            return existing, False
        return task, True
    raise Unavailable("the idempotency key is busy; retry", headers={"Retry-After": "1"})


def _existing(ctx: Ctx, command: CreateTask, fingerprint: str, now_s: int,
              key: dict[str, Any] | None) -> Task | None:
    """The task behind a taken key (`key`: the key item the failed condition returned, if any)."""
    if key is None:
        key = store.get_key(ctx.org_id, command.idempotency_key)
    if key is None or key["expiresAt"] <= now_s:
        return None
    if key["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused("idempotencyKey was already used with another request",
                                   [{"field": "idempotencyKey", "message": "used with another body"}])
    return store.get_task(ctx.org_id, key["taskId"])


def get(ctx: Ctx, task_id: str) -> Task:
    return found(store.get_task(ctx.org_id, minted("task", task_id)), "task", task_id)


def update(ctx: Ctx, command: UpdateTask) -> Task:
    for _ in range(_READ_ATTEMPTS):
        item = get(ctx, command.task_id)
        current = item.status
        moving = command.status is not None and moves(rules.put_transition(current, command.status), "task",
                                                      current, command.status, " here")
        setting_result = command.result is not ...
        if setting_result and not rules.may_set_result(current):
            raise InvalidTransition(f"a {current.value} task is final: its result no longer changes")
        if not moving and not setting_result:
            return item
        at = ctx.iso()
        new_status = command.status if moving and command.status is not None else current
        changes: dict[str, Any] = {"status": new_status, "updated_at": at}
        if setting_result:
            changes["result"] = command.result
        after = _changed(item, changes)
        tctx = _traced(ctx, item.trace_id)
        tx = tctx.tx()
        tx.update("task", store.move_task(ctx.org_id, command.task_id, current, at, new_status if moving else None,
                                          command.result))
        details: dict[str, Any] = {"resultSet": setting_result}
        if moving:
            details["status"] = {"from": current.value, "to": new_status.value}
        tx.audit("task", command.task_id, "updated", details)
        tx.emit("task:updated", after.event_data(), agent_id=item.actor_agent_id)
        try:
            _commit(tx)
        except TxFailed:
            continue  # moved since we read it: decide again
        return after
    raise Unavailable("the task is busy with other changes; retry", headers={"Retry-After": "1"})


def _changed(task: Task, changes: dict[str, Any]) -> Task:
    """`task` with `changes`, each counted as set (so a result set to null is still a result)."""
    return Task.model_validate({**{k: getattr(task, k) for k in task.model_fields_set}, **changes})


def list_tasks(ctx: Ctx, command: ListTasks) -> TaskPage:
    scope = f"tasks:{ctx.org_id}:{command.status.value if command.status else ''}:{command.to_role}:{command.session_id}"
    tasks, last_key = store.list_tasks(ctx.org_id, command.status, command.to_role, command.session_id,
                                       command.limit, paging.start_key(command.next_token, scope))
    return TaskPage(items=tasks, next_token=paging.next_token(last_key, scope))


def fetch_status(ctx: Ctx, command: FetchStatus) -> TaskPage:
    if command.session_id is None and command.to_role is None:
        raise ValidationError.field("sessionId", "give sessionId, toRole or both")
    tasks = store.all_tasks(ctx.org_id, command.session_id, command.to_role)
    return TaskPage(items=[store.from_item(t) for t in rules.latest_per_key(tasks)], next_token=None)


# --- approvals --------------------------------------------------------------------

def request_approval(ctx: Ctx, command: RequestApproval) -> Approval:
    """A pending task waits for a decision: the approval and the task's move in one transaction."""
    item = get(ctx, command.task_id)
    current = item.status
    if not rules.may_request_approval(current):
        raise InvalidTransition(f"only a pending task can wait for approval; this one is {current.value}",
                                [{"field": "taskId", "message": f"task is {current.value}"}])
    at = ctx.iso()
    approval_id = ids.new_id()
    approval = Approval(approval_id=approval_id, task_id=command.task_id, requested_by=command.requested_by,
                        reason=command.reason, status=ApprovalStatus.PENDING, created_at=at, updated_at=at)
    task_after = _changed(item, {"status": TaskStatus.AWAITING_APPROVAL, "updated_at": at,
                                 "requires_approval": True, "approval_id": approval_id})
    tx = _traced(ctx, item.trace_id).tx()
    tx.update("task", store.move_task(ctx.org_id, command.task_id, current, at, TaskStatus.AWAITING_APPROVAL,
                                      approval_id=approval_id))
    tx.put("approval", store.put_approval(ctx.org_id, approval))
    tx.audit("approval", approval_id, "requested", {"taskId": command.task_id,
                                                               "requestedBy": command.requested_by})
    tx.audit("task", command.task_id, "updated",
             {"status": {"from": current.value, "to": TaskStatus.AWAITING_APPROVAL.value},
              "approvalId": approval_id})
    view = approval.model_copy(update={"task": task_after})
    tx.emit("approval:requested", view.event_data(), agent_id=item.actor_agent_id)
    tx.emit("task:updated", task_after.event_data(), agent_id=item.actor_agent_id)
    try:
        _commit(tx)
    except TxFailed as failed:
        if failed.name == "task":
            raise Conflict("the task changed while the approval was requested; read it and retry") from None
        raise
    return view


def decide(ctx: Ctx, command: Decide) -> Approval:
    """Exactly once: the approval's write is conditional on `pending`, the task's on waiting for
    this approval; both commit with their audit and outbox events or neither does."""
    approval = found(store.get_approval(ctx.org_id, minted("approval", command.approval_id)), "approval",
                     command.approval_id)
    if approval.status is not ApprovalStatus.PENDING:
        raise Conflict(f"approval {command.approval_id} was already {approval.status.value}")
    task = store.get_task(ctx.org_id, approval.task_id)
    if task is None or task.status is not TaskStatus.AWAITING_APPROVAL:
        raise Conflict("the approval's task is no longer waiting for it")
    approval_status, task_status = rules.after_decision(command.decision)
    at = ctx.iso()
    task_after = _changed(task, {"status": task_status, "updated_at": at})
    decided = approval.model_copy(update={"status": approval_status, "decided_by": command.decided_by,
                                          "comment": command.comment, "decided_at": at, "updated_at": at,
                                          "task": task_after})
    tx = _traced(ctx, task.trace_id).tx()
    tx.update("approval", store.decide(ctx.org_id, command.approval_id, approval_status, command.decided_by,
                                       command.comment, at))
    tx.update("task", store.move_task(ctx.org_id, task.task_id, TaskStatus.AWAITING_APPROVAL, at, task_status,
                                      expected_approval=command.approval_id))
    tx.audit("approval", command.approval_id, "decided", {"decision": command.decision.value,
                                                          "decidedBy": command.decided_by})
    tx.audit("task", task.task_id, "updated",
             {"status": {"from": TaskStatus.AWAITING_APPROVAL.value, "to": task_status.value},
              "approvalId": command.approval_id})
    tx.emit("approval:decided", decided.event_data(), agent_id=task.actor_agent_id)
    tx.emit("task:updated", task_after.event_data(), agent_id=task.actor_agent_id)
    try:
        _commit(tx)
    except TxFailed:
        raise Conflict(f"approval {command.approval_id} was already decided") from None
    return decided


def list_approvals(ctx: Ctx, command: ListApprovals) -> ApprovalPage:
    """A page of approvals, each with its task (one BatchGetItem for the page's tasks)."""
    scope = f"approvals:{ctx.org_id}:{command.status.value}"
    approvals, last_key = store.list_approvals(ctx.org_id, command.status, command.limit,
                                               paging.start_key(command.next_token, scope))
    tasks = store.get_tasks(ctx.org_id, [a.task_id for a in approvals]) if approvals else {}
    items = [a.model_copy(update={"task": tasks.get(a.task_id)}) for a in approvals]
    return ApprovalPage(items=items, next_token=paging.next_token(last_key, scope))
