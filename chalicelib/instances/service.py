"""Instances: create, list, get, and the ownership rule other domains (logs) rely on.

Ownership: an agent key sees and acts on its own agent's instances only
(another agent's instance: 403, audited); operator and admin keys act on
every instance of their org. Instance ids are ULIDs: anything else cannot
exist and is 404 without a read.
"""
from __future__ import annotations

import re

from chalicelib.agents import service as agents
from chalicelib.core import ids
from chalicelib.core.context import Ctx
from chalicelib.core.errors import NotFound, ValidationError
from chalicelib.core.paging import Page, page, start_key
from chalicelib.core.tx import TxFailed
from chalicelib.instances import models, store
from chalicelib.instances.store import Instance

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def view(instance: Instance) -> models.Instance:
    return models.Instance(instance_id=instance.instance_id, agent_id=instance.agent_id, name=instance.name,
                           game_type=instance.game_type, metadata=instance.metadata,
                           created_at=instance.created_at)


def create(ctx: Ctx, command: models.CreateInstanceRequest) -> models.Instance:
    """One TransactWriteItems: the owning agent must exist in this org and be active
    (the agents domain's ConditionCheck, no extra read), the instance, its audit event."""
    c = command
    instance = Instance(org_id=ctx.org_id, instance_id=ids.new_id(), agent_id=c.agent_id, name=c.name,
                        game_type=c.game_type, metadata=c.metadata, created_at=ctx.iso())
    tx = ctx.tx()
    agents.require_active(tx, ctx.org_id, c.agent_id)
    tx.put("instance", store.put(instance))
    tx.audit("instance", instance.instance_id, "created", {"agentId": c.agent_id, "name": c.name})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "agent":
            raise ValidationError.field("agentId", f"no active agent {c.agent_id} in this organization") from None
        raise
    return view(instance)


def load(ctx: Ctx, instance_id: str) -> Instance:
    """The instance, if it exists in the caller's org and the caller may act on it."""
    if not ULID.fullmatch(instance_id):
        raise NotFound(f"no instance {instance_id[:64]}")
    instance = store.get(ctx.org_id, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    ctx.require_agent(instance.agent_id)
    return instance


def get(ctx: Ctx, instance_id: str) -> models.Instance:
    return view(load(ctx, instance_id))


def list_instances(ctx: Ctx, query: models.InstanceListQuery) -> Page[models.Instance]:
    agent_id = ctx.agent_filter(query.agent_id)
    scope = f"instances:{ctx.org_id}:{agent_id or '*'}"
    found = store.list_page(ctx.org_id, agent_id, query.limit, start_key(query.next_token, scope))
    return page(found.items, found.last_key, scope, view)
