"""The transactional outbox.

A domain puts `event_put(...)` into the same TransactWriteItems as its state
change, so an event exists if and only if the change committed. The outbox
table's stream carries each event to the fan-out (chalicelib/fanout/fanout.py);
items expire after EVENT_TTL_SECONDS since nothing reads them afterwards.
"""
from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids
from chalicelib.core.config import settings


def event_item(org_id: str, name: str, data: dict[str, Any], agent_id: str | None = None,
               connection_id: str | None = None) -> dict:
    """`agent_id`: the agent the event concerns (agent keys see only their own agent's events).
    `connection_id`: deliver to that connection only (system:connected)."""
    return {
        "id": ids.new_id(), "orgId": org_id, "event": name,
        # JSON text, not a map: event data is arbitrary JSON (floats, empty
        # strings, deep nesting) and is never queried, only forwarded.
        "data": json.dumps(data, separators=(",", ":"), default=str),
        "agentId": agent_id, "connectionId": connection_id, "at": clock.iso(),
        "ttl": int(time.time()) + settings().event_ttl_seconds,
    }


def event_put(*args: Any, **kwargs: Any) -> dynamo.Put:
    return dynamo.Put(settings().outbox_table, event_item(*args, **kwargs))


def emit(*args: Any, **kwargs: Any) -> None:
    """An event with no state change beside it (one PutItem)."""
    dynamo.put(event_put(*args, **kwargs))


def emit_many(items: list[dict]) -> None:
    """Events built with `event_item`, written with no state change beside them (BatchWriteItem, 25 per call)."""
    dynamo.batch_put(settings().outbox_table, items)
