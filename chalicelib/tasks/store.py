"""Tasks, their idempotency keys and approvals in the main table.

  PK ORG#{org}#TASK#{taskId}, SK TASK                  the task
      GSI1PK ORG#{org}#TASKS                   GSI1SK {taskId}   every task, newest first
      GSI2PK ORG#{org}#SESSION#{sid}#TASKS     GSI2SK {taskId}   a session's tasks (when it has one)
      GSI3PK ORG#{org}#ROLE#{toRole}#TASKS     GSI3SK {taskId}   a role's tasks
      GSI4PK ORG#{org}#TASKS#{status}          GSI4SK {taskId}   tasks by status (moves with it)
  PK ORG#{org}#TASKKEY#{idempotencyKey}, SK TASKKEY    which task a key made, the request's
      fingerprint and until when the key holds (expiresAt; `ttl` lets DynamoDB delete it later)
  PK ORG#{org}#APPROVAL#{approvalId}, SK APPROVAL      an approval
      GSI1PK ORG#{org}#APPROVALS#{status}      GSI1SK {approvalId}

payload and result are JSON text (arbitrary JSON, never queried). The entities are models.Task and
models.Approval; this module holds their item mapping (to_item/from_item) and nothing else of them.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.tasks.models import Approval, Task
from chalicelib.tasks.rules import ApprovalStatus, TaskStatus


def _table() -> str:
    return settings().main_table


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- tasks ----------------------------------------------------------------------

def task_key(org_id: str, task_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#TASK#{task_id}", "SK": "TASK"}


def to_item(org_id: str, task: Task) -> dict[str, Any]:
    """The task's item: its fields, keys and index attributes; payload and result as JSON text."""
    fields = task.model_dump(by_alias=True, exclude_none=True, exclude={"payload", "result"})
    item = {
        **task_key(org_id, task.task_id), "type": "task", "orgId": org_id, **fields,
        "status": task.status.value, "payload": _text(task.payload), "actorAgentId": task.actor_agent_id,
        "GSI1PK": f"ORG#{org_id}#TASKS", "GSI1SK": task.task_id,
        "GSI3PK": f"ORG#{org_id}#ROLE#{task.to_role}#TASKS", "GSI3SK": task.task_id,
        "GSI4PK": f"ORG#{org_id}#TASKS#{task.status.value}", "GSI4SK": task.task_id,
    }
    if "result" in task.model_fields_set:
        item["result"] = _text(task.result)
    if task.session_id:
        item["GSI2PK"], item["GSI2SK"] = f"ORG#{org_id}#SESSION#{task.session_id}#TASKS", task.task_id
    return item


TASK_FIELDS = ("taskId", "idempotencyKey", "sessionId", "fromRole", "toRole", "type", "status", "traceId",
               "requiresApproval", "approvalId", "createdAt", "updatedAt", "actorAgentId")


def from_item(item: dict[str, Any]) -> Task:
    fields: dict[str, Any] = {k: item[k] for k in TASK_FIELDS if item.get(k) is not None}
    fields["payload"] = json.loads(item["payload"]) if "payload" in item else None
    if "result" in item:
        fields["result"] = json.loads(item["result"])
    return Task.model_validate(fields)


def put_task(org_id: str, task: Task) -> dynamo.Put:
    return dynamo.Put(_table(), to_item(org_id, task), condition="attribute_not_exists(PK)")


def get_task(org_id: str, task_id: str) -> Task | None:
    item = dynamo.get(_table(), task_key(org_id, task_id), consistent=True)
    return from_item(item) if item else None


def move_task(org_id: str, task_id: str, expected: TaskStatus, updated_at: str, status: TaskStatus | None = None,
              result: Any = ..., approval_id: str | None = None, expected_approval: str | None = None,
              clear_approval: bool = False) -> dynamo.Update:
    """Conditional on the status read (and, for a decision, on the pending approval being this one)."""
    sets: dict[str, Any] = {"updatedAt": updated_at}
    removes: list[str] = []
    if status is not None and status != expected:
        sets["status"] = status.value
        sets["GSI4PK"] = f"ORG#{org_id}#TASKS#{status.value}"
    if result is not ...:
        sets["result"] = _text(result)
    if approval_id is not None:
        sets["approvalId"] = approval_id
        sets["requiresApproval"] = True
    if clear_approval:
        removes.append("approvalId")
    condition = "#st = :expected"
    values: dict[str, Any] = {":expected": expected.value}
    if expected_approval is not None:
        condition += " AND approvalId = :approval"
        values[":approval"] = expected_approval
    return dynamo.Update(_table(), task_key(org_id, task_id), set=sets, remove=removes, condition=condition,
                         names={"#st": "status"}, values=values)


def list_tasks(org_id: str, status: TaskStatus | None, to_role: str | None, session_id: str | None, limit: int,
               start_key: dict[str, Any] | None) -> tuple[list[Task], dict[str, Any] | None]:
    """The narrowest index for the filters; the remaining filters as a FilterExpression on that page."""
    filters, values, names = [], {}, {}
    if session_id:
        index, pk = "GSI2", f"ORG#{org_id}#SESSION#{session_id}#TASKS"
        if to_role:
            filters.append("toRole = :role")
            values[":role"] = to_role
        if status:
            filters.append("#st = :st")
            values[":st"], names["#st"] = status.value, "status"
    elif to_role:
        index, pk = "GSI3", f"ORG#{org_id}#ROLE#{to_role}#TASKS"
        if status:
            filters.append("#st = :st")
            values[":st"], names["#st"] = status.value, "status"
    elif status:
        index, pk = "GSI4", f"ORG#{org_id}#TASKS#{status.value}"
    else:
        index, pk = "GSI1", f"ORG#{org_id}#TASKS"
    values[":pk"] = pk
    page = dynamo.query(_table(), f"{index}PK = :pk", values, names=names or None, index=index, limit=limit,
                        start_key=start_key, forward=False, filter=" AND ".join(filters) or None)
    return [from_item(i) for i in page.items], page.last_key


def all_tasks(org_id: str, session_id: str | None, to_role: str | None) -> list[dict[str, Any]]:
    """Every task of a session (optionally for one role) or of a role: fetch_status reads them all."""
    if session_id:
        flt, values = (("toRole = :role", {":role": to_role}) if to_role else (None, {}))
        return list(dynamo.query_all(_table(), "GSI2PK = :pk",
                                     {":pk": f"ORG#{org_id}#SESSION#{session_id}#TASKS", **values},
                                     index="GSI2", filter=flt))
    return list(dynamo.query_all(_table(), "GSI3PK = :pk", {":pk": f"ORG#{org_id}#ROLE#{to_role}#TASKS"},
                                 index="GSI3"))


def get_tasks(org_id: str, task_ids: list[str]) -> dict[str, Task]:
    items = dynamo.batch_get(_table(), [task_key(org_id, t) for t in dict.fromkeys(task_ids)])
    return {i["taskId"]: from_item(i) for i in items}


# --- idempotency keys -------------------------------------------------------------

def key_key(org_id: str, idempotency_key: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#TASKKEY#{idempotency_key}", "SK": "TASKKEY"}


def claim_key(org_id: str, idempotency_key: str, task_id: str, fingerprint: str, now: int, ttl_seconds: int) -> dynamo.Put:
    """Taken only if the key is free: never used, or its window has passed."""
    return dynamo.Put(_table(), {**key_key(org_id, idempotency_key), "type": "task-key", "taskId": task_id,
                                 "fingerprint": fingerprint, "expiresAt": now + ttl_seconds,
                                 "ttl": now + ttl_seconds},
                      condition="attribute_not_exists(PK) OR expiresAt <= :now", values={":now": now},
                      return_old_on_failure=True)


def get_key(org_id: str, idempotency_key: str) -> dict[str, Any] | None:
    return dynamo.get(_table(), key_key(org_id, idempotency_key), consistent=True)


# --- approvals ----------------------------------------------------------------------

def approval_key(org_id: str, approval_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#APPROVAL#{approval_id}", "SK": "APPROVAL"}


def approval_to_item(org_id: str, approval: Approval) -> dict[str, Any]:
    """The approval's item (never its task: that is read from the task's own item)."""
    return {**approval_key(org_id, approval.approval_id), "type": "approval", "orgId": org_id,
            **approval.model_dump(by_alias=True, exclude={"task"}), "status": approval.status.value,
            "GSI1PK": f"ORG#{org_id}#APPROVALS#{approval.status.value}", "GSI1SK": approval.approval_id}


APPROVAL_FIELDS = ("approvalId", "taskId", "requestedBy", "reason", "status", "decidedBy", "comment", "decidedAt",
                   "createdAt", "updatedAt")


def approval_from_item(item: dict[str, Any]) -> Approval:
    return Approval.model_validate({k: item[k] for k in APPROVAL_FIELDS if item.get(k) is not None})


def put_approval(org_id: str, approval: Approval) -> dynamo.Put:
    return dynamo.Put(_table(), approval_to_item(org_id, approval), condition="attribute_not_exists(PK)")


def get_approval(org_id: str, approval_id: str) -> Approval | None:
    item = dynamo.get(_table(), approval_key(org_id, approval_id), consistent=True)
    return approval_from_item(item) if item else None


def decide(org_id: str, approval_id: str, status: ApprovalStatus, decided_by: str, comment: str | None,
           at: str) -> dynamo.Update:
    """Exactly once: only while the approval is still pending."""
    return dynamo.Update(_table(), approval_key(org_id, approval_id),
                         set={"status": status.value, "decidedBy": decided_by, "comment": comment,
                              "decidedAt": at, "updatedAt": at,
                              "GSI1PK": f"ORG#{org_id}#APPROVALS#{status.value}"},
                         condition="#st = :pending", names={"#st": "status"},
                         values={":pending": ApprovalStatus.PENDING.value})


def list_approvals(org_id: str, status: ApprovalStatus, limit: int,
                   start_key: dict[str, Any] | None) -> tuple[list[Approval], dict[str, Any] | None]:
    page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": f"ORG#{org_id}#APPROVALS#{status.value}"},
                        index="GSI1", limit=limit, start_key=start_key, forward=False)
    return [approval_from_item(i) for i in page.items], page.last_key
