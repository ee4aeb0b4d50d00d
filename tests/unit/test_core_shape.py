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
    tx.emit("thing:created", {"id": "T1"}, agent_id="A1")
    tx.commit()
    names = ledger.names()
    assert names[0] == "agent" and names[1] == "audit:thing:T1:created" and names[2].endswith("thing:created")
    assert ledger.audits()[0]["actor"] == "key:01KEY000000000000000000000"
    assert ledger.audits()[0]["traceId"] == "trace-1"
    assert ledger.events() == [("thing:created", {"id": "T1"})]
