"""chalicelib/instances/service.py on the fake unit of work (no moto): reads and pages as their routes declare."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden, NotFound
from chalicelib.core.paging import next_token
from chalicelib.instances import models, service as instances, store
from chalicelib.instances.models import Instance
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal

IID = "01J0000000000000000000000A"


def _instance(agent_id: str = "A1") -> Instance:
    return Instance(instance_id=IID, agent_id=agent_id, name="i", created_at="c")


def test_get_answers_the_declared_instance_404_when_missing_and_403_for_another_agents_key(monkeypatch):
    monkeypatch.setattr(store, "get", lambda org, iid: _instance() if iid == IID else None)
    body = assert_declared("GET", "/instances/{instanceId}", instances.get(fake_ctx(principal())[0], IID))
    assert body == {"instanceId": IID, "agentId": "A1", "name": "i", "createdAt": "c"}
    with pytest.raises(NotFound):
        instances.get(fake_ctx(principal())[0], "01J0000000000000000000000B")
    with pytest.raises(Forbidden):
        instances.get(fake_ctx(principal(Scope.AGENT, "A2"))[0], IID)


def test_list_pages_with_a_token_scoped_to_the_org_and_agent(monkeypatch):
    asked = []
    monkeypatch.setattr(store, "list_page", lambda org, agent, limit, start: asked.append((org, agent, limit))
                        or store.InstancePage([_instance()], {"PK": "p"}))
    page = instances.list_instances(fake_ctx(principal())[0], models.InstanceListQuery(agent_id="A1", limit=5))
    body = assert_declared("GET", "/instances", page)
    assert asked == [(ORG, "A1", 5)] and body["items"][0]["instanceId"] == IID
    assert page.next_token == next_token({"PK": "p"}, f"instances:{ORG}:A1")
