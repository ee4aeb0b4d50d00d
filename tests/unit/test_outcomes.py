"""chalicelib/core/outcomes.py: a named write's failed condition turned into the domain's error."""
from __future__ import annotations

import pytest

from chalicelib.core.errors import Conflict
from chalicelib.core.outcomes import commit_or_raise
from chalicelib.core.tx import TxFailed
from chalicelib.aws import dynamo
from tests.unit.fakes import fake_ctx, principal


def test_commit_or_raise_maps_the_named_write_and_reraises_the_others():
    ctx, ledger = fake_ctx(principal())

    def tx():
        t = ctx.tx()
        t.put("agent", dynamo.Put("t", {"PK": "a"}))
        t.put("item", dynamo.Put("t", {"PK": "b"}))
        return t

    commit_or_raise(tx(), agent=lambda: Conflict("inactive"))
    assert ledger.names() == ["agent", "item"]
    ledger.fail["agent"] = 1
    with pytest.raises(Conflict, match="inactive"):
        commit_or_raise(tx(), agent=lambda: Conflict("inactive"))
    ledger.fail["item"] = 1
    with pytest.raises(TxFailed) as failed:
        commit_or_raise(tx(), agent=lambda: Conflict("inactive"))
    assert failed.value.name == "item"
