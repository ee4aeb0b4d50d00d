"""chalicelib/orgs/service.py on the fake unit of work (no moto): keys created, bound and audited in one commit."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import NotFound, ValidationError
from chalicelib.orgs import models, service as orgs
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal


def test_an_agent_key_commits_the_agents_check_the_key_and_its_audit_together():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    created = orgs.create_key(ctx, models.CreateKeyRequest(name="k", scope="agent", agent_id="A1"))
    body = assert_declared("POST", "/keys", created)
    assert body["apiKey"] and body["scope"] == "agent" and body["agentId"] == "A1" and "orgId" not in body
    names = ledger.names()
    assert names[:2] == ["agent", "key"] and names[2].startswith("audit:key:")
    key_item = ledger.committed[-1]["key"].item
    assert key_item["orgId"] == ORG and body["apiKey"] not in str(key_item)  # the key itself is never stored


def test_an_agent_key_for_an_agent_the_org_lacks_is_404_naming_agent_id():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    ledger.fail["agent"] = 1
    with pytest.raises(NotFound) as e:
        orgs.create_key(ctx, models.CreateKeyRequest(name="k", scope="agent", agent_id="A9"))
    assert e.value.details == [{"field": "agentId", "message": "no such agent"}] and not ledger.committed


def test_an_operator_key_names_no_agent_and_needs_no_check():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    with pytest.raises(ValidationError):
        orgs.create_key(ctx, models.CreateKeyRequest(name="k", scope="operator", agent_id="A1"))
    orgs.create_key(ctx, models.CreateKeyRequest(name="k", scope="operator"))
    assert "agent" not in ledger.names() and "key" in ledger.names()
