"""Who receives an event and what it looks like on the wire. Pure: no AWS here."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

# The client actions the gateway answers; anything else is ignored and logged.
PING = "ping"

# A connection opened with ?batch=1 gets the events of one stream batch in as few messages as fit:
# {"event": "system:batch", "data": {"events": [{"event", "data"}, ...]}} (one event alone goes as itself).
# Messages to it grow with stream batches, not with events (docs/SCALE.md, the first wall).
BATCH = "system:batch"
# Under API Gateway's 128 KB message limit with room for the envelope; an event over it goes alone
# (instance:log events are cut at ~100 KB, logs/rules.chunks).
BATCH_MESSAGE_BYTES = 96 * 1024
_BATCH_OPEN = b'{"event":"system:batch","data":{"events":['
_BATCH_CLOSE = b"]}}"


@dataclass(frozen=True)
class Connection:
    connection_id: str
    org_id: str
    endpoint: str
    agent_id: str | None = None  # set for agent keys: they see only their agent's events
    batch: bool = False  # opened with ?batch=1: a stream batch's events in system:batch messages


@dataclass(frozen=True)
class Event:
    event_id: str
    org_id: str
    name: str
    data: dict[str, Any]
    agent_id: str | None = None
    connection_id: str | None = None


def wire(name: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"event": name, "data": data}, separators=(",", ":")).encode()


def batch_messages(wires: list[bytes], limit: int = BATCH_MESSAGE_BYTES) -> list[tuple[bytes, int]]:
    """Consecutive event messages packed, in order, into system:batch messages of at most `limit` bytes:
    (message, how many events it carries). One event alone, or one too big to share, is its own message.
    """
    overhead = len(_BATCH_OPEN) + len(_BATCH_CLOSE) - 1  # -1: the first event has no comma before it
    groups: list[list[bytes]] = []
    size = limit
    for wire_bytes in wires:
        if size + 1 + len(wire_bytes) > limit:
            groups.append([])
            size = overhead
        groups[-1].append(wire_bytes)
        size += 1 + len(wire_bytes)
    return [(group[0] if len(group) == 1 else _BATCH_OPEN + b",".join(group) + _BATCH_CLOSE, len(group))
            for group in groups]


def wants_batches(query: dict[str, str] | None) -> bool:
    """?batch=1 (or true) on the connect URL."""
    return (query or {}).get("batch", "").lower() in ("1", "true")


def receives(connection: Connection, event: Event) -> bool:
    if event.org_id != connection.org_id:
        return False
    if event.connection_id is not None:
        return event.connection_id == connection.connection_id
    if connection.agent_id is not None:
        return event.agent_id == connection.agent_id
    return True


def plan(events: Iterable[Event], connections: Iterable[Connection]) -> dict[str, list[Event]]:
    """Per connection id, the events it receives, in stream order."""
    events = list(events)
    out: dict[str, list[Event]] = {}
    for connection in connections:
        mine = [e for e in events if receives(connection, e)]
        if mine:
            out[connection.connection_id] = mine
    return out


def parse_client_message(body: str | None) -> str | None:
    """The action of a client message, or None when it is not a JSON object with a string action."""
    try:
        message = json.loads(body or "")
    except ValueError:
        return None
    action = message.get("action") if isinstance(message, dict) else None
    return action if isinstance(action, str) else None
