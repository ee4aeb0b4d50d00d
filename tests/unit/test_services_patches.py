"""chalicelib/patches (service and worker) on the fake unit of work, no moto: what submit and the
worker write (by name), the events they emit, and that reads answer what the routes declare."""
from __future__ import annotations

import json

import pytest

import chalicelib.patches.routes  # noqa: F401 - registers the routes assert_declared looks up
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Conflict, NotFound
from chalicelib.patches import models, queue, service, store, worker
from chalicelib.workspaces import service as workspaces
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal

REQUESTED_AT = "2027-01-01T00:00:00.000Z"


def _batch(**kw: object) -> models.BatchView:
    fields: dict = dict(batch_id="B1", workspace="ws", status="queued", order_id="O1", factory="f", phase="p",
                        requested_at=REQUESTED_AT, operations=1, requested_ms=1)
    fields.update(kw)
    return models.BatchView(**fields)


def test_submit_writes_the_batch_and_its_requested_event_in_one_unit_of_work_then_queues(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(queue, "send_batch", lambda url, message, group_id, dedup_id: sent.append(message))
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    body = models.PatchBatch.model_validate({"batchId": "B1", "workspace": "ws", "orderId": "O1",
                                             "operations": [{"op": "append", "file": "a.txt", "content": "x\n"}]})
    answer = service.submit(ctx, body)
    assert isinstance(answer, models.ApplyAccepted) and answer.model_dump(by_alias=True) == {
        "batchId": "B1", "status": "queued"}
    [writes] = ledger.committed
    assert set(writes) == {"batch", "event", "event:2:patch:requested"}
    batch_item = writes["batch"].item
    assert batch_item["status"] == "queued" and batch_item["operations"] == 1 and "taskId" not in batch_item
    assert store.from_item(batch_item).order_id == "O1"
    [(name, data)] = ledger.events()
    assert name == "patch:requested" and data["operations"] == 1 and data["workspace"] == "ws"
    assert [m["batchId"] for m in sent] == ["B1"] and sent[0]["operations"][0]["file"] == "a.txt"



def test_the_finish_transaction_is_retried_when_it_meets_another_on_the_aggregates():
    ctx, ledger = fake_ctx(system_org=ORG)
    ledger.conflicts = 1
    result = models.OpResult(index=0, file="a.txt", op="append", status="applied")
    final = service._finish(ctx, _batch(), "applied", [result], 1000, 1040)
    assert len(ledger.attempts) == 2 and set(ledger.committed[0]) == {"batch", "day", "order"}
    assert final.status == "applied" and final.duration_ms == 40 and final.pending_results is None

def test_submit_of_a_batch_id_in_use_is_a_conflict_and_queues_nothing(monkeypatch):
    monkeypatch.setattr(queue, "send_batch", lambda *a, **k: pytest.fail("queued a refused batch"))
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "A1"))
    ledger.fail["batch"] = 1
    body = models.PatchBatch.model_validate({"batchId": "B1", "workspace": "ws",
                                             "operations": [{"op": "append", "file": "a.txt"}]})
    with pytest.raises(Conflict):
        service.submit(ctx, body)
    assert ledger.committed == []


class _Snapshot:
    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def committed_batch(self, batch_id: str) -> dict | None:
        return None


def test_the_worker_prepares_commits_finishes_and_writes_events_with_their_outbox_items_in_bulk(monkeypatch):
    stored = _batch()
    committed: list[dict] = []
    monkeypatch.setattr(store, "get_batch", lambda org, bid: stored if bid == "B1" else None)
    monkeypatch.setattr(workspaces, "snapshot", lambda ctx, ws: _Snapshot({"a.txt": b"one\n"}))
    monkeypatch.setattr(workspaces, "commit", lambda ctx, snap, files, batch=None, after_blob=None:
                        committed.append(files) or "etag")
    ctx, ledger = fake_ctx(system_org=ORG)
    message = {"v": 1, "kind": "apply", "orgId": ORG, "batchId": "B1", "workspace": "ws",
               "operations": [{"op": "append", "file": "a.txt", "content": "two\n"}]}
    assert service.apply_queued(ctx, message) == "applied"
    assert committed == [{"a.txt": b"one\ntwo\n"}]
    prepared, finished, events = ledger.committed
    assert list(prepared) == ["batch"] and prepared["batch"].set["pendingOutcome"] == "applied"
    assert set(finished) == {"batch", "day", "order"}
    assert finished["batch"].set["status"] == "applied"
    assert json.loads(finished["batch"].set["results"])[0]["status"] == "applied"
    [(name, data)] = ledger.events()
    event_name = next(n for n in events if n.startswith("patch-event:"))
    stored_event = events[event_name].item
    assert name == "patch:applied" and data["eventId"] == stored_event["eventId"] == stored_event["SK"]
    assert data["file"] == "a.txt" and data["index"] == 0 and data["workspace"] == "ws"
    assert stored_event["GSI2PK"] == f"ORG#{ORG}#PEV#ORDER#O1" and "GSI3PK" not in stored_event
    # the outbox item carries the event's id: a repeat rewrites it instead of delivering twice
    assert events[f"event:{stored_event['eventId']}"].item["id"] == stored_event["eventId"]


def test_a_finished_batch_redelivered_rewrites_the_same_events():
    finished = _batch(status="failed", finished_at=REQUESTED_AT, duration_ms=3,
                      results=[models.OpResult(index=0, file="a.txt", op="append", status="failed", error="E: x")])
    ids = []
    for _ in range(2):
        ctx, ledger = fake_ctx(system_org=ORG)
        service._write_events(ctx, finished)
        [(name, data)] = ledger.events()
        assert name == "patch:failed" and data["error"] == "E: x"
        ids.append(data["eventId"])
    assert ids[0] == ids[1]


def test_get_batch_answers_the_declared_entity_without_its_internal_fields(monkeypatch):
    batch = _batch(status="applied", finished_at=REQUESTED_AT, duration_ms=4, pending_outcome="applied",
                   results=[models.OpResult(index=0, file="a.txt", op="append", status="applied", matched_by=None)])
    item = store.to_item(ORG, batch)
    assert item["results"] and item["operations"] == 1 and item["pendingOutcome"] == "applied"
    monkeypatch.setattr(store, "get_batch", lambda org, bid: store.from_item(item) if bid == "B1" else None)
    ctx, _ = fake_ctx(principal(Scope.AGENT, "A1"))
    body = assert_declared("GET", "/api/patches/batches/{batchId}", service.get_batch(ctx, "B1"))
    assert body == {"batchId": "B1", "workspace": "ws", "status": "applied", "orderId": "O1", "factory": "f",
                    "phase": "p", "requestedAt": REQUESTED_AT, "finishedAt": REQUESTED_AT, "durationMs": 4,
                    "results": [{"index": 0, "file": "a.txt", "op": "append", "status": "applied"}]}
    with pytest.raises(NotFound, match="no batch B2"):
        service.get_batch(ctx, "B2")


def _sqs_event(body: dict | str, receive_count: int = 1, message_id: str = "m1") -> dict:
    return {"Records": [{
        "messageId": message_id, "receiptHandle": "r", "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receive_count), "MessageGroupId": f"group-{message_id}",
                       "MessageDeduplicationId": "d", "SentTimestamp": "0", "SenderId": "s",
                       "ApproximateFirstReceiveTimestamp": "0"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:patches.fifo", "awsRegion": "us-east-1"}]}


def test_the_worker_retries_a_failing_batch_then_finishes_it_failed_on_its_last_delivery(monkeypatch):
    failed: list[str] = []

    def boom(ctx, message):
        if message["batchId"] == "B1":
            raise RuntimeError("S3 down")
        return "applied"

    monkeypatch.setattr(service, "apply_queued", boom)
    monkeypatch.setattr(service, "fail_queued", lambda ctx, message, error: failed.append(str(error)) or "failed")
    message = {"v": 1, "kind": "apply", "orgId": ORG, "batchId": "B1", "workspace": "ws", "operations": []}
    other = _sqs_event({**message, "batchId": "B2", "workspace": "other"}, 1, "m2")
    first = {"Records": _sqs_event(message, 1)["Records"] + other["Records"]}
    assert worker.handle_batch(first)["batchItemFailures"] == [{"itemIdentifier": "m1"}]
    assert failed == []
    assert worker.handle_batch(_sqs_event(message, worker.MAX_DELIVERIES))["batchItemFailures"] == []
    assert failed == ["S3 down"]
    # an unreadable message is dropped, never cycled into the dead-letter queue
    assert worker.handle_batch(_sqs_event("not json"))["batchItemFailures"] == []

