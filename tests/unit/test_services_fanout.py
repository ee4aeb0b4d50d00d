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
    monkeypatch.setattr(store, "of_org", lambda org: [(CONN, 2**40),
                                                           (rules.Connection("gone", ORG, CONN.endpoint, None), 2**40)])
    monkeypatch.setattr(store, "connections_version", lambda org: ("v1", 0.0))
    fanout.forget_cached_connections()
    yield sent
    fanout.forget_cached_connections()


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


def test_a_cached_connection_past_its_ttl_gets_nothing_more(posts, monkeypatch):
    # The TTL may be the expiry of the token the socket was opened with: a cached list honours it
    # as the Query does, without reading the list again.
    from chalicelib.core import clock

    now = clock.now()
    monkeypatch.setattr(store, "of_org", lambda org: [(CONN, int(now) + 60),
                                                     (rules.Connection("long", ORG, CONN.endpoint, None), 2**40)])
    monkeypatch.setattr(fanout, "SETTLE_SECONDS", 0.0)
    ctx, _ = fake_ctx()
    fanout.deliver([rules.Event("e1", ORG, "job:queued", {"jobId": "j1"})], ctx)
    assert sorted(cid for cid, _ in posts) == ["c1", "long"]
    monkeypatch.setattr(store, "of_org", lambda org: pytest.fail("the list was read again"))
    monkeypatch.setattr(clock, "now", lambda: now + 61)
    fanout.deliver([rules.Event("e2", ORG, "job:queued", {"jobId": "j2"})], ctx)
    assert [cid for cid, message in posts if b"j2" in message] == ["long"]


def test_disconnect_deletes_the_connection_item(monkeypatch):
    ctx, ledger = fake_ctx()
    monkeypatch.setattr(handlers.Ctx, "system", staticmethod(lambda *a, **k: ctx))
    handlers.disconnect({"requestContext": {"connectionId": "c9", "requestId": "r1"}})
    assert [list(c) for c in ledger.committed] == [["connection"]]
    assert ledger.committed[0]["connection"].key == {"PK": "CONN#c9", "SK": "CONN"}


# --- system:batch packing (rules.batch_messages: pure) ---------------------------------------------

def _wire(n: int, size: int = 10) -> bytes:
    return rules.wire("job:progress", {"jobId": f"j{n}", "pad": "x" * size})


def test_a_run_of_events_packs_into_batch_messages_in_order_each_under_the_limit():
    import json

    wires = [_wire(n, 300) for n in range(40)]
    limit = 2_000
    messages = rules.batch_messages(wires, limit)
    assert all(len(m) <= limit for m, _ in messages)
    assert sum(count for _, count in messages) == 40
    unpacked = []
    for message, count in messages:
        body = json.loads(message)
        assert body["event"] == rules.BATCH and len(body["data"]["events"]) == count
        unpacked += body["data"]["events"]
    assert [e["data"]["jobId"] for e in unpacked] == [f"j{n}" for n in range(40)]
    # as full as the limit allows: no two neighbours would have fitted together
    assert len(messages) == -(-40 // (limit // (len(wires[0]) + 1)))


def test_one_event_alone_or_too_big_to_share_travels_as_itself():
    small, big = _wire(1), _wire(2, 5_000)
    assert rules.batch_messages([small]) == [(small, 1)]
    assert rules.batch_messages([small, big, small], 4_000) == [(small, 1), (big, 1), (small, 1)]
    assert rules.batch_messages([]) == []


def test_only_batch_1_or_true_asks_for_batches():
    assert rules.wants_batches({"token": "t", "batch": "1"}) and rules.wants_batches({"batch": "true"})
    assert not rules.wants_batches({"token": "t"}) and not rules.wants_batches(None)
    assert not rules.wants_batches({"batch": "0"})
