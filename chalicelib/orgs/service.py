"""Organizations and keys: creation, listing, revocation, and the root seed."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from chalicelib.agents import service as agents_service
from chalicelib.aws import dynamo
from chalicelib.fanout import fanout
from chalicelib.core import audit, clock, ids
from chalicelib.core.auth import Principal, Scope, new_key
from chalicelib.core.errors import Forbidden, NotFound, ValidationError
from chalicelib.orgs import store

log = logging.getLogger(__name__)


def create_org(principal: Principal, name: str, trace_id: str | None = None) -> dict:
    if not (principal.root and principal.scope is Scope.ADMIN):
        raise Forbidden("only an admin key of the root organization may create organizations")
    org_id = ids.new_id()
    api_key, key_item = new_key(org_id, Scope.ADMIN, f"{name} admin")
    dynamo.transact([
        store.org_put(org_id, name),
        store.key_item_put(key_item),
        audit.audit_put(principal.org_id, "org", org_id, "created", principal.actor, trace_id,
                        {"name": name}),
    ])
    return {"orgId": org_id, "name": name, "adminKey": api_key, "createdAt": key_item["createdAt"]}


def create_key(principal: Principal, name: str, scope: str, agent_id: str | None,
               expires_at: datetime | None, now: datetime, trace_id: str | None = None) -> dict:
    if scope == Scope.AGENT.value and not agent_id:
        raise ValidationError.field("agentId", "an agent key must name the agent it is bound to")
    if scope != Scope.AGENT.value and agent_id:
        raise ValidationError.field("agentId", "only agent keys are bound to an agent")
    if expires_at is not None and expires_at <= now:
        raise ValidationError.field("expiresAt", "must be in the future")
    expires = clock.iso(expires_at.timestamp()) if expires_at is not None else None
    api_key, item = new_key(principal.org_id, Scope(scope), name, agent_id, expires, root=principal.root)
    # An agent key names an agent of this organization: checked in the same commit.
    agent_check = [agents_service.exists_check(principal.org_id, agent_id)] if agent_id else []
    try:
        dynamo.transact([
            *agent_check,
            store.key_item_put(item),
            audit.audit_put(principal.org_id, "key", item["keyId"], "created", principal.actor, trace_id,
                            {"scope": scope, "agentId": agent_id}),
        ])
    except dynamo.ConditionFailed as failed:
        if agent_check and failed.index == 0:
            raise NotFound(f"no agent {agent_id}", [{"field": "agentId", "message": "no such agent"}]) from None
        raise
    return {**_key_info(item), "apiKey": api_key}


def revoke_key(principal: Principal, key_id: str, trace_id: str | None = None) -> None:
    try:
        dynamo.transact([
            store.revoke_update(principal.org_id, key_id),
            audit.audit_put(principal.org_id, "key", key_id, "revoked", principal.actor, trace_id),
        ])
    except dynamo.ConditionFailed:
        item = store.get_key(key_id)
        if not (item and item.get("orgId") == principal.org_id and item.get("revokedAt")):
            raise NotFound(f"no key {key_id}") from None
        # already revoked: DELETE is idempotent (and closes what may still be open)
    # Revocation is at once, sockets included: REST fails from the commit on,
    # and every WebSocket opened with the key is closed now.
    fanout.close_opened_with(principal.org_id, key_id=key_id)


def _key_info(item: dict) -> dict:
    return {k: item.get(k) for k in ("keyId", "name", "scope", "agentId", "expiresAt", "revokedAt", "createdAt")}


def key_infos(items: list[dict]) -> list[dict]:
    return [_key_info(i) for i in items]


def org_ids() -> Iterator[str]:
    """Every organization's id (for schedules that visit each organization)."""
    return store.org_ids()


def seed_root(admin_api_key: str | None) -> dict:
    """Make sure the root organization and an admin key exist (local stack, first deploy).

    With `admin_api_key` that exact value becomes (or stays) a root admin key;
    without it a new key is minted on every call, since stored keys cannot be read back.
    """
    org_id = store.root_org_id()
    if org_id is None:
        org_id = ids.new_id()
        try:
            dynamo.transact([store.org_put(org_id, "root", root=True), store.root_pointer_put(org_id)])
        except dynamo.ConditionFailed:  # another process seeded first
            org_id = store.root_org_id()
    api_key, item = new_key(org_id, Scope.ADMIN, "root admin", root=True, api_key=admin_api_key)
    try:
        dynamo.put(store.key_item_put(item))
    except dynamo.ConditionFailed:
        pass  # that ADMIN_API_KEY was seeded before
    return {"orgId": org_id, "adminApiKey": api_key}


def root_org_id() -> str | None:
    """The root organization (the platform's own: schedules act for it)."""
    return store.root_org_id()
