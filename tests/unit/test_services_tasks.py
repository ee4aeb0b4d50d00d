"""Tasks and approvals: the service's decisions and what it commits, on the fake unit of work (no AWS)."""
from __future__ import annotations

import pytest

from chalicelib.core import clock
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Conflict, IdempotencyKeyReused, InvalidTransition, NotFound
from chalicelib.tasks import service as tasks, store
from chalicelib.tasks.models import Approval, ApprovalPage, Task
from chalicelib.tasks.rules import ApprovalStatus, Decision, TaskStatus
from tests.unit.fakes import fake_ctx, principal

NOW = 1_800_000_000.0
TID = "01TASK00000000000000000000"
AID = "01APPR00000000000000000000"


@pytest.fixture(autouse=True)
def _frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW)


def _task(**changes) -> Task:
    return Task.model_validate({"taskId": TID, "idempotencyKey": "k", "toRole": "r", "type": "t", "payload": {},
                                "status": "pending", "traceId": "tr", "requiresApproval": False,
                                "createdAt": "c", "updatedAt": "u", "actorAgentId": "A1", **changes})


def test_create_with_approval_commits_key_task_approval_and_both_events():
    ctx, ledger = fake_ctx(principal(Scope.AGENT, agent_id="A1"))
    task, created = tasks.create(ctx, tasks.CreateTask("k", "r", "t", {"x": None}, requires_approval=True))
    assert created and isinstance(task, Task) and task.status is TaskStatus.AWAITING_APPROVAL
    assert {"idempotency", "task", "approval"} <= set(ledger.names())
    item = ledger.committed[-1]["task"].item
    assert item["payload"] == '{"x":null}' and item["actorAgentId"] == "A1" and "result" not in item
    assert store.from_item(item) == task
    events = dict(ledger.events())
    assert events["task:updated"]["payload"] == {"x": None} and "actorAgentId" not in events["task:updated"]
    assert events["approval:requested"]["task"]["approvalId"] == task.approval_id


def test_create_with_a_taken_key_returns_that_task_or_409_for_another_body(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    command = tasks.CreateTask("k", "r", "t", {})
    ledger.fail["idempotency"] = 1
    key = {"taskId": TID, "fingerprint": command.fingerprint(), "expiresAt": NOW + 60}
    monkeypatch.setattr(store, "get_key", lambda *a: key)
    monkeypatch.setattr(store, "get_task", lambda *a: _task())
    assert tasks.create(ctx, command) == (_task(), False)
    ledger.fail["idempotency"] = 1
    with pytest.raises(IdempotencyKeyReused):
        tasks.create(ctx, tasks.CreateTask("k", "r", "t", {"other": 1}))


def test_update_sets_a_null_result_and_a_final_task_refuses(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    monkeypatch.setattr(store, "get_task", lambda *a: _task(status="in_progress"))
    out = tasks.update(ctx, tasks.UpdateTask(TID, TaskStatus.COMPLETED, None))
    assert out.status is TaskStatus.COMPLETED and "result" in out.model_fields_set
    (_, data), = ledger.events()
    assert data["result"] is None
    monkeypatch.setattr(store, "get_task", lambda *a: _task(status="completed"))
    with pytest.raises(InvalidTransition):
        tasks.update(ctx, tasks.UpdateTask(TID, result=1))
    with pytest.raises(NotFound):
        tasks.get(ctx, "not-an-id")


def test_decide_once_moves_approval_and_task_together(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    pending = Approval(approval_id=AID, task_id=TID, requested_by="me", status=ApprovalStatus.PENDING,
                       created_at="c", updated_at="u")
    monkeypatch.setattr(store, "get_approval", lambda *a: pending)
    monkeypatch.setattr(store, "get_task", lambda *a: _task(status="awaiting_approval", approvalId=AID))
    out = tasks.decide(ctx, tasks.Decide(AID, Decision.REJECTED, "boss"))
    assert out.status is ApprovalStatus.REJECTED and out.task is not None and out.task.status is TaskStatus.REJECTED
    assert ledger.names()[:2] == ["approval", "task"]
    ledger.fail["approval"] = 1
    with pytest.raises(Conflict):
        tasks.decide(ctx, tasks.Decide(AID, Decision.APPROVED, "boss"))


def test_list_approvals_attaches_each_task(monkeypatch):
    ctx, _ = fake_ctx(principal())
    approval = Approval(approval_id=AID, task_id=TID, requested_by="me", status=ApprovalStatus.PENDING,
                        created_at="c", updated_at="u")
    monkeypatch.setattr(store, "list_approvals", lambda *a: ([approval], None))
    monkeypatch.setattr(store, "get_tasks", lambda *a: {TID: _task()})
    page = tasks.list_approvals(ctx, tasks.ListApprovals())
    assert isinstance(page, ApprovalPage) and page.items[0].task == _task()
