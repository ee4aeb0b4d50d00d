"""Who receives an event and what it looks like on the wire. Pure: no AWS here."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

# The client actions the gateway answers; anything else is ignored and logged.
PING = "ping"


@dataclass(frozen=True)
class Connection:
    connection_id: str
    org_id: str
    endpoint: str
    agent_id: str | None = None  # set for agent keys: they see only their agent's events


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
