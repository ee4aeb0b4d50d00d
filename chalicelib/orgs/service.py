"""Organizations and keys: creation, listing, revocation, and the root seed."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from chalicelib.agents import service as agents_service
from chalicelib.core import ids
from chalicelib.core.auth import Scope, new_key
from chalicelib.core.context import Ctx
from chalicelib.fanout import fanout
from chalicelib.core.errors import Forbidden, NotFound, ValidationError
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TxFailed
from chalicelib.orgs import models, store
from chalicelib.orgs.models import KeyCreated, KeyList, OrgCreated

log = logging.getLogger(__name__)


def create_org(ctx: Ctx, command: models.CreateOrgRequest) -> OrgCreated:
    principal = ctx.principal
    if principal is None or not (principal.root and principal.scope is Scope.ADMIN):
        raise Forbidden("only an admin key of the root organization may create organizations")
    name = command.name
    org_id = ids.new_id()
    api_key, key_item = new_key(org_id, Scope.ADMIN, f"{name} admin")
    tx = ctx.tx()
    tx.put("org", store.org_put(org_id, name))
    tx.put("key", store.key_item_put(key_item))
    tx.audit("org", org_id, "created", {"name": name})  # in the creating (root) organization's trail
    tx.commit()
    return OrgCreated(org_id=org_id, name=name, admin_key=api_key, created_at=key_item["createdAt"])


def create_key(ctx: Ctx, command: models.CreateKeyRequest) -> KeyCreated:
    c = command
    if c.scope == Scope.AGENT.value and not c.agent_id:
        raise ValidationError.field("agentId", "an agent key must name the agent it is bound to")
    if c.scope != Scope.AGENT.value and c.agent_id:
        raise ValidationError.field("agentId", "only agent keys are bound to an agent")
    if c.expires_at is not None and c.expires_at <= datetime.fromtimestamp(ctx.now(), timezone.utc):
        raise ValidationError.field("expiresAt", "must be in the future")
    expires = ctx.iso(c.expires_at.timestamp()) if c.expires_at is not None else None
    root = ctx.principal.root if ctx.principal is not None else False
    api_key, item = new_key(ctx.org_id, Scope(c.scope), c.name, c.agent_id, expires, root=root)
    tx = ctx.tx()
    if c.agent_id:  # an agent key names an agent of this organization: checked in the same commit
        agents_service.require_exists(tx, ctx.org_id, c.agent_id)
    tx.put("key", store.key_item_put(item))
    tx.audit("key", item["keyId"], "created", {"scope": c.scope, "agentId": c.agent_id})
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name == "agent":
            raise NotFound(f"no agent {c.agent_id}", [{"field": "agentId", "message": "no such agent"}]) from None
        raise
    return KeyCreated(**dict(store.key_from_item(item)), api_key=api_key)


def revoke_key(ctx: Ctx, key_id: str) -> None:
    tx = ctx.tx()
    tx.update("key", store.revoke_update(ctx.org_id, key_id))
    tx.audit("key", key_id, "revoked")
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name != "key":
            raise
        found = store.get_key(key_id)
        if not (found is not None and found[0] == ctx.org_id and found[1].revoked_at):
            raise NotFound(f"no key {key_id}") from None
        # already revoked: DELETE is idempotent (and closes what may still be open)
    # Revocation is at once, sockets included: REST fails from the commit on,
    # and every WebSocket opened with the key is closed now.
    fanout.close_opened_with(ctx.org_id, key_id=key_id)


def list_keys(ctx: Ctx, query: models.ListQuery) -> KeyList:
    scope = f"keys:{ctx.org_id}"
    keys = store.list_keys(ctx.org_id, query.limit, start_key(query.next_token, scope))
    return KeyList(items=keys.items, next_token=next_token(keys.last_key, scope))


def org_ids(ctx: Ctx) -> Iterator[str]:
    """Every organization's id (for schedules that visit each organization)."""
    return store.org_ids()


def seed_root(ctx: Ctx, admin_api_key: str | None) -> dict[str, Any]:
    """Make sure the root organization and an admin key exist (local stack, first deploy).

    With `admin_api_key` that exact value becomes (or stays) a root admin key;
    without it a new key is minted on every call, since stored keys cannot be read back.
    """
    org_id = store.root_org_id()
    if org_id is None:
        org_id = ids.new_id()
        tx = ctx.tx()
        tx.put("org", store.org_put(org_id, "root", root=True))
        tx.put("root", store.root_pointer_put(org_id))
        try:
            tx.commit()
        except TxFailed:  # another process seeded first
            org_id = store.root_org_id()
    assert org_id is not None
    api_key, item = new_key(org_id, Scope.ADMIN, "root admin", root=True, api_key=admin_api_key)
    tx = ctx.tx()
    tx.put("key", store.key_item_put(item))
    try:
        tx.commit()
    except TxFailed:
        pass  # that ADMIN_API_KEY was seeded before
    return {"orgId": org_id, "adminApiKey": api_key}


def root_org_id() -> str | None:
    """The root organization (the platform's own: schedules act for it)."""
    return store.root_org_id()
