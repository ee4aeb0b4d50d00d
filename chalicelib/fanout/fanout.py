"""From the outbox stream to WebSocket connections.

One stream batch: load the connections of each org in it once, work out who
receives what (rules.plan), then send concurrently, one task per connection so
each connection gets its events in order. A connection that answers 410 Gone
is deleted at once. Delivery is at most once per batch: a failed post is
logged, not retried by failing the batch (that would resend to every other
connection); clients catch up over REST after reconnecting.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable

from chalicelib.aws import websocket
from chalicelib.fanout import rules, store

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="fanout")

# API Gateway opens a connection only when $connect returns, and the stream can
# deliver system:connected a moment before that: retry that one event briefly.
CONNECTED_RETRY_DELAYS = (0.1, 0.3, 0.6)


@dataclass
class FanoutResult:
    sent: int = 0
    gone: list[str] = field(default_factory=list)
    failed: int = 0


def event_from_image(image: dict) -> rules.Event:
    return rules.Event(image["id"], image["orgId"], image["event"], json.loads(image.get("data") or "{}"),
                       image.get("agentId"), image.get("connectionId"))


def deliver(events: Iterable[rules.Event]) -> FanoutResult:
    events = list(events)
    connections: dict[str, rules.Connection] = {}
    for org_id in {e.org_id for e in events if e.connection_id is None}:
        connections.update((c.connection_id, c) for c in store.of_org(org_id))
    for event in events:
        if event.connection_id and event.connection_id not in connections:
            found = store.get(event.connection_id)
            if found:
                connections[found.connection_id] = found
    plan = rules.plan(events, connections.values())
    result = FanoutResult()
    futures = {cid: _pool.submit(_send_all, connections[cid], evs) for cid, evs in plan.items()}
    for cid, future in futures.items():
        try:
            sent, gone = future.result()
        except Exception:  # noqa: BLE001 - one broken connection must not stop the others
            log.exception("sending to %s failed", cid)
            result.failed += 1
            continue
        result.sent += sent
        if gone:
            result.gone.append(cid)
            store.remove(cid)
    return result


def _send_all(connection: rules.Connection, events: list[rules.Event]) -> tuple[int, bool]:
    sent = 0
    for event in events:
        if not _send(connection, event):
            return sent, True
        sent += 1
    return sent, False


def _send(connection: rules.Connection, event: rules.Event) -> bool:
    message = rules.wire(event.name, event.data)
    if websocket.post(connection.endpoint, connection.connection_id, message):
        return True
    if event.name == "system:connected":
        for delay in CONNECTED_RETRY_DELAYS:
            time.sleep(delay)
            if websocket.post(connection.endpoint, connection.connection_id, message):
                return True
    return False
