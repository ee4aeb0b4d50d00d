"""GET /health's service: every dependency probed, a failing one named, the contract's error beside the checks."""
from __future__ import annotations

from chalicelib.system import service as system, store
from tests.unit.fakes import fake_ctx


def test_all_probes_answer_ok(monkeypatch):
    monkeypatch.setattr(store, "probe_dynamodb", lambda: None)
    monkeypatch.setattr(store, "probe_sqs", lambda: None)
    assert system.health(fake_ctx()[0]) == {"status": "ok", "checks": {"dynamodb": "ok", "sqs": "ok"}}


def test_a_failing_probe_is_named_with_the_error_beside_the_checks(monkeypatch):
    def down() -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(store, "probe_dynamodb", lambda: None)
    monkeypatch.setattr(store, "probe_sqs", down)
    report = system.health(fake_ctx()[0])
    assert report["status"] == "unavailable" and report["checks"]["sqs"] == "unavailable: ConnectionError"
    assert report["error"]["code"] == "UNAVAILABLE"
