"""Commands to agents: keys and queries.

  PK     ORG#{org}#CMD#{commandId}           SK "CMD"         - the command (ack finds it by id alone)
  GSI1PK ORG#{org}#AGENT#{agent}#CMDS#{status} GSI1SK {id}     - one agent's commands in one status
  GSI2PK ORG#{org}#AGENT#{agent}#CMDS        GSI2SK {id}       - all of one agent's commands
  GSI3PK CMDS#PENDING                        GSI3SK {expiresAt}#{org}#{id}
                                             - sparse: only pending commands, by expiry, for the sweep

Command ids are ULIDs, so each list is oldest first. Leaving `pending`
moves GSI1 to the new status and removes the GSI3 attributes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.commands import rules
from chalicelib.core.config import settings

SWEEP_PARTITION = "CMDS#PENDING"


def _table() -> str:
    return settings().main_table


def key(org_id: str, command_id: str) -> dict:
    return {"PK": f"ORG#{org_id}#CMD#{command_id}", "SK": "CMD"}


def _status_partition(org_id: str, agent_id: str, status: str) -> str:
    return f"ORG#{org_id}#AGENT#{agent_id}#CMDS#{status}"


@dataclass(frozen=True)
class Command:
    org_id: str
    command_id: str
    agent_id: str
    type: str
    payload: dict[str, Any]
    status: str
    ttl_seconds: int
    created_at: str
    expires_at: str
    acked_at: str | None = None
    result: Any = None

    def to_item(self) -> dict:
        item = {
            **key(self.org_id, self.command_id), "type": "command",
            "orgId": self.org_id, "commandId": self.command_id, "agentId": self.agent_id,
            "commandType": self.type, "payload": json.dumps(self.payload, separators=(",", ":")),
            "status": self.status, "ttlSeconds": self.ttl_seconds, "createdAt": self.created_at,
            "expiresAt": self.expires_at, "ackedAt": self.acked_at,
            "result": json.dumps(self.result, separators=(",", ":")) if self.result is not None else None,
            "GSI1PK": _status_partition(self.org_id, self.agent_id, self.status), "GSI1SK": self.command_id,
            "GSI2PK": f"ORG#{self.org_id}#AGENT#{self.agent_id}#CMDS", "GSI2SK": self.command_id,
        }
        if self.status == rules.PENDING:
            item["GSI3PK"], item["GSI3SK"] = SWEEP_PARTITION, f"{self.expires_at}#{self.org_id}#{self.command_id}"
        return item

    @classmethod
    def from_item(cls, item: dict) -> "Command":
        return cls(item["orgId"], item["commandId"], item["agentId"], item["commandType"],
                   json.loads(item["payload"]), item["status"], int(item["ttlSeconds"]), item["createdAt"],
                   item["expiresAt"], item.get("ackedAt"),
                   json.loads(item["result"]) if item.get("result") is not None else None)

    def public(self, now_iso: str) -> dict[str, Any]:
        out = {"commandId": self.command_id, "agentId": self.agent_id, "type": self.type, "payload": self.payload,
               "status": rules.effective_status(self.status, self.expires_at, now_iso),
               "ttlSeconds": self.ttl_seconds, "createdAt": self.created_at, "expiresAt": self.expires_at}
        if self.acked_at is not None:
            out["ackedAt"] = self.acked_at
        if self.result is not None:
            out["result"] = self.result
        return out


def put_new(command: Command) -> dynamo.Put:
    return dynamo.Put(_table(), command.to_item(), condition="attribute_not_exists(PK)")


def get(org_id: str, command_id: str) -> Command | None:
    item = dynamo.get(_table(), key(org_id, command_id), consistent=True)
    return Command.from_item(item) if item else None


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
             "GSI1PK": _status_partition(command.org_id, command.agent_id, status)},
        remove=("GSI3PK", "GSI3SK"),
        condition=condition, names={"#st": "status"}, values=values)


def list_for_agent(org_id: str, agent_id: str, status: str | None, limit: int, start_key: dict | None,
                   now_iso: str) -> tuple[list[Command], dict | None]:
    if status is None:
        page = dynamo.query(_table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#AGENT#{agent_id}#CMDS"},
                            index="GSI2", limit=limit, start_key=start_key)
        return [Command.from_item(i) for i in page.items], page.last_key
    # Pending past expiresAt but not swept yet is expired already: the pending list skips it (the
    # sweep runs every minute, so the filter passes over at most a minute's worth of them).
    items: list[Command] = []
    start = start_key
    while True:
        page = dynamo.query(_table(), "GSI1PK = :pk", {":pk": _status_partition(org_id, agent_id, status)},
                            index="GSI1", limit=limit - len(items), start_key=start)
        items.extend(c for c in map(Command.from_item, page.items)
                     if rules.effective_status(c.status, c.expires_at, now_iso) == status)
        start = page.last_key
        if start is None or len(items) >= limit:
            return items, start


def due_for_expiry(now_iso: str, limit: int, start_key: dict | None = None) -> tuple[list[Command], dict | None]:
    page = dynamo.query(_table(), "GSI3PK = :pk AND GSI3SK < :now", {":pk": SWEEP_PARTITION, ":now": now_iso},
                        index="GSI3", limit=limit, start_key=start_key)
    return [Command.from_item(i) for i in page.items], page.last_key
