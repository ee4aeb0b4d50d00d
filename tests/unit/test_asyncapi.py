"""The WebSocket's AsyncAPI 3.0 document (chalicelib/events/asyncapi.py) and the event catalog.

No AWS: the document is built from the catalog's models. That GET /asyncapi.json serves it is in
tests/handlers/test_asyncapi_route.py; that every event the app really emits matches it is checked
wherever tests see events (tests/support/asyncapi_events.py, hooked into the e2e client, the
fan-out's recorder and the outbox readers).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from chalicelib.events import asyncapi, catalog
from tests.conftest import SentMessages
from tests.support import asyncapi_events

ROOT = Path(__file__).resolve().parents[2]

# API.md, "WebSocket protocol": the contract's list of events, in its order.
CONTRACT_EVENTS = [
    "system:connected", "system:pong", "job:queued", "job:progress", "job:completed", "job:failed",
    "job:cancelled", "instance:log", "command:issued", "command:acked", "session:updated", "task:updated",
    "approval:requested", "approval:decided", "patch:requested", "patch:applied", "patch:failed",
    "patch:rejected", "report:generated", "ops:issue", "config:changed", "github:invoked",
]
# Sent only to a connection that asked for it (?batch=1, docs/API.md "WebSocket batching"): the contract's
# clients never see it.
OPT_IN_EVENTS = ["system:batch"]
CATALOG_EVENTS = CONTRACT_EVENTS[:2] + OPT_IN_EVENTS + CONTRACT_EVENTS[2:]

AT = "2026-01-01T00:00:00.000Z"
TASK = {"taskId": "T1", "idempotencyKey": "k", "toRole": "r", "type": "t", "payload": {"a": 1}, "status": "pending",
        "traceId": "tr", "requiresApproval": False, "createdAt": AT, "updatedAt": AT}
COMMAND = {"commandId": "C1", "agentId": "A1", "type": "restart", "payload": {}, "status": "pending",
           "ttlSeconds": 3600, "createdAt": AT, "expiresAt": AT}
PATCH = {"eventId": "E1", "batchId": "B1", "orderId": "O1", "at": AT, "durationMs": 12, "workspace": "w"}

# One payload per event, shaped as its emit site builds it (comments name the site).
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "system:connected": [{"timestamp": AT, "connectionId": "c1"}],  # fanout/handlers.py
    "system:pong": [{"timestamp": AT}],
    "system:batch": [{"events": [{"event": "job:queued", "data": {"jobId": "J"}},  # fanout/rules.batch_messages
                                 {"event": "job:progress", "data": {}}]}],
    "job:queued": [  # jobs/events.py: queued (nulls left out), requeued (the run's view, nulls kept)
        {"jobId": "J", "status": "QUEUED", "type": "t", "agentId": "A", "attempts": 0, "at": AT, "priority": 5},
        {"jobId": "J", "runId": "R", "type": "t", "agentId": None, "pool": "p", "attempts": 1, "at": AT,
         "status": "QUEUED", "reason": "LEASE_EXPIRED"},
    ],
    "job:progress": [
        {"jobId": "J", "runId": "R", "status": "RUNNING", "claimedBy": "A", "progressPercent": 40, "at": AT},
        {"jobId": "J", "runId": "R", "status": "RUNNING", "claimedBy": "A", "progressPercent": 40.5,
         "progressMessage": "copying", "at": AT},
    ],
    "job:completed": [
        {"jobId": "J", "runId": "R", "status": "COMPLETED", "claimedBy": "A", "at": AT},
        {"jobId": "J", "runId": "R", "status": "COMPLETED", "claimedBy": "A", "at": AT, "result": [1, {"x": None}]},
    ],
    "job:failed": [
        {"jobId": "J", "runId": "R", "status": "FAILED", "claimedBy": "A", "at": AT,
         "error": {"code": "AGENT_FAILED", "message": "boom"}},
        {"jobId": "J", "runId": "R", "type": "t", "agentId": "A", "pool": None, "attempts": 3, "at": AT,
         "status": "FAILED", "claimedBy": "A", "error": {"code": "LEASE_EXPIRED", "message": "no heartbeat"}},
    ],
    "job:cancelled": [
        {"jobId": "J", "status": "CANCELLED", "type": "t", "pool": "p", "attempts": 0, "at": AT},
        {"jobId": "J", "status": "CANCELLED", "type": "t", "agentId": "A", "attempts": 1, "at": AT, "runId": "R",
         "claimedBy": "A"},
    ],
    "instance:log": [{"instanceId": "I", "agentId": "A", "entries": [  # logs/events.py
        {"id": "L1", "instanceId": "I", "timestamp": AT, "level": "INFO", "message": "m"},
        {"id": "L2", "instanceId": "I", "timestamp": AT, "level": "ERROR", "message": "m", "fields": {"k": 1}}]}],
    "command:issued": [COMMAND],
    "command:acked": [{**COMMAND, "status": "acked", "ackedAt": AT, "result": {"ok": True}}],
    "session:updated": [{"sessionId": "S", "agentRole": "r", "status": "pending", "metadata": {},
                         "createdAt": AT, "updatedAt": AT}],
    "task:updated": [TASK, {**TASK, "sessionId": "S", "result": None, "approvalId": "P"}],
    "approval:requested": [{"approvalId": "P", "taskId": "T1", "requestedBy": "me", "status": "pending",
                            "createdAt": AT, "updatedAt": AT, "task": {**TASK, "status": "awaiting_approval"}}],
    "approval:decided": [{"approvalId": "P", "taskId": "T1", "requestedBy": "me", "status": "approved",
                          "decidedBy": "boss", "decidedAt": AT, "createdAt": AT, "updatedAt": AT, "task": TASK}],
    "patch:requested": [{**PATCH, "status": "requested", "durationMs": 0, "operations": 3}],  # patches/service.py
    "patch:applied": [{**PATCH, "status": "applied", "file": "a.txt", "op": "append", "index": 0},
                      {**PATCH, "status": "applied", "file": "a.txt", "op": "replace-block", "index": 1,
                       "matchedBy": "marker"}],
    "patch:failed": [{**PATCH, "status": "failed", "file": "a.txt", "op": "insert-after", "index": 0,
                      "error": "ANCHOR_NOT_FOUND: no line matches"}],
    "patch:rejected": [{**PATCH, "status": "rejected", "file": "a.txt", "op": "append", "index": 2,
                        "error": "BATCH_NOT_APPLIED: operation 0 failed"}],
    "report:generated": [{"orderId": "O1", "generatedAt": AT, "successRate": None, "batches": 1,
                          "lastActivityAt": AT}],
    "ops:issue": [{"id": "0123456789abcdef", "action": "opened", "title": "t", "severity": "high", "status": "open",
                   "count": 3, "githubNumber": 7, "githubUrl": "https://github.test/o/r/issues/7"},
                  {"id": "0123456789abcdef", "action": "claimed", "title": "t", "severity": "low",
                   "status": "in_progress", "count": 1, "githubNumber": None, "githubUrl": None}],
    "config:changed": [{"agentId": "A", "version": 2}],
    "github:invoked": [{"invocationId": "V", "tool": "create_issue", "repo": "o/r", "status": "succeeded",
                        "result": {"number": 1}},
                       {"invocationId": "V", "tool": "create_issue", "repo": "o/r", "status": "failed",
                        "error": {"code": "GITHUB_ERROR", "message": "422"}}],
}

# (event, data, why it is wrong): each must be refused by both validators.
WRONG = [
    ("job:queued", {**SAMPLES["job:queued"][0], "status": "RUNNING"}, "another event's status"),
    ("job:queued", {k: v for k, v in SAMPLES["job:queued"][0].items() if k != "attempts"}, "a required field left out"),
    ("job:progress", {**SAMPLES["job:progress"][0], "progressMessage": None}, "null where the site omits it"),
    ("job:progress", {**SAMPLES["job:progress"][0], "percent": 4}, "a field the event does not have"),
    ("job:progress", {**SAMPLES["job:progress"][0], "progressPercent": "40"}, "a number as a string"),
    ("job:failed", {k: v for k, v in SAMPLES["job:failed"][0].items() if k != "error"}, "a failure without error"),
    ("task:updated", {**TASK, "owner": "x"}, "a field the domain's view does not have"),
    ("task:updated", {**TASK, "status": "done"}, "a status the domain does not have"),
    ("instance:log", {"instanceId": "I", "agentId": "A", "entries": []}, "an empty group"),
    ("patch:applied", {**SAMPLES["patch:applied"][0], "index": -1}, "a negative index"),
    ("config:changed", {"agentId": "A"}, "no version"),
    ("ops:issue", {**SAMPLES["ops:issue"][0], "action": "deleted"}, "an action the scan never takes"),
]


def test_the_catalog_names_exactly_the_contracts_events():
    assert list(catalog.EVENTS) == CATALOG_EVENTS
    assert set(catalog.SUMMARIES) == set(CATALOG_EVENTS)
    assert set(SAMPLES) == set(CATALOG_EVENTS)


def test_docs_asyncapi_json_is_the_generated_document():
    committed = (ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8")
    assert committed == asyncapi.text(), "docs/asyncapi.json is stale: run `make asyncapi` and commit it"


def _resolve(doc: dict, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return ([value["$ref"]] if isinstance(value.get("$ref"), str) else []) + [
            r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


OFFICIAL_SCHEMA = ROOT / "tests" / "fixtures" / "asyncapi" / "asyncapi-3.0.0.schema.json"


def test_the_document_is_valid_against_the_published_asyncapi_3_0_0_json_schema():
    """The AsyncAPI Initiative's own JSON Schema of 3.0.0 documents (tests/fixtures/asyncapi/README.md)."""
    validator = jsonschema.Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8")))
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(asyncapi.document())]
    assert errors == []
    broken = json.loads(asyncapi.text())
    broken["operations"]["receivePing"]["action"] = "answer"
    del broken["info"]["version"]
    assert len(list(validator.iter_errors(broken))) >= 2  # the schema does catch a broken document


def test_the_document_has_the_asyncapi_3_structure():
    """What the published schema leaves open: every reference resolves, operations use their channel's
    messages, every contract event has a message, the ping's reply is the pong, payloads are draft-07."""
    doc = asyncapi.document()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc) <= {"asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
                        "components"}
    for server in doc["servers"].values():
        assert server["host"] and server["protocol"] in ("ws", "wss")
    component_key = r"^[a-zA-Z0-9\.\-_]+$"
    for section in ("messages", "schemas", "securitySchemes"):
        for key in doc["components"][section]:
            jsonschema.validate(key, {"type": "string", "pattern": component_key})
    (channel,) = doc["channels"].values()
    assert set(channel["messages"]) == set(doc["components"]["messages"])
    for operation in doc["operations"].values():
        assert operation["action"] in ("send", "receive")
        assert _resolve(doc, operation["channel"]["$ref"]) is channel
        for message in operation["messages"]:  # an operation's messages are its channel's
            assert message["$ref"].startswith("#/channels/ws/messages/")
    for ref in _refs(doc):
        _resolve(doc, ref)  # every reference resolves inside the document
    sent = {_resolve(doc, m["$ref"])["$ref"] for op in doc["operations"].values() if op["action"] == "send"
            for m in op["messages"]}
    ping = doc["operations"]["receivePing"]
    assert ping["action"] == "receive" and ping["reply"]["messages"] == [
        {"$ref": "#/channels/ws/messages/system.pong"}]
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert names == set(CATALOG_EVENTS) | {"ping"}
    assert len(sent) == len(CATALOG_EVENTS) - 1  # every event but the pong is sent on its own
    for schema in doc["components"]["schemas"].values():  # AsyncAPI Schema is draft-07: check it as one
        jsonschema.Draft7Validator.check_schema(schema)
    assert doc["components"]["securitySchemes"]["token"] == {**doc["components"]["securitySchemes"]["token"],
                                                              "type": "httpApiKey", "in": "query", "name": "token"}
    assert doc["channels"]["ws"]["x-upgrade-refused"]["status"] == 401


@pytest.mark.parametrize("event", CATALOG_EVENTS)
def test_every_sample_of_every_event_matches_the_document_and_its_model(event):
    for data in SAMPLES[event]:
        catalog.validate(event, data)
        asyncapi_events.check_event(event, data)
        catalog.model(event).model_validate(data)  # the pydantic model reads what the schema accepts


@pytest.mark.parametrize("event,data,why", WRONG, ids=[w[2] for w in WRONG])
def test_a_payload_that_is_not_what_the_event_carries_is_refused(event, data, why):
    with pytest.raises(jsonschema.ValidationError):
        catalog.validate(event, data)
    with pytest.raises(asyncapi_events.EventNotInContract):
        asyncapi_events.check_event(event, data)


def test_an_unknown_event_is_refused_everywhere():
    with pytest.raises(catalog.UnknownEvent):
        catalog.validate("instance:created", {})
    with pytest.raises(catalog.UnknownEvent):
        catalog.model("job:started")
    with pytest.raises(asyncapi_events.EventNotInContract):
        asyncapi_events.check_message({"event": "instance:created", "data": {}})
    with pytest.raises(asyncapi_events.EventNotInContract):  # the client action is not an event
        asyncapi_events.check_message({"event": "ping", "data": {}})
    with pytest.raises(asyncapi_events.EventNotInContract):
        asyncapi_events.check_frame('["job:queued"]')
    with pytest.raises(asyncapi_events.EventNotInContract):  # the envelope is closed too
        asyncapi_events.check_message({"event": "system:pong", "data": {"timestamp": AT}, "extra": 1})


def test_the_fanout_recorder_keeps_what_the_document_refuses():
    recorder = SentMessages()
    assert recorder.post("e", "c", json.dumps({"event": "system:pong", "data": {"timestamp": AT}}).encode())
    assert recorder.post("e", "c", b'{"event":"job:queued","data":{"jobId":"j1"}}')
    assert len(recorder.invalid) == 1 and "job:queued" in recorder.invalid[0]


def test_the_event_models_read_the_samples_as_pydantic_too_and_refuse_extra_fields():
    with pytest.raises(ValidationError):
        catalog.JobProgress.model_validate({**SAMPLES["job:progress"][0], "extra": 1})


def test_importing_the_catalog_imports_no_domain_and_the_document_only_the_models_it_names():
    probe = ("import json, re, sys\n"
             "from chalicelib.events import catalog\n"
             "cold = sorted(m for m in sys.modules if re.fullmatch(r'chalicelib\\.\\w+\\.(models|service|store|rules)', m))\n"
             "from chalicelib.events import asyncapi\n"
             "asyncapi.document()\n"
             "warm = sorted(m for m in sys.modules if re.fullmatch(r'chalicelib\\.\\w+\\.(service|store)', m))\n"
             "print(json.dumps({'cold': cold, 'warm': warm}))\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert found == {"cold": [], "warm": []}


def test_the_e2e_client_fails_at_the_recv_of_a_frame_the_document_refuses():
    """tests/e2e/client.py's ws_connect against a real (tiny) WebSocket server sending one good and one bad frame."""
    import contextlib
    import threading

    from websockets.sync.server import serve

    from tests.e2e.client import ws_connect

    frames = [json.dumps({"event": "system:connected", "data": {"timestamp": AT, "connectionId": "c"}}),
              json.dumps({"event": "job:queued", "data": {"jobId": "j1"}})]

    def handler(connection):
        for frame in frames:
            connection.send(frame)
        with contextlib.suppress(Exception):
            connection.recv()  # until the client closes

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        with ws_connect(f"http://127.0.0.1:{port}", "k") as conn:
            assert json.loads(conn.recv(timeout=5))["event"] == "system:connected"
            with pytest.raises(asyncapi_events.EventNotInContract, match="job:queued"):
                conn.recv(timeout=5)
        with ws_connect(f"http://127.0.0.1:{port}", "k", check_events=False) as conn:
            conn.recv(timeout=5)
            assert json.loads(conn.recv(timeout=5))["data"] == {"jobId": "j1"}
        server.shutdown()
