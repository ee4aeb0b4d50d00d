"""Tasks and approvals over HTTP (camelCase; snake_case such as idempotency_key accepted)."""
from __future__ import annotations

from typing import Any, Literal, Optional, get_args

from pydantic import Field, field_validator

from chalicelib.core.models import ApiModel, PageModel, ResponseModel, bounded_json
from chalicelib.tasks.rules import ApprovalStatus, Decision, TaskStatus

PAYLOAD_MAX_BYTES = 64 * 1024
ID_LENGTH = 128  # roles, types and trace ids: 1..128 characters


def _json(value: Any) -> Any:
    return bounded_json(value, PAYLOAD_MAX_BYTES)


class CreateTaskRequest(ApiModel):
    idempotency_key: str = Field(min_length=1, max_length=255)
    session_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    from_role: Optional[str] = Field(default=None, min_length=1, max_length=128)
    to_role: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=128)
    payload: Any = Field(default_factory=dict)
    trace_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    requires_approval: bool = False

    @field_validator("payload")
    @classmethod
    def _payload(cls, value: Any) -> Any:
        return _json(value)


class UpdateTaskRequest(ApiModel):
    status: Optional[TaskStatus] = None
    result: Any = None

    @field_validator("result")
    @classmethod
    def _result(cls, value: Any) -> Any:
        return _json(value)


# Query enums as Literal: the OpenAPI document inlines query parameter schemas (no $defs there).
TaskStatusName = Literal["pending", "awaiting_approval", "in_progress", "completed", "failed", "rejected"]
ApprovalStatusName = Literal["pending", "approved", "rejected"]
# Spelled out for the type checker; the enums in rules.py stay the one truth.
assert set(get_args(TaskStatusName)) == {s.value for s in TaskStatus}
assert set(get_args(ApprovalStatusName)) == {s.value for s in ApprovalStatus}


class TaskListQuery(ApiModel):
    status: Optional[TaskStatusName] = None
    to_role: Optional[str] = Field(default=None, min_length=1, max_length=128)
    session_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None


class StatusQuery(ApiModel):
    session_id: Optional[str] = Field(default=None, min_length=1, max_length=64)
    to_role: Optional[str] = Field(default=None, min_length=1, max_length=128)


class Task(ResponseModel):
    task_id: str
    idempotency_key: str
    session_id: Optional[str] = None
    from_role: Optional[str] = None
    to_role: str
    type: str
    payload: Any = None
    status: TaskStatus
    trace_id: str
    requires_approval: bool
    result: Any = None
    approval_id: Optional[str] = None
    created_at: str
    updated_at: str
    # Not in the API: the agent whose key created it (its events reach that agent).
    actor_agent_id: Optional[str] = Field(default=None, exclude=True)

    def event_data(self) -> dict[str, Any]:
        """`task:updated` and approvals' `task`: the task as GET shows it, with payload (and a result
        once one was set) present even when null, as the events have always carried them."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        data["payload"] = self.payload
        if "result" in self.model_fields_set:
            data["result"] = self.result
        return data


class TaskPage(PageModel):
    items: list[Task]


class CreateApprovalRequest(ApiModel):
    task_id: str = Field(min_length=1, max_length=64)
    requested_by: str = Field(min_length=1, max_length=128)
    reason: Optional[str] = Field(default=None, max_length=2000)


class DecisionRequest(ApiModel):
    decision: Decision
    decided_by: str = Field(min_length=1, max_length=128)
    comment: Optional[str] = Field(default=None, max_length=2000)


class ApprovalListQuery(ApiModel):
    status: ApprovalStatusName = "pending"
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None


class Approval(ResponseModel):
    approval_id: str
    task_id: str
    requested_by: str
    reason: Optional[str] = None
    status: ApprovalStatus
    decided_by: Optional[str] = None
    comment: Optional[str] = None
    decided_at: Optional[str] = None
    created_at: str
    updated_at: str
    task: Optional[Task] = None

    def event_data(self) -> dict[str, Any]:
        """`approval:requested` / `approval:decided`: the approval with its task (see Task.event_data)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"task"})
        if self.task is not None:
            data["task"] = self.task.event_data()
        return data


class ApprovalPage(PageModel):
    items: list[Approval]

