"""GET /schemas/...: JSON Schema 2020-12 documents of the patch batch, the patch events report, the stored
patch event and every WebSocket message, checked with `jsonschema` (Draft202012Validator) against real
requests the API accepted, answers it gave and events it emitted; and POST /api/patches/events on moto."""
from __future__ import annotations

import jsonschema
import pytest

from tests.handlers.test_patches_api import Queue, apply, put_file

V = jsonschema.Draft202012Validator


@pytest.fixture
def op_key(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "op", "scope": "operator"})
    assert r.status == 201, r.json
    return r.json["apiKey"]


def schema(http, path: str) -> dict:
    r = http.get(path)  # no key: schemas are public documents, like /openapi.json
    assert r.status == 200, r.json
    doc = r.json
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    V.check_schema(doc)
    return doc


def test_index_lists_every_schema_and_each_is_a_valid_2020_12_document(http):
    listed = http.get("/schemas").json["schemas"]
    assert {"/schemas/patch-batch.json", "/schemas/patch-event.json", "/schemas/patch-events.json",
            "/schemas/events/patch.applied.json", "/schemas/events/job.queued.json"} <= set(listed)
    for path in listed:
        schema(http, path)
    missing = http.get("/schemas/events/no.such.json")
    assert missing.status == 404 and missing.json["error"]["code"] == "NOT_FOUND"


def test_batches_the_api_accepts_validate_and_ones_it_refuses_do_not(http, op_key):
    batch_schema = V(schema(http, "/schemas/patch-batch.json"))
    good = {"workspace": "w1", "orderId": "o", "factory": "f", "phase": "p", "dryRun": True, "operations": [
        {"op": "replace-block", "file": "a.txt", "anchor": {"marker": "###X###"}, "content": "c"},
        {"op": "insert-after", "file": "a.txt", "anchor": {"lines": {"start": 1, "end": 2}}, "content": "c"},
        {"op": "insert-before", "file": "a.txt", "anchor": {"line": 3}, "content": "c"},
        {"op": "append", "file": "b.txt", "content": "c", "expectedSha256": "0" * 64},
        {"op": "prepend", "file": "c.txt", "content": "c"}]}
    assert list(batch_schema.iter_errors(good)) == []
    assert http.post("/api/patches/apply", op_key, good).status == 200  # the API takes it too
    for bad in ({**good, "operations": []},                                  # 1..1000 operations
                {**good, "surprise": 1},                                      # closed, as the API
                {**good, "operations": [{"op": "append"}]},                   # file required
                {**good, "operations": [{"op": "rename", "file": "a"}]},      # unknown op
                {**good, "workspace": "no spaces allowed"}):
        assert list(batch_schema.iter_errors(bad)), bad
        assert http.post("/api/patches/apply", op_key, bad).status == 400, bad


def test_a_reported_batch_validates_and_so_do_its_stored_and_emitted_events(http, op_key, outbox, aws, app_module):
    outbox.drain()
    report = {"batchId": "local-1", "workspace": "laptop", "orderId": "O-9", "factory": "fac-x", "phase": "build",
              "durationMs": 1200, "results": [
                  {"index": 0, "file": "a.txt", "op": "append", "status": "applied"},
                  {"index": 1, "file": "b.txt", "op": "replace-block", "status": "applied", "matchedBy": "search"}]}
    assert list(V(schema(http, "/schemas/patch-events.json")).iter_errors(report)) == []
    r = http.post("/api/patches/events", op_key, report)
    assert r.status == 201, r.json
    assert r.json == {"batchId": "local-1", "status": "applied", "events": 3}

    event_schema = V(schema(http, "/schemas/patch-event.json"))
    stored = http.get("/api/patches/logs?order=asc&search=laptop", op_key).json["items"] or \
        http.get("/api/patches/logs?order=asc", op_key).json["items"]
    mine = [e for e in stored if e["batchId"] == "local-1"]
    assert [e["status"] for e in mine] == ["requested", "applied", "applied"]
    for e in mine:
        assert list(event_schema.iter_errors(e)) == [], e

    emitted = [e for e in outbox.drain() if e["event"].startswith("patch:") and e["data"]["batchId"] == "local-1"]
    assert [e["event"] for e in emitted] == ["patch:requested", "patch:applied", "patch:applied"], emitted
    for e in emitted:
        message_schema = V(schema(http, f"/schemas/events/{e['event'].replace(':', '.')}.json"))
        message = {"event": e["event"], "data": e["data"]}
        assert list(message_schema.iter_errors(message)) == [], message
        wrong = {"event": e["event"], "data": {**e["data"], "unexpected": True}}
        assert list(message_schema.iter_errors(wrong))
    again = http.post("/api/patches/events", op_key, report)  # after the drain: see below
    assert again.status == 409 and again.json["error"]["code"] == "CONFLICT"
    # (moto restores a cancelled transaction's tables from a copy but its stream keeps the records the
    # transaction wrote: the outbox reader would see a ghost patch:requested; DynamoDB emits none.)

    stats = http.get("/api/patches/stats", op_key).json
    assert {"factory": "fac-x", "total": 2, "applied": 2, "rate": 1.0} in stats["successRateByFactory"]
    view = http.get("/api/patches/batches/local-1", op_key).json
    assert view["status"] == "applied" and view["durationMs"] == 1200 and view["workspace"] == "laptop"


def test_a_report_with_a_path_outside_the_workspace_is_refused_naming_the_result(http, op_key):
    r = http.post("/api/patches/events", op_key, {"batchId": "local-2", "results": [
        {"index": 0, "file": "ok.txt", "op": "append", "status": "applied"},
        {"index": 1, "file": "../etc/passwd", "op": "append", "status": "failed", "error": "x"}]})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "results[1].file", r.json
    assert http.get("/api/patches/batches/local-2", op_key).status == 404
    validated = http.post("/api/patches/events", op_key, {"batchId": "local-3", "results": [
        {"index": 0, "file": "a.txt", "op": "append", "status": "validated"}]})
    assert validated.status == 400  # dry runs are not outcomes


def test_a_failed_report_counts_as_failed(http, op_key):
    r = http.post("/api/patches/events", op_key, {"batchId": "local-4", "factory": "fac-y", "results": [
        {"index": 0, "file": "a.txt", "op": "append", "status": "rejected", "error": "BATCH_NOT_APPLIED: operation 1 failed"},
        {"index": 1, "file": "a.txt", "op": "replace-block", "status": "failed", "error": "SEARCH_NOT_FOUND: x"}]})
    assert r.status == 201 and r.json["status"] == "failed"
    stats = http.get("/api/patches/stats", op_key).json
    assert {"factory": "fac-y", "total": 2, "applied": 0, "rate": 0.0} in stats["successRateByFactory"]


def test_a_batch_the_worker_applied_validates_as_stored_and_emitted(http, op_key, outbox, app_module, aws):
    queue = Queue(app_module, aws)
    queue.drain()
    outbox.drain()
    put_file(http, op_key, "sch", "a.txt", "one\n")
    accepted = apply(http, op_key, {"workspace": "sch", "operations": [
        {"op": "insert-after", "file": "a.txt", "anchor": {"search": "one"}, "content": "two"}]})
    queue.drain()
    event_schema = V(http.get("/schemas/patch-event.json").json)
    for e in http.get("/api/patches/logs", op_key).json["items"]:
        assert list(event_schema.iter_errors(e)) == [], e
    emitted = [e for e in outbox.drain() if e["data"].get("batchId") == accepted["batchId"]]
    assert {e["event"] for e in emitted} == {"patch:requested", "patch:applied"}
    for e in emitted:
        doc = http.get(f"/schemas/events/{e['event'].replace(':', '.')}.json").json
        assert list(V(doc).iter_errors({"event": e["event"], "data": e["data"]})) == []
