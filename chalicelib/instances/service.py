"""Instances: create, list, get, and the ownership rule other domains (logs) rely on.

Ownership: an agent key sees and acts on its own agent's instances only
(another agent's instance: 403, audited); operator and admin keys act on
every instance of their org. Instance ids are ULIDs: anything else cannot
exist and is 404 without a read.
"""
from __future__ import annotations

import re

from chalicelib.agents import service as agents
from chalicelib.aws import dynamo
from chalicelib.core import audit, ids
from chalicelib.core.api import Call, page_start
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden, NotFound, ValidationError
from chalicelib.instances import store

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def create(call: Call, agent_id: str, name: str, game_type: str | None, metadata: dict | None) -> dict:
    """One TransactWriteItems: the owning agent must exist in this org and be active
    (the agents domain's ConditionCheck, no extra read), the instance, its audit event."""
    instance_id = ids.new_id()
    item = store.new_item(call.org_id, instance_id, agent_id, name, game_type, metadata)
    try:
        dynamo.transact([
            agents.active_check(call.org_id, agent_id),
            store.put(item),
            audit.audit_put(call.org_id, "instance", instance_id, "created", call.actor, call.trace_id,
                            {"agentId": agent_id, "name": name}),
        ])
    except dynamo.ConditionFailed as failed:
        if failed.index == 0:
            raise ValidationError.field("agentId", f"no active agent {agent_id} in this organization") from None
        raise
    return store.public(item)


def load(call: Call, instance_id: str) -> dict:
    """The instance item, if it exists in the caller's org and the caller may act on it."""
    if not ULID.fullmatch(instance_id):
        raise NotFound(f"no instance {instance_id[:64]}")
    item = store.get(call.org_id, instance_id)
    if item is None:
        raise NotFound(f"no instance {instance_id}")
    principal = call.principal
    if principal is not None and principal.scope is Scope.AGENT and principal.agent_id != item["agentId"]:
        raise Forbidden("an agent key may only act on its own agent's instances")
    return item


def get(call: Call, instance_id: str) -> dict:
    return store.public(load(call, instance_id))


def list_instances(call: Call, agent_id: str | None, limit: int, next_token: str | None) -> dict:
    principal = call.principal
    if principal is not None and principal.scope is Scope.AGENT:
        if agent_id is not None and agent_id != principal.agent_id:
            raise Forbidden("an agent key may only list its own agent's instances")
        agent_id = principal.agent_id
    scope = f"instances:{call.org_id}:{agent_id or '*'}"
    start = page_start(next_token, scope)
    page = store.list_page(call.org_id, agent_id, limit, start)
    return {"items": [store.public(i) for i in page.items], "nextToken": dynamo.encode_token(page.last_key, scope)}
