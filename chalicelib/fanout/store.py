"""WebSocket connections in DynamoDB.

  PK CONN#{connectionId}, SK CONN          - found by id ($disconnect, 410 clean-up)
  GSI1PK ORG#{org}#CONNS, GSI1SK {id}      - every connection of an org (fan-out)
  PK ORG#{org}#CONNS, SK VERSION            - the org's connection-list version: a new random
                                              value on every $connect, so a warm fan-out knows
                                              its cached list is still whole from one GetItem
TTL: 2 h, API Gateway's connection limit, so a lost $disconnect cannot leave an
item behind for long (the version item too: past it no connection it announced is left).
"""
from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.core.config import settings
from chalicelib.fanout.rules import Connection


def _key(connection_id: str) -> dict[str, str]:
    return {"PK": f"CONN#{connection_id}", "SK": "CONN"}


def to_item(connection: Connection, key_id: str, expires_at: int | None = None) -> dict[str, Any]:
    """The connection's item: its keys, the org index and a TTL; `keyId` for revocation.

    `expires_at`: when the credential it was opened with stops working (a token's exp): the TTL is
    no later, so the fan-out (which skips items past their TTL) sends nothing after it; the socket
    itself is closed by the expiry sweep (fanout/expiry.py)."""
    ttl = int(time.time()) + settings().connection_ttl_seconds
    return {
        **_key(connection.connection_id), "type": "connection", "connectionId": connection.connection_id,
        "orgId": connection.org_id, "agentId": connection.agent_id, "keyId": key_id, "batch": connection.batch,
        "endpoint": connection.endpoint, "connectedAt": clock.iso(),
        "ttl": min(ttl, expires_at) if expires_at is not None else ttl,
        **({"expiresAt": expires_at} if expires_at is not None else {}),
        "GSI1PK": f"ORG#{connection.org_id}#CONNS", "GSI1SK": connection.connection_id,
    }


def connection_put(connection: Connection, key_id: str, expires_at: int | None = None) -> dynamo.Put:
    return dynamo.Put(settings().main_table, to_item(connection, key_id, expires_at))


# system:connected is sent once, first, by whoever claims it: the fan-out (the
# outbox event $connect queued) or the first client message, if that comes sooner.
GREETING_CLAIMED, GREETING_SENT = "claimed", "sent"


def greeting_claim(connection_id: str) -> dynamo.Update:
    """Claim sending system:connected: fails (TxFailed with the old item) when someone claimed it already."""
    return dynamo.Update(settings().main_table, _key(connection_id), set={"greeting": GREETING_CLAIMED},
                         condition="attribute_exists(PK) AND attribute_not_exists(greeting)")


def greeting_sent(connection_id: str) -> dynamo.Update:
    return dynamo.Update(settings().main_table, _key(connection_id), set={"greeting": GREETING_SENT},
                         condition="attribute_exists(PK)")


def greeting_state(connection_id: str) -> str | None:
    found = dynamo.get(settings().main_table, _key(connection_id), consistent=True)
    return found.get("greeting") if found else GREETING_SENT  # a gone connection has nothing to wait for


def greeting_of(item: dict[str, Any]) -> str:
    """The greeting state an old item (a failed claim's) shows."""
    return str(item.get("greeting", GREETING_SENT))


def delete(connection_id: str) -> dynamo.Delete:
    return dynamo.Delete(settings().main_table, _key(connection_id))


def get(connection_id: str) -> Connection | None:
    item = dynamo.get(settings().main_table, _key(connection_id))
    return _sendable(item) if item else None


def _sendable(item: dict[str, Any]) -> Connection:
    """A connection as the fan-out sends to it: from_item, and whether it asked for batches."""
    return replace(from_item(item), batch=bool(item.get("batch", False)))


def _version_key(org_id: str) -> dict[str, str]:
    return {"PK": f"ORG#{org_id}#CONNS", "SK": "VERSION"}


def connections_changed(org_id: str) -> dynamo.Update:
    """A new version of the org's connection list (after a $connect committed): cached lists are stale.

    A plain UpdateItem of its own, not part of $connect's transaction: concurrent connects of one org
    would cancel each other's transactions on this one item; plain updates just serialize.
    """
    now = clock.now()
    return dynamo.Update(settings().main_table, _version_key(org_id),
                         set={"type": "connections-version", "version": uuid.uuid4().hex, "changedAt": now,
                              "ttl": int(now) + settings().connection_ttl_seconds})


def connections_version(org_id: str) -> tuple[str, float] | None:
    """(version, changedAt epoch seconds) of the org's connection list; None before any $connect (or past TTL)."""
    found = dynamo.get(settings().main_table, _version_key(org_id), consistent=True)
    return (str(found["version"]), float(found["changedAt"])) if found else None


# Only what a fan-out reads: one query per event batch lists every connection of the org,
# and each attribute left out is one less to send, parse and deserialize per connection.
_FANOUT_PROJECTION = "connectionId, orgId, endpoint, agentId, #batch, #ttl"


def of_org(org_id: str) -> list[tuple[Connection, int]]:
    """The org's connections not past their TTL, each with its TTL (epoch s): a fan-out that keeps the
    list must stop sending to one when its TTL passes (it may be a credential's expiry)."""
    now = int(time.time())
    found = []
    for item in dynamo.query_all(settings().main_table, "GSI1PK = :pk", {":pk": f"ORG#{org_id}#CONNS"},
                                 index="GSI1", projection=_FANOUT_PROJECTION, names={"#ttl": "ttl", "#batch": "batch"}):
        ttl = int(item.get("ttl", now + settings().connection_ttl_seconds))
        if ttl > now:  # TTL deletion lags; an expired item is already gone
            found.append((_sendable(item), ttl))
    return found


def opened_with(org_id: str, key_id: str | None = None, agent_id: str | None = None) -> list[Connection]:
    """The org's connections opened with `key_id`, or by an agent key of `agent_id` (revocation)."""
    return [from_item(item) for item in dynamo.query_all(
        settings().main_table, "GSI1PK = :pk", {":pk": f"ORG#{org_id}#CONNS"}, index="GSI1")
        if (key_id is not None and item.get("keyId") == key_id)
        or (agent_id is not None and item.get("agentId") == agent_id)]


def from_item(item: dict[str, Any]) -> Connection:
    return Connection(item["connectionId"], item["orgId"], item["endpoint"], item.get("agentId"))


# --- sockets whose credential expires (a person's token): fanout/expiry.py closes them ---------
#   PK WSEXP#{yyyy-mm-ddThh:mm}, SK {connectionId}   - a socket to close in that minute
#   PK WSEXP#CURSOR, SK CURSOR                       - the last minute the sweep finished
# One marker per such socket, written with it at $connect: the sweep reads the minutes since
# its cursor (usually one Query), never the connections of every org.

EXPIRY_CURSOR = {"PK": "WSEXP#CURSOR", "SK": "CURSOR"}
# A marker outlives its minute by this much, in case the sweep was down (it catches up from its cursor).
EXPIRY_MARKER_GRACE_SECONDS = 3 * 3600


def expiry_minute(epoch: float) -> str:
    return clock.iso(epoch)[:16]


def expiry_marker_put(connection: Connection, expires_at: int) -> dynamo.Put:
    return dynamo.Put(settings().main_table, {
        "PK": f"WSEXP#{expiry_minute(expires_at)}", "SK": connection.connection_id, "type": "wsExpiry",
        "connectionId": connection.connection_id, "orgId": connection.org_id, "endpoint": connection.endpoint,
        "expiresAt": expires_at, "ttl": expires_at + EXPIRY_MARKER_GRACE_SECONDS})


def expiring_in(minute: str) -> list[dict[str, Any]]:
    return list(dynamo.query_all(settings().main_table, "PK = :pk", {":pk": f"WSEXP#{minute}"}))


def expiry_marker_delete(minute: str, connection_id: str) -> dynamo.Delete:
    return dynamo.Delete(settings().main_table, {"PK": f"WSEXP#{minute}", "SK": connection_id})


def expiry_cursor() -> str | None:
    item = dynamo.get(settings().main_table, EXPIRY_CURSOR, consistent=True)
    return str(item["minute"]) if item else None


def expiry_cursor_put(minute: str) -> dynamo.Put:
    return dynamo.Put(settings().main_table, {**EXPIRY_CURSOR, "type": "wsExpiryCursor", "minute": minute})
