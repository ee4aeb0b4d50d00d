"""The pure rules of sessions and tasks: every pair has one answer, merges, paging, fingerprints."""
from __future__ import annotations

import itertools

from chalicelib.sessions import rules as s
from chalicelib.tasks import rules as t


def test_session_table_is_total_and_matches_the_contract():
    answers = {(a.value, b.value): s.transition(a, b) for a, b in itertools.product(s.Status, s.Status)}
    assert len(answers) == 25
    moves = {k for k, v in answers.items() if v is s.Answer.MOVE}
    assert moves == {("pending", "active"), ("pending", "expired"), ("active", "completed"),
                     ("active", "failed"), ("active", "expired")}
    assert {k for k, v in answers.items() if v is s.Answer.NOOP} == {("pending", "pending"), ("active", "active")}
    assert all(answers[(a.value, b.value)] is s.Answer.INVALID for a in s.TERMINAL for b in s.Status)


def test_merge_replaces_keys_and_null_removes():
    assert s.merge_metadata({"a": 1, "b": 2}, {"b": None, "c": {"x": None}}) == {"a": 1, "c": {"x": None}}


def test_page_window_and_cutoff():
    assert s.page_window(1, 20) == (0, 20) and s.page_window(5, 20) == (80, 100)
    assert s.retention_cutoff_ms(1000.0, 1 / 86400) == 999_000


def test_task_rules():
    assert t.put_transition(t.TaskStatus.PENDING, t.TaskStatus.IN_PROGRESS) is t.Answer.MOVE
    assert t.put_transition(t.TaskStatus.AWAITING_APPROVAL, t.TaskStatus.PENDING) is t.Answer.INVALID
    assert t.put_transition(t.TaskStatus.AWAITING_APPROVAL, t.TaskStatus.AWAITING_APPROVAL) is t.Answer.NOOP
    assert t.put_transition(t.TaskStatus.COMPLETED, t.TaskStatus.COMPLETED) is t.Answer.INVALID
    assert all(t.put_transition(a, t.TaskStatus.REJECTED) is t.Answer.INVALID for a in t.TaskStatus)
    assert t.after_decision(t.Decision.APPROVED) == (t.ApprovalStatus.APPROVED, t.TaskStatus.PENDING)
    assert t.after_decision(t.Decision.REJECTED) == (t.ApprovalStatus.REJECTED, t.TaskStatus.REJECTED)
    assert t.fingerprint({"a": 1, "b": [1]}) == t.fingerprint({"b": [1], "a": 1})
    tasks = [{"idempotencyKey": "k", "taskId": "01A"}, {"idempotencyKey": "k", "taskId": "01B"},
             {"idempotencyKey": "j", "taskId": "019"}]
    assert [x["taskId"] for x in t.latest_per_key(tasks)] == ["01B", "019"]
