"""Pure pieces of the factory loop and the CI source: exit codes, the WebSocket URL, batch input, a reported
batch's status, the log tail, the schema documents."""
from __future__ import annotations

import io

import pytest

from agent import factory
from agent.client import ApiError
from chalicelib.ops import ci
from chalicelib.patches.models import OpResult
from chalicelib.patches.service import reported_outcome


@pytest.mark.parametrize(("error", "code"), [
    (ApiError(400, "VALIDATION_ERROR", "x"), factory.EXIT_INVALID),
    (ApiError(413, "PAYLOAD_TOO_LARGE", "x"), factory.EXIT_INVALID),
    (ApiError(401, "UNAUTHORIZED", "x"), factory.EXIT_REFUSED),
    (ApiError(409, "CONFLICT", "x"), factory.EXIT_REFUSED),
    (ApiError(503, "UNAVAILABLE", "x"), factory.EXIT_UNREACHABLE),
    (ConnectionError("refused"), factory.EXIT_UNREACHABLE),
    (factory.InvalidInput("bad"), factory.EXIT_INVALID),
])
def test_exit_codes_say_what_went_wrong(error, code):
    assert factory.exit_code_of(error) == code


def test_exit_codes_are_distinct():
    codes = [factory.EXIT_APPLIED, factory.EXIT_FAILED, factory.EXIT_INVALID, factory.EXIT_REJECTED,
             factory.EXIT_UNREACHABLE, factory.EXIT_REFUSED, factory.EXIT_TIMEOUT]
    assert codes == list(range(7))


def test_the_websocket_url_is_the_rest_urls_ws_path():
    assert factory.ws_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert factory.ws_url("https://api.example.com/prod/") == "wss://api.example.com/prod/ws"


def test_a_batch_must_be_a_json_object_with_operations():
    assert factory.read_batch("-", io.StringIO('{"workspace": "w", "operations": []}'))["workspace"] == "w"
    for text in ("{", "[]", '{"workspace": "w"}'):
        with pytest.raises(factory.InvalidInput):
            factory.read_batch("-", io.StringIO(text))
    with pytest.raises(factory.InvalidInput):
        factory.read_batch("/no/such/batch.json")


def _result(status):
    return OpResult(index=0, file="a", op="append", status=status)


def test_a_reported_batch_is_applied_only_when_every_result_applied():
    assert reported_outcome([_result("applied"), _result("applied")]) == "applied"
    assert reported_outcome([_result("rejected"), _result("failed")]) == "failed"
    assert reported_outcome([_result("applied"), _result("rejected")]) == "rejected"


def test_the_log_tail_keeps_the_last_lines_without_terminal_escapes():
    text = "".join(f"\x1b[32mline {i}\x1b[0m\r\n" for i in range(100)) + "\x07bell\x00"
    tail = ci.log_tail(text, cut=False)
    lines = tail.split("\n")
    assert lines[0].startswith("[… the last") and lines[1] == "line 41" and lines[-1] == "bell"
    assert "\x1b" not in tail and "\x07" not in tail and "\r" not in tail
    assert ci.log_tail("short\nlog\n", cut=False) == "short\nlog"
    assert ci.log_tail("partial line\nwhole\n", cut=True) == "[… the last 1 lines of the job's log]\nwhole"


def test_schema_documents_are_2020_12_and_cover_every_event():
    from chalicelib.events import catalog
    from chalicelib.system import schemas

    for name in schemas.DOCUMENTS:
        doc = schemas.model_document(name)
        assert doc is not None and doc["$schema"] == schemas.DIALECT and doc["$id"].endswith(name)
    assert schemas.model_document("nope.json") is None
    for event in catalog.EVENTS:
        doc = schemas.event_document(schemas.event_file(event))
        assert doc is not None and doc["properties"]["event"]["const"] == event
        assert "#/components/" not in str(doc)
    assert schemas.event_document("patch:applied") is None


class _QueuedForever:
    """A control plane whose batch never leaves `queued` (the worker is down)."""

    api_key = "k"

    def __init__(self):
        self.requests: list[tuple[str, str]] = []

    def request(self, method, path, body=None, query=None, headers=None, retry=True):
        self.requests.append((method, path))
        if method == "POST":
            assert headers and headers["Idempotency-Key"].startswith("submit-")
            return {"batchId": "B1", "status": "queued"}
        return {"batchId": "B1", "status": "queued", "results": []}


def test_submit_times_out_with_exit_6_while_the_batch_stays_queued():
    stub = _QueuedForever()
    code, shown = factory.submit(stub, {"workspace": "w", "operations": [{"op": "append", "file": "a"}]},
                                 socket_url=None, timeout=0.3, poll=0.05, log=lambda m: None)
    assert code == factory.EXIT_TIMEOUT and shown["status"] == "queued" and "still queued" in shown["error"]
    assert shown["followedBy"]["via"] == "rest" and shown["followedBy"]["socketError"] == "disabled"
    assert stub.requests[0] == ("POST", "/api/patches/apply") and len(stub.requests) >= 3
