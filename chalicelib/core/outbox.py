"""The transactional outbox: the item of an event that rides in the unit of work of its change.

`event_put(...)` is what `Tx.emit` adds to the commit, so an event exists if
and only if the change it describes committed. The outbox table's stream
carries each event to the fan-out (chalicelib/fanout/fanout.py); items expire
after `event_ttl_seconds` since nothing reads them afterwards.

It lives in core beside the audit trail because the unit of work (core/tx.py)
writes both for every domain: core must not import upward to reach it.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids
from chalicelib.core.config import settings


# A check of every event's data against the WebSocket contract (chalicelib/events/catalog.py's
# `validate`), installed by the test suite (tests/conftest.py) so a wrong payload fails at the
# emit site that built it. Core cannot import the catalog (it imports no domain package) and
# production does not pay for the check: the catalog's models are what the tests hold it to.
event_check: Callable[[str, dict[str, Any]], None] | None = None


def event_item(org_id: str, name: str, data: dict[str, Any], agent_id: str | None = None,
               connection_id: str | None = None) -> dict[str, Any]:
    """`agent_id`: the agent the event concerns (agent keys see only their own agent's events).
    `connection_id`: deliver to that connection only (system:connected)."""
    if event_check is not None:
        event_check(name, data)
    return {
        "id": ids.new_id(), "orgId": org_id, "event": name,
        # JSON text, not a map: event data is arbitrary JSON (floats, empty
        # strings, deep nesting) and is never queried, only forwarded.
        "data": json.dumps(data, separators=(",", ":"), default=str),
        "agentId": agent_id, "connectionId": connection_id, "at": clock.iso(),
        "ttl": int(time.time()) + settings().event_ttl_seconds,
    }


def event_put(org_id: str, name: str, data: dict[str, Any], agent_id: str | None = None,
              connection_id: str | None = None) -> dynamo.Put:
    return dynamo.Put(settings().outbox_table, event_item(org_id, name, data, agent_id, connection_id))


def item_put(item: dict[str, Any]) -> dynamo.Put:
    """The write of an event item built earlier with `event_item` (a bulk unit of work's events)."""
    return dynamo.Put(settings().outbox_table, item)
