"""Commands to agents: issue, list, ack, expire.

Issue: one transaction: the agent's active check, the command, its audit
event and the `command:issued` outbox event addressed to that agent (so the
fan-out delivers it to that agent's WebSocket only). Ack: the command is read
(GetItem), then one transaction moves it out of pending on the condition that
it is still pending and not past expiresAt, with its audit event and a
`command:acked` event for the organization (operators' sockets). A second
ack, or one that loses the race to another, answers the first outcome.
Expiry: the `commands_expire` schedule (every minute) moves pending commands
past expiresAt to expired; until it runs, reads and acks already treat them
as expired.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.agents import service as agents
from chalicelib.commands import models, rules, store
from chalicelib.commands.models import Command
from chalicelib.core import ids
from chalicelib.core.context import Ctx
from chalicelib.core.outcomes import commit_or_raise
from chalicelib.core.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TxFailed


@dataclass(frozen=True)
class IssueCommand:
    agent_id: str
    type: str
    payload: dict[str, Any]
    ttl_seconds: int = rules.DEFAULT_TTL_SECONDS
    priority: models.Priority = "normal"


@dataclass(frozen=True)
class ListCommands:
    agent_id: str
    status: str | None
    limit: int
    next_token: str | None


@dataclass(frozen=True)
class AckCommand:
    command_id: str
    status: str
    result: Any = None


def issue(ctx: Ctx, command: IssueCommand) -> Command:
    if len(json.dumps(command.payload, separators=(",", ":")).encode()) > rules.MAX_PAYLOAD_BYTES:
        raise ValidationError.field("payload", f"is over {rules.MAX_PAYLOAD_BYTES} bytes as JSON")
    now = ctx.now()
    issued = Command(org_id=ctx.org_id, command_id=ids.new_id(), agent_id=command.agent_id, type=command.type,
                     payload=command.payload, status=rules.PENDING, priority=command.priority,
                     ttl_seconds=command.ttl_seconds,
                     created_at=ctx.iso(now), expires_at=ctx.iso(now + command.ttl_seconds))
    tx = ctx.tx()
    agents.require_active(tx, ctx.org_id, command.agent_id)
    tx.put("command", store.put_new(issued))
    tx.audit("command", issued.command_id, "issued", {"agentId": command.agent_id, "type": command.type,
                                                      "priority": command.priority})
    tx.emit("command:issued", issued.event_data(), agent_id=command.agent_id)
    commit_or_raise(tx, agent=lambda: NotFound(f"agent {command.agent_id} not found or not active"))
    return issued


def list_for_agent(ctx: Ctx, command: ListCommands) -> models.CommandList:
    agents.require_known(ctx, command.agent_id)  # another org's agent: 404, never an empty list
    scope = f"commands:{ctx.org_id}:{command.agent_id}:{command.status or ''}"
    now_iso = ctx.iso()
    items, last = store.list_for_agent(ctx.org_id, command.agent_id, command.status, command.limit,
                                       start_key(command.next_token, scope), now_iso)
    return models.CommandList(items=[c.as_of(now_iso) for c in items], next_token=next_token(last, scope))


def get(ctx: Ctx, command_id: str) -> Command:
    return _load(ctx, command_id).as_of(ctx.iso())


def ack(ctx: Ctx, command: AckCommand) -> Command:
    if len(json.dumps(command.result, separators=(",", ":")).encode()) > rules.MAX_RESULT_BYTES:
        raise ValidationError.field("result", f"is over {rules.MAX_RESULT_BYTES} bytes as JSON")
    found = _load(ctx, command.command_id)
    principal = ctx.principal
    if principal is None or principal.agent_id != found.agent_id:
        raise Forbidden(f"only agent {found.agent_id} may ack this command")
    now_iso = ctx.iso()
    decision = rules.decide_ack(found.status, found.expires_at, now_iso)
    if decision is rules.AckDecision.REPLAY:
        return found.as_of(now_iso)
    if decision is rules.AckDecision.EXPIRED:
        raise InvalidTransition(f"command {found.command_id} expired at {found.expires_at}; it can no longer be acked")
    done = found.model_copy(update={"status": command.status, "acked_at": now_iso, "result": command.result})
    tx = ctx.tx()
    tx.update("command", store.leave_pending(found, command.status, now_iso, command.result, now_iso))
    tx.audit("command", found.command_id, command.status, {"agentId": found.agent_id, "type": found.type})
    tx.emit("command:acked", done.event_data())  # the organization's sockets (operators); not only the agent's
    try:
        tx.commit()
    except TxFailed:
        # Another ack won, or the command expired meanwhile: answer what it is now.
        again = _load(ctx, command.command_id)
        if rules.decide_ack(again.status, again.expires_at, ctx.iso()) is rules.AckDecision.REPLAY:
            return again.as_of(ctx.iso())
        raise InvalidTransition(f"command {found.command_id} expired at {found.expires_at}") from None
    return done


def expire_due(ctx: Ctx, max_commands: int = 1000) -> int:
    """Move pending commands past expiresAt to expired (the schedule's work); returns how many."""
    now_iso = ctx.iso()
    expired = 0
    start = None
    while expired < max_commands:
        due, start = store.due_for_expiry(now_iso, min(100, max_commands - expired), start)
        for command in due:
            org_ctx = ctx.for_org(command.org_id)
            tx = org_ctx.tx()
            tx.update("command", store.leave_pending(command, rules.EXPIRED, now_iso))
            tx.audit("command", command.command_id, "expired", {"agentId": command.agent_id,
                                                                "type": command.type})
            try:
                tx.commit()
                expired += 1
            except TxFailed:
                pass  # acked meanwhile
        if start is None:
            break
    return expired


def _load(ctx: Ctx, command_id: str) -> Command:
    found = store.get(ctx.org_id, command_id) if len(command_id) <= 64 else None
    if found is None:
        raise NotFound(f"command {command_id} not found")
    if ctx.principal is not None and ctx.principal.agent_id is not None and ctx.principal.agent_id != found.agent_id:
        raise NotFound(f"command {command_id} not found")  # another agent's command is not revealed
    return found
