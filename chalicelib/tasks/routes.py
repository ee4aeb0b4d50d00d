"""Tasks, fetch_status and approvals over HTTP: thin, each route builds a command and calls the service."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.auth import Scope
from chalicelib.tasks.rules import ApprovalStatus, TaskStatus
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.tasks import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Sessions, tasks, approvals, audit"


@endpoint(bp, "/tasks", "POST", scope=Scope.AGENT, body="CreateTaskRequest", response="Task",
          status=201, also=(200,), tag=TAG, errors=(409,),
          summary="Hand a task to a role; 200 with the existing task when the idempotencyKey was used already")
def create_task(call: Call) -> models.Task | Reply:
    b = call.body
    task, created = service.create(call.ctx, service.CreateTask(
        idempotency_key=b.idempotency_key, to_role=b.to_role, type=b.type, payload=b.payload,
        session_id=b.session_id, from_role=b.from_role, trace_id=b.trace_id, requires_approval=b.requires_approval))
    return task if created else Reply(task, status=200)


@endpoint(bp, "/tasks", "GET", scope=Scope.AGENT, query="TaskListQuery", response="TaskPage", tag=TAG,
          summary="Tasks newest first, by status, toRole and/or sessionId")
def list_tasks(call: Call) -> models.TaskPage:
    q = call.query
    status = TaskStatus(q.status) if q.status else None
    return service.list_tasks(call.ctx, service.ListTasks(status, q.to_role, q.session_id, q.limit, q.next_token))


@endpoint(bp, "/tasks/{taskId}", "GET", scope=Scope.AGENT, response="Task", tag=TAG, errors=(404,),
          summary="One task")
def get_task(call: Call) -> models.Task:
    return service.get(call.ctx, call.params["taskId"])


@endpoint(bp, "/tasks/{taskId}", "PUT", scope=Scope.AGENT, body="UpdateTaskRequest", response="Task",
          tag=TAG, errors=(404, 409), summary="Move a task's status (validated) and/or set its result")
def update_task(call: Call) -> models.Task:
    b = call.body
    result = b.result if "result" in b.model_fields_set else ...
    return service.update(call.ctx, service.UpdateTask(call.params["taskId"], b.status, result))


@endpoint(bp, "/status", "GET", scope=Scope.AGENT, query="StatusQuery", response="TaskPage", tag=TAG,
          summary="fetch_status: one task per idempotencyKey, in its latest state, for a session and/or a role")
def fetch_status(call: Call) -> models.TaskPage:
    q = call.query
    return service.fetch_status(call.ctx, service.FetchStatus(q.session_id, q.to_role))


@endpoint(bp, "/approvals", "POST", scope=Scope.AGENT, body="CreateApprovalRequest",
          response="Approval", status=201, tag=TAG, errors=(404, 409),
          summary="Ask for a decision on a pending task (it waits: awaiting_approval)")
def request_approval(call: Call) -> models.Approval:
    b = call.body
    return service.request_approval(call.ctx, service.RequestApproval(b.task_id, b.requested_by, b.reason))


@endpoint(bp, "/approvals", "GET", scope=Scope.AGENT, query="ApprovalListQuery",
          response="ApprovalPage", tag=TAG, summary="Approvals by status (default pending), each with its task")
def list_approvals(call: Call) -> models.ApprovalPage:
    q = call.query
    return service.list_approvals(call.ctx, service.ListApprovals(ApprovalStatus(q.status), q.limit, q.next_token))


@endpoint(bp, "/approvals/{approvalId}/decision", "POST", scope=Scope.OPERATOR, body="DecisionRequest",
          response="Approval", tag=TAG, errors=(404, 409),
          summary="Decide once (approved: the task goes on as pending; rejected: the task is rejected)")
def decide(call: Call) -> models.Approval:
    b = call.body
    return service.decide(call.ctx, service.Decide(call.params["approvalId"], b.decision, b.decided_by,
                                                   b.comment))
