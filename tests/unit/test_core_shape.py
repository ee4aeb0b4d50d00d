"""core/paging, core/context, core/tx: the pieces every service is built from (no AWS)."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Forbidden, ValidationError
from chalicelib.core.paging import Page, decode_token, encode_token, next_token, page, start_key
from tests.unit.fakes import ORG, fake_ctx, principal


def test_a_token_round_trips_for_its_list_only():
    key = {"PK": "ORG#1#X", "SK": "a", "n": 3}
    token = next_token(key, "things:1")
    assert start_key(token, "things:1") == key
    for other in ("things:2", "others:1"):
        with pytest.raises(ValidationError) as e:
            start_key(token, other)
        assert e.value.details[0]["field"] == "nextToken"
    assert start_key(None, "things:1") is None and encode_token(None, "s") is None


def test_a_tampered_token_is_400_not_500():
    token = next_token({"PK": "a"}, "s")
    for bad in (token[:-2] + "AA", "!!!", "x" * 40):
        with pytest.raises(ValueError):
            decode_token(bad, "s")


def test_page_keeps_next_token_null_on_the_last_page():
    last = page([1, 2], None, "s", view=str)
    assert isinstance(last, Page) and last.items == ["1", "2"] and last.next_token is None


def test_the_agent_ownership_rule():
    agent = Ctx(principal(Scope.AGENT, "A1"))
    agent.require_agent("A1")
    with pytest.raises(Forbidden):
        agent.require_agent("A2")
    assert agent.agent_filter(None) == "A1"
    with pytest.raises(Forbidden):
        agent.agent_filter("A2")
    operator = Ctx(principal(Scope.OPERATOR))
    operator.require_agent("A2")
    assert operator.agent_filter(None) is None and operator.agent_filter("A2") == "A2"
    Ctx.system(ORG).require_agent("A2")


def test_system_context_acts_as_system_for_one_org():
    ctx = Ctx.system(ORG)
    assert ctx.actor == "system" and ctx.org_id == ORG and ctx.for_org("O2").org_id == "O2"


def test_tx_names_are_unique_and_audit_and_events_ride_along():
    ctx, ledger = fake_ctx(principal())
    tx = ctx.tx()
    tx.check("agent", object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tx.put("agent", object())  # type: ignore[arg-type]
    tx.audit("thing", "T1", "created", {"a": 1})
    tx.emit("system:pong", {"timestamp": "2026-12-07T00:00:00Z"}, agent_id="A1")  # any event of the contract
    tx.commit()
    names = ledger.names()
    assert names[0] == "agent" and names[1] == "audit:thing:T1:created" and names[2].endswith("system:pong")
    assert ledger.audits()[0]["actor"] == "key:01KEY000000000000000000000"
    assert ledger.audits()[0]["traceId"] == "trace-1"
    assert ledger.events() == [("system:pong", {"timestamp": "2026-12-07T00:00:00Z"})]


def test_audit_and_outbox_writers_are_handed_to_the_unit_of_work():
    from chalicelib.aws import dynamo
    from chalicelib.core.tx import Tx, Writers

    seen = []
    writers = Writers(audit=lambda *a: seen.append(("audit", a)) or dynamo.Put("t", {"k": 1}),
                      event=lambda *a, **k: seen.append(("event", a)) or dynamo.Put("t", {"k": 2}))
    tx = Tx(Ctx(principal()), writers)
    tx.audit("thing", "T1", "created").emit("thing:created", {"id": "T1"})
    assert [kind for kind, _ in seen] == ["audit", "event"] and len(tx) == 2


def test_a_bulk_unit_of_work_holds_unconditional_puts_only():
    from chalicelib.aws import dynamo

    ctx, _ = fake_ctx(principal())
    bulk = ctx.bulk()
    for i in range(150):  # past a transaction's 100: BatchWriteItem has no such limit
        bulk.put(f"entry:{i}", dynamo.Put("t", {"k": i}))
    with pytest.raises(ValueError):
        bulk.put("conditional", dynamo.Put("t", {"k": 0}, condition="attribute_not_exists(k)"))
    with pytest.raises(ValueError):
        bulk.update("update", dynamo.Update("t", {"k": 0}, set={"a": 1}))


def test_a_staged_unit_of_work_sends_nothing_and_commits_once():
    from chalicelib.aws import dynamo
    from chalicelib.core.tx import NotStageable, Staging

    staging = Staging()
    ctx = Ctx(principal(), unit_of_work=staging.unit_of_work)
    tx = ctx.tx()
    tx.put("thing", dynamo.Put("t", {"k": 1}))
    tx.audit("thing", "T1", "created")
    tx.commit()  # no AWS here: a real commit would fail without one
    assert [name for name, _ in staging.writes or []] == ["thing", "audit:thing:T1:created"]
    with pytest.raises(NotStageable):
        ctx.tx().put("again", dynamo.Put("t", {"k": 2})).commit()
    with pytest.raises(NotStageable):
        Ctx(principal(), unit_of_work=Staging().unit_of_work).bulk().put("e", dynamo.Put("t", {"k": 3})).commit()


def test_domain_errors_carry_no_status_and_the_pipeline_maps_every_code():
    from chalicelib.core import api, errors

    for cls in errors.ERRORS:
        assert not hasattr(cls, "status"), cls
        assert cls.code in api.ERROR_STATUS, cls
    assert api.status_of(errors.NotFound("x")) == 404 and api.status_of(errors.IdempotencyKeyReused("x")) == 409
    assert api.status_of(errors.ApiError("x", code="SOMETHING_NEW")) == 500  # a code with no row is a bug


def test_commit_returning_takes_one_update_and_is_never_staged():
    from chalicelib.aws import dynamo
    from chalicelib.core.tx import NotStageable, Staging, Tx

    two = Tx(Ctx(principal())).update("a", dynamo.Update("t", {"k": 1}, set={"x": 1}))
    two.put("b", dynamo.Put("t", {"k": 2}))
    with pytest.raises(ValueError):
        two.commit_returning()
    staged = Ctx(principal(), unit_of_work=Staging().unit_of_work).tx()
    with pytest.raises(NotStageable):
        staged.update("a", dynamo.Update("t", {"k": 1}, set={"x": 1})).commit_returning()
