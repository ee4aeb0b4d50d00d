"""Commands to agents: keys and queries.

  PK     ORG#{org}#CMD#{commandId}           SK "CMD"         - the command (ack finds it by id alone)
  GSI1PK ORG#{org}#AGENT#{agent}#CMDS#{status} GSI1SK {id}     - one agent's commands in one status;
                                             pending: GSI1SK {rank}#{id} (rules.pending_sort_key),
                                             so the pending list is highest priority, then oldest, first
  GSI2PK ORG#{org}#AGENT#{agent}#CMDS        GSI2SK {id}       - all of one agent's commands
  GSI3PK CMDS#PENDING                        GSI3SK {expiresAt}#{org}#{id}
                                             - sparse: only pending commands, by expiry, for the sweep

Command ids are ULIDs, so each list is oldest first (the pending one within
a priority). Leaving `pending` moves GSI1 to the new status (sort key: the id)
and removes the GSI3 attributes. A command stored before priorities existed
has no `priority` (normal) and a bare-id sort key, which sorts after high and
before normal ("0#" < "01..." < "1#"): it is older than every command issued
since, so it stays in its place among the normal ones.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.commands import rules
from chalicelib.commands.models import Command
from chalicelib.core.config import settings

SWEEP_PARTITION = "CMDS#PENDING"


def _table() -> str:
    return settings().main_table


def key(org_id: str, command_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#CMD#{command_id}", "SK": "CMD"}


def _status_partition(org_id: str, agent_id: str, status: str) -> str:
    return f"ORG#{org_id}#AGENT#{agent_id}#CMDS#{status}"


def _item(command: Command) -> dict[str, Any]:
    c = command
    item = {
        **key(c.org_id, c.command_id), "type": "command",
        "orgId": c.org_id, "commandId": c.command_id, "agentId": c.agent_id,
        "commandType": c.type, "payload": json.dumps(c.payload, separators=(",", ":")),
        "status": c.status, "priority": c.priority, "ttlSeconds": c.ttl_seconds, "createdAt": c.created_at,
        "expiresAt": c.expires_at, "ackedAt": c.acked_at,
        "result": json.dumps(c.result, separators=(",", ":")) if c.result is not None else None,
        "GSI1PK": _status_partition(c.org_id, c.agent_id, c.status),
        "GSI1SK": rules.pending_sort_key(c.priority, c.command_id) if c.status == rules.PENDING else c.command_id,
        "GSI2PK": f"ORG#{c.org_id}#AGENT#{c.agent_id}#CMDS", "GSI2SK": c.command_id,
    }
    if c.status == rules.PENDING:
        item["GSI3PK"], item["GSI3SK"] = SWEEP_PARTITION, f"{c.expires_at}#{c.org_id}#{c.command_id}"
    return item


def _entity(item: dict[str, Any]) -> Command:
    return Command(org_id=item["orgId"], command_id=item["commandId"], agent_id=item["agentId"],
                   type=item["commandType"], payload=json.loads(item["payload"]), status=item["status"],
                   priority=item.get("priority") or "normal",
                   ttl_seconds=int(item["ttlSeconds"]), created_at=item["createdAt"], expires_at=item["expiresAt"],
                   acked_at=item.get("ackedAt"),
                   result=json.loads(item["result"]) if item.get("result") is not None else None)


def put_new(command: Command) -> dynamo.Put:
    return dynamo.Put(_table(), _item(command), condition="attribute_not_exists(PK)")


def get(org_id: str, command_id: str) -> Command | None:
    item = dynamo.get(_table(), key(org_id, command_id), consistent=True)
    return _entity(item) if item else None


def leave_pending(command: Command, status: str, now_iso: str, result: Any = None,
                  acked_at: str | None = None) -> dynamo.Update:
    """pending -> status, only while pending; an ack also only while not past expiresAt."""
    values: dict[str, Any] = {":pending": rules.PENDING}
    condition = "#st = :pending"
    if status in rules.OUTCOMES:
        condition += " AND expiresAt > :now"
        values[":now"] = now_iso
    return dynamo.Update(
        _table(), key(command.org_id, command.command_id),
        set={"status": status, "ackedAt": acked_at,
             "result": json.dumps(result, separators=(",", ":")) if result is not None else None,
             "GSI1PK": _status_partition(command.org_id, command.agent_id, status), "GSI1SK": command.command_id},
        remove=("GSI3PK", "GSI3SK"),
        condition=condition, names={"#st": "status"}, values=values)


def list_for_agent(org_id: str, agent_id: str, status: str | None, limit: int, start_key: dict[str, Any] | None,
                   now_iso: str) -> tuple[list[Command], dict[str, Any] | None]:
    if status is None:
        page = dynamo.query(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#AGENT#{agent_id}#CMDS"},
                            index="GSI2", limit=limit, start_key=start_key)
        return [_entity(i) for i in page.items], page.last_key
    # Pending past expiresAt but not swept yet is expired already: the pending list skips it (the
    # sweep runs every minute, so the filter passes over at most a minute's worth of them).
    items: list[Command] = []
    start = start_key
    while True:
        page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": _status_partition(org_id, agent_id, status)},
                            index="GSI1", limit=limit - len(items), start_key=start)
        items.extend(c for c in map(_entity, page.items)
                     if rules.effective_status(c.status, c.expires_at, now_iso) == status)
        start = page.last_key
        if start is None or len(items) >= limit:
            return items, start


def due_for_expiry(now_iso: str, limit: int,
                   start_key: dict[str, Any] | None = None) -> tuple[list[Command], dict[str, Any] | None]:
    page = dynamo.query(_table(), "GSI3PK = :pk AND GSI3SK < :now", {":pk": SWEEP_PARTITION, ":now": now_iso},
                        index="GSI3", limit=limit, start_key=start_key)
    return [_entity(i) for i in page.items], page.last_key
