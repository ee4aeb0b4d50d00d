"""The retention sweep's storage: which tables carry a TTL attribute, the Scan for items past it,
their deletes, and the sweep's cursor.

  PK RETENTION#SWEEP, SK CURSOR       {table: index into TTL_TABLES, startKey: JSON text | absent}
  PK RETENTION#SWEEP, SK WORKSPACES   {org, after: the last blob digest done | absent}: the orphan sweep

The cursor commits in the same unit of work as the deletes of the page it moved past, so a sweep
cut off anywhere (a page budget, a timeout, kill -9) goes on from the first page not yet done.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings


@dataclass(frozen=True)
class TtlTable:
    """A table with DynamoDB TTL on `attribute` (infra/template.yaml), and its key attributes."""

    role: str
    attribute: str
    keys: tuple[str, ...]

    @property
    def name(self) -> str:
        s = settings()
        return {"main": s.main_table, "outbox": s.outbox_table, "idempotency": s.idempotency_table}[self.role]


# One TTL attribute per table, as infra/template.yaml declares them.
TTL_TABLES = (TtlTable("main", "ttl", ("PK", "SK")), TtlTable("outbox", "ttl", ("id",)),
              TtlTable("idempotency", "expiration", ("id",)))
# A page's deletes and the cursor commit in one transaction (at most 100 writes).
PAGE_ITEMS = 99
CURSOR_KEY = {"PK": "RETENTION#SWEEP", "SK": "CURSOR"}


@dataclass(frozen=True)
class Cursor:
    table: int = 0
    start_key: dict[str, Any] | None = None


def cursor() -> Cursor:
    item = dynamo.get(settings().main_table, CURSOR_KEY, consistent=True)
    if not item:
        return Cursor()
    table = int(item.get("table", 0))
    return Cursor(table if 0 <= table < len(TTL_TABLES) else 0,
                  json.loads(item["startKey"]) if item.get("startKey") else None)


def cursor_put(position: Cursor, now: float) -> dynamo.Put:
    item: dict[str, Any] = {**CURSOR_KEY, "type": "retention-cursor", "table": position.table, "movedAt": int(now)}
    if position.start_key is not None:
        item["startKey"] = json.dumps(position.start_key, separators=(",", ":"), default=str)
    return dynamo.Put(settings().main_table, item)


def expired_page(table: TtlTable, start_key: dict[str, Any] | None, now: float) -> dynamo.Page:
    """One Scan page of `table`: the keys of the items whose TTL attribute is at or before `now`."""
    return dynamo.scan(table.name, PAGE_ITEMS, start_key=start_key, filter="#ttl <= :now",
                       names={"#ttl": table.attribute}, values={":now": int(now)}, consistent=True)


def delete_expired(table: TtlTable, item: dict[str, Any], now: float) -> dynamo.Delete:
    """Delete `item` only if it is still past its time (an item renewed since the Scan stays)."""
    return dynamo.Delete(table.name, {k: item[k] for k in table.keys}, condition="#ttl <= :now",
                         names={"#ttl": table.attribute}, values={":now": int(now)})


WORKSPACES_KEY = {"PK": "RETENTION#SWEEP", "SK": "WORKSPACES"}


@dataclass(frozen=True)
class BlobCursor:
    org: str | None = None  # None: start a lap at the first organization
    after: str | None = None


def blob_cursor() -> BlobCursor:
    item = dynamo.get(settings().main_table, WORKSPACES_KEY, consistent=True)
    return BlobCursor(item.get("org"), item.get("after")) if item else BlobCursor()


def blob_cursor_put(position: BlobCursor, now: float) -> dynamo.Put:
    item: dict[str, Any] = {**WORKSPACES_KEY, "type": "retention-cursor", "movedAt": int(now)}
    if position.org is not None:
        item["org"] = position.org
    if position.after is not None:
        item["after"] = position.after
    return dynamo.Put(settings().main_table, item)
