"""From the outbox stream to WebSocket connections.

One stream batch: the connections of each org in it (cached, below), work out
who receives what (rules.plan), then send concurrently, one task per
connection so each connection gets its events in order: one message per
event, or for a connection opened with ?batch=1 as few system:batch messages
as fit (rules.batch_messages; system:connected always alone and first). A
connection that answers 410 Gone is deleted at once. Delivery is at most once
per batch: a failed post is logged, not retried by failing the batch (that
would resend to every other connection); clients catch up over REST after
reconnecting.

The connection list of an org is cached in the warm Lambda, checked per batch
by one strongly consistent GetItem of the org's connection-list version
(store.connections_version; every $connect writes a new one after its commit)
instead of a Query that reads every connection item of the org. A cached list
is used only while the version is unchanged, no older than
CACHE_MAX_AGE_SECONDS, and read at least SETTLE_SECONDS after the version
changed (the index the list is read from lags the base table: a list read
sooner may miss the newest connection, so it is read again next batch). A
closed connection stays in a cached list until its first failed send removes
it (as the contract says: removed on the first failed send), in this Lambda
and, by deleting its item, for every later list.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

from chalicelib.core import clock
from chalicelib.core.context import Ctx
from chalicelib.core.tx import TxFailed
from chalicelib.fanout import adapters, rules, store

log = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="fanout")

# API Gateway opens a connection only when $connect returns, and the stream can
# deliver system:connected a moment before that: retry that one event briefly.
CONNECTED_RETRY_DELAYS = (0.1, 0.3, 0.6)


# How long a cached connection list may be used without reading it again, whatever its version says
# (a connection item written without a version change, e.g. by hand, is reached within this).
CACHE_MAX_AGE_SECONDS = 60.0
# A list read sooner than this after its version changed may lack the newest connection (index lag).
SETTLE_SECONDS = 2.0


@dataclass
class _CachedList:
    version: str | None
    connections: dict[str, tuple[rules.Connection, int]]  # id -> (connection, its TTL in epoch seconds)
    read_at: float        # time.monotonic()
    settled: bool         # read SETTLE_SECONDS or more after the version changed


_cached: dict[str, _CachedList] = {}
_cached_lock = threading.Lock()


def forget_cached_connections() -> None:
    """Drop every cached connection list (a cold Lambda; tests)."""
    with _cached_lock:
        _cached.clear()


def connections_of(org_id: str) -> list[rules.Connection]:
    """The org's open connections: the cached list while its version holds, else a fresh Query.

    Either way a connection past its TTL is left out (as the Query leaves it out): the TTL may be
    the expiry of the credential the socket was opened with, and nothing is sent after it.
    """
    found = store.connections_version(org_id)
    version, changed_at = found if found else (None, 0.0)
    with _cached_lock:
        cached = _cached.get(org_id)
        if not (cached is not None and cached.version == version and cached.settled
                and time.monotonic() - cached.read_at < CACHE_MAX_AGE_SECONDS):
            cached = None
    if cached is None:
        read_at = time.monotonic()
        listed = {c.connection_id: (c, ttl) for c, ttl in store.of_org(org_id)}
        cached = _CachedList(version, listed, read_at, clock.now() - changed_at >= SETTLE_SECONDS)
        with _cached_lock:
            _cached[org_id] = cached
    now = clock.now()
    with _cached_lock:
        return [c for c, ttl in cached.connections.values() if ttl > now]


def _uncache(org_id: str, connection_id: str) -> None:
    with _cached_lock:
        cached = _cached.get(org_id)
        if cached is not None:
            cached.connections.pop(connection_id, None)


@dataclass
class FanoutResult:
    sent: int = 0     # events delivered (a system:batch message carries several)
    posts: int = 0    # management API posts: what API Gateway counts
    gone: list[str] = field(default_factory=list)
    failed: int = 0


def event_from_image(image: dict[str, Any]) -> rules.Event:
    return rules.Event(image["id"], image["orgId"], image["event"], json.loads(image.get("data") or "{}"),
                       image.get("agentId"), image.get("connectionId"))


# --- the connection item's writes (through the unit of work; the fan-out acts as "system") ---

def claim_greeting(ctx: Ctx, connection_id: str) -> str | None:
    """Claim sending system:connected. None when claimed now, else the state someone else left."""
    tx = ctx.tx()
    tx.update("greeting", store.greeting_claim(connection_id))
    try:
        tx.commit()
        return None
    except TxFailed as failed:
        if failed.item is None:  # gone, or moto without ALL_OLD: read it
            return store.greeting_state(connection_id) or store.GREETING_SENT
        return store.greeting_of(failed.item)


def mark_greeted(ctx: Ctx, connection_id: str) -> None:
    tx = ctx.tx()
    tx.update("greeting", store.greeting_sent(connection_id))
    try:
        tx.commit()
    except TxFailed:
        pass  # disconnected meanwhile


def forget(ctx: Ctx, connection_id: str) -> None:
    """Delete a connection's item ($disconnect, 410 Gone, a closed socket)."""
    tx = ctx.tx()
    tx.delete("connection", store.delete(connection_id))
    tx.commit()


def deliver(events: Iterable[rules.Event], ctx: Ctx | None = None) -> FanoutResult:
    ctx = ctx if ctx is not None else Ctx.system()
    events = list(events)
    connections: dict[str, rules.Connection] = {}
    for org_id in {e.org_id for e in events if e.connection_id is None}:
        connections.update((c.connection_id, c) for c in connections_of(org_id))
    for event in events:
        if event.connection_id and event.connection_id not in connections:
            found = store.get(event.connection_id)
            if found:
                connections[found.connection_id] = found
    plan = rules.plan(events, connections.values())
    result = FanoutResult()
    # Each event's message is the same bytes for every connection: encode it once, not once per connection.
    wires = {event.event_id: rules.wire(event.name, event.data) for event in events}
    futures = {cid: _pool.submit(_send_all, ctx, connections[cid], evs, wires) for cid, evs in plan.items()}
    for cid, future in futures.items():
        try:
            sent, posted, gone = future.result()
        except Exception:  # noqa: BLE001 - one broken connection must not stop the others
            log.exception("sending to %s failed", cid)
            result.failed += 1
            continue
        result.sent += sent
        result.posts += posted
        if gone:
            result.gone.append(cid)
            _uncache(connections[cid].org_id, cid)
            forget(ctx, cid)
    return result


def _send_all(ctx: Ctx, connection: rules.Connection, events: list[rules.Event],
              wires: dict[str, bytes]) -> tuple[int, int, bool]:
    """Send one connection its events in order: (events delivered, messages posted, gone).

    A batched connection gets each run of events between greetings packed into system:batch messages.
    """
    sent = posted = 0
    run: list[rules.Event] = []
    for event in events:
        if connection.batch and event.name != "system:connected":
            run.append(event)
            continue
        if run:
            for message, count in rules.batch_messages([wires[e.event_id] for e in run]):
                posted += 1
                if not adapters.post(connection.endpoint, connection.connection_id, message):
                    return sent, posted, True
                sent += count
            run = []
        posted += 1
        if not _send(ctx, connection, event, wires[event.event_id]):
            return sent, posted, True
        sent += 1
    for message, count in rules.batch_messages([wires[e.event_id] for e in run]):
        posted += 1
        if not adapters.post(connection.endpoint, connection.connection_id, message):
            return sent, posted, True
        sent += count
    return sent, posted, False


def _send(ctx: Ctx, connection: rules.Connection, event: rules.Event, message: bytes) -> bool:
    if event.name == "system:connected":
        if claim_greeting(ctx, connection.connection_id) is not None:
            return True  # the connection's first client message greeted it already
        delivered = _post_connected(connection.endpoint, connection.connection_id, event.data)
        mark_greeted(ctx, connection.connection_id)
        return delivered
    return adapters.post(connection.endpoint, connection.connection_id, message)


def _post_connected(endpoint: str, connection_id: str, data: dict[str, Any]) -> bool:
    message = rules.wire("system:connected", data)
    if adapters.post(endpoint, connection_id, message):
        return True
    for delay in CONNECTED_RETRY_DELAYS:
        time.sleep(delay)
        if adapters.post(endpoint, connection_id, message):
            return True
    return False


# How long a client message waits for a greeting the fan-out claimed but has not sent yet.
GREETING_WAIT_SECONDS = 2.0


def greet_before_answering(ctx: Ctx, endpoint: str, connection_id: str) -> None:
    """Make sure system:connected went out before this connection's first answer (a pong).

    Whoever claims the greeting first sends it: this handler (then at once),
    or the fan-out, which is sending it right now; then wait until it has.
    """
    state = claim_greeting(ctx, connection_id)
    if state is None:
        _post_connected(endpoint, connection_id, {"timestamp": clock.iso(), "connectionId": connection_id})
        mark_greeted(ctx, connection_id)
        return
    deadline = time.monotonic() + GREETING_WAIT_SECONDS
    while state == store.GREETING_CLAIMED and time.monotonic() < deadline:
        time.sleep(0.02)
        state = store.greeting_state(connection_id)


def close_opened_with(org_id: str, key_id: str | None = None, agent_id: str | None = None,
                      ctx: Ctx | None = None) -> int:
    """Close (DeleteConnection) every socket opened with a revoked key or by a deactivated agent.

    Concurrent like a fan-out; each connection item is removed at once (its
    $disconnect would remove it too, a moment later). Returns how many were open.
    """
    ctx = ctx if ctx is not None else Ctx.system(org_id)
    connections = store.opened_with(org_id, key_id=key_id, agent_id=agent_id)

    def close_one(connection: rules.Connection) -> bool:
        try:
            return adapters.close(connection.endpoint, connection.connection_id)
        finally:
            forget(ctx, connection.connection_id)

    closed = 0
    for connection, future in [(c, _pool.submit(close_one, c)) for c in connections]:
        try:
            closed += bool(future.result())
        except Exception:  # noqa: BLE001 - the others still close; the key itself is revoked already
            log.exception("closing %s failed", connection.connection_id)
    return closed
