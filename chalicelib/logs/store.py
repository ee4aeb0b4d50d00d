"""Instance log entries: keys and queries.

  PK   ORG#{org}#INST#{instanceId}#LOG,          SK     {id}   - every entry of an instance
  GSI1PK ORG#{org}#INST#{instanceId}#LOG#{LEVEL}, GSI1SK {id}   - the entries of one level

`id` is a ULID whose time part is the entry's timestamp (rules.py), so both
partitions are sorted by (timestamp, id). Each filter combination is one
Query whose Limit is the page size:

  no level, no since -> main table,  backwards,  Limit=limit (then reversed: oldest first)
  no level, since    -> main table,  SK > bound, Limit=limit
  level, no since    -> GSI1,        backwards,  Limit=limit
  level, since       -> GSI1,        SK > bound, Limit=limit

Retention: `ttl` = receive time + LOG_RETENTION_DAYS. DynamoDB deletes expired
items lazily (usually within days), so queries also filter `ttl > now`; when
that filter drops items the query continues until the page is full, so a page
costs its own items plus only the expired-but-not-yet-deleted ones it passes.
"""
from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import retention
from chalicelib.core.config import settings
from chalicelib.logs.models import LogEntry


def _table() -> str:
    return settings().main_table


def partition(org_id: str, instance_id: str) -> str:
    return f"ORG#{org_id}#INST#{instance_id}#LOG"


def level_partition(org_id: str, instance_id: str, level: str) -> str:
    return f"{partition(org_id, instance_id)}#{level}"


def error_partition(org_id: str) -> str:
    return f"ORG#{org_id}#LOGS#ERROR"


def _item(entry: LogEntry) -> dict[str, Any]:
    org_id, instance_id = entry.org_id, entry.instance_id
    return {
        "PK": partition(org_id, instance_id), "SK": entry.entry_id, "type": "log",
        "id": entry.entry_id, "orgId": org_id, "instanceId": instance_id, "timestamp": entry.timestamp,
        "level": entry.level, "message": entry.message,
        # JSON text: arbitrary JSON round-trips exactly (nulls, floats, empty keys); never queried.
        "fields": json.dumps(entry.fields, separators=(",", ":")) if entry.fields is not None else None,
        "ttl": entry.expires_at,
        "GSI1PK": level_partition(org_id, instance_id, entry.level), "GSI1SK": entry.entry_id,
        # Sparse, org-wide: ERROR entries of every instance, read by logs/failures.py (the ops scan).
        **({"GSI2PK": error_partition(org_id), "GSI2SK": entry.entry_id} if entry.level == "ERROR" else {}),
    }


def _entity(item: dict[str, Any]) -> LogEntry:
    return LogEntry(org_id=item["orgId"], instance_id=item["instanceId"], id=item["id"],
                    timestamp=item["timestamp"], level=item["level"], message=item["message"],
                    fields=json.loads(item["fields"]) if item.get("fields") is not None else None,
                    expires_at=int(item["ttl"]))


def entry_put(entry: LogEntry) -> dynamo.Put:
    """An entry's unconditional put, for a bulk unit of work (BatchWriteItem, 25 per call)."""
    return dynamo.Put(_table(), _item(entry))


def query(org_id: str, instance_id: str, limit: int, level: str | None = None,
          after: str | None = None, now: float | None = None) -> list[LogEntry]:
    """The page, oldest first: entries after `after` (oldest ones), or the newest `limit`."""
    pk, sk, index = ("GSI1PK", "GSI1SK", "GSI1") if level else ("PK", "SK", None)
    value = level_partition(org_id, instance_id, level) if level else partition(org_id, instance_id)
    condition, values = f"{pk} = :pk", dict[str, Any]({":pk": value})
    if after is not None:
        condition += f" AND {sk} > :after"
        values[":after"] = after
    values[":now"] = int(time.time() if now is None else now)
    items: list[dict[str, Any]] = []
    start = None
    while len(items) < limit:
        page = dynamo.query(_table(), condition, values, names={"#ttl": "ttl"}, index=index,
                            limit=limit - len(items), start_key=start, forward=after is not None,
                            filter="#ttl > :now")
        items.extend(page.items)
        if page.last_key is None:
            break
        start = page.last_key
    if after is None:
        items.reverse()
    return [_entity(i) for i in items]


def error_entries(org_id: str, after: str | None, limit: int) -> list[LogEntry]:
    """Up to `limit` ERROR entries of the org after entry id `after`, oldest first (one Query on GSI2's
    sparse ERROR partition; read by logs/failures.py for the ops scan)."""
    condition, values = "GSI2PK = :pk", {":pk": error_partition(org_id)}
    if after:
        condition += " AND GSI2SK > :after"
        values[":after"] = after
    page = dynamo.query(_table(), condition, values, index="GSI2", limit=limit)
    return [_entity(item) for item in page.items]


def expiry(received_at: float) -> int:
    return retention.expires_at(int(received_at), settings().log_retention_days)
