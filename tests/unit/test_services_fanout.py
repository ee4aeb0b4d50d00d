"""The fan-out and the WebSocket handlers on the fake unit of work (no AWS): the greeting claim,
the connection item's delete after 410 Gone and on $disconnect (chalicelib/fanout)."""
from __future__ import annotations

import pytest

from chalicelib.fanout import adapters, fanout, handlers, rules, store
from tests.unit.fakes import ORG, fake_ctx

CONN = rules.Connection("c1", ORG, "https://ws.example/dev", None)


@pytest.fixture
def posts(monkeypatch):
    sent: list[tuple[str, bytes]] = []

    def post(endpoint: str, connection_id: str, message: bytes) -> bool:
        sent.append((connection_id, message))
        return connection_id != "gone"

    monkeypatch.setattr(adapters, "post", post)
    monkeypatch.setattr(store, "get", lambda cid: CONN if cid == "c1" else None)
    monkeypatch.setattr(store, "of_org", lambda org: iter([CONN, rules.Connection("gone", ORG, CONN.endpoint, None)]))
    return sent


def test_a_gone_connection_is_deleted_through_the_unit_of_work(posts):
    ctx, ledger = fake_ctx()
    result = fanout.deliver([rules.Event("e1", ORG, "job:queued", {"jobId": "j1"})], ctx)
    assert (result.sent, result.gone) == (1, ["gone"])
    assert [list(c) for c in ledger.committed] == [["connection"]]
    assert ledger.committed[0]["connection"].key == {"PK": "CONN#gone", "SK": "CONN"}


def test_the_greeting_is_claimed_sent_and_marked_once(posts):
    ctx, ledger = fake_ctx()
    fanout.deliver([rules.Event("e1", ORG, "system:connected", {"connectionId": "c1"}, connection_id="c1")], ctx)
    assert [list(c) for c in ledger.committed] == [["greeting"], ["greeting"]]
    assert [w["greeting"].set for w in ledger.committed] == [{"greeting": store.GREETING_CLAIMED},
                                                             {"greeting": store.GREETING_SENT}]
    assert [cid for cid, _ in posts] == ["c1"]


def test_a_greeting_someone_else_claimed_is_not_sent_again(posts, monkeypatch):
    ctx, ledger = fake_ctx()
    ledger.fail["greeting"] = 1
    monkeypatch.setattr(store, "greeting_state", lambda cid: store.GREETING_SENT)
    fanout.deliver([rules.Event("e1", ORG, "system:connected", {"connectionId": "c1"}, connection_id="c1")], ctx)
    assert posts == [] and ledger.committed == []


def test_disconnect_deletes_the_connection_item(monkeypatch):
    ctx, ledger = fake_ctx()
    monkeypatch.setattr(handlers.Ctx, "system", staticmethod(lambda *a, **k: ctx))
    handlers.disconnect({"requestContext": {"connectionId": "c9", "requestId": "r1"}})
    assert [list(c) for c in ledger.committed] == [["connection"]]
    assert ledger.committed[0]["connection"].key == {"PK": "CONN#c9", "SK": "CONN"}
