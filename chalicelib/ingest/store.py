"""Ingested records: keys and queries.

  PK     ORG#{org}#INGEST#AGENT#{agent}    SK     REC#{recordId}          - the dedup key: one item per
                                                                            (org, agent, recordId)
  GSI1PK ORG#{org}#INGEST                  GSI1SK {ts}#{agent}#{recordId}  - every record of the org
  GSI2PK ORG#{org}#INGEST#AGENT#{agent}    GSI2SK {ts}#{recordId}          - one agent's
  GSI3PK ORG#{org}#INGEST#TABLE#{table}    GSI3SK {ts}#{agent}#{recordId}  - one table's
  GSI4PK ORG#{org}#INGEST#TABLE#{table}#AGENT#{agent}  GSI4SK {ts}#{recordId} - one table of one agent

Every filter combination of GET /ingest/records is one Query on one index,
oldest first, `since` as a key condition (GSIxSK > "{since}$": '$' sorts
right after '#', so records at exactly `since` are excluded), Limit = the
page size: a page costs its own items, never the table.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock, retention
from chalicelib.core.config import settings
from chalicelib.ingest import rules
from chalicelib.ingest.models import StoredRecord


def _table() -> str:
    return settings().main_table


def _item(record: StoredRecord) -> dict[str, Any]:
    o, a, r, t, ts = record.org_id, record.agent_id, record.record_id, record.table, record.ts
    return {
        "PK": f"ORG#{o}#INGEST#AGENT#{a}", "SK": f"REC#{r}", "type": "ingest",
        "orgId": o, "agentId": a, "recordId": r, "table": t, "ts": ts, "receivedAt": record.received_at,
        # JSON text: arbitrary JSON round-trips exactly (floats, nulls, empty keys); never queried.
        "data": rules.data_json(record.data),
        "GSI1PK": f"ORG#{o}#INGEST", "GSI1SK": f"{ts}#{a}#{r}",
        "GSI2PK": f"ORG#{o}#INGEST#AGENT#{a}", "GSI2SK": f"{ts}#{r}",
        "GSI3PK": f"ORG#{o}#INGEST#TABLE#{t}", "GSI3SK": f"{ts}#{a}#{r}",
        "GSI4PK": f"ORG#{o}#INGEST#TABLE#{t}#AGENT#{a}", "GSI4SK": f"{ts}#{r}",
        # INGEST_RETENTION_DAYS after it was received (DynamoDB TTL; `query` filters it).
        "ttl": retention.expires_at(clock.parse_iso(record.received_at), settings().ingest_retention_days),
    }


def _entity(item: dict[str, Any]) -> StoredRecord:
    return StoredRecord(org_id=item["orgId"], agent_id=item["agentId"], record_id=item["recordId"],
                        table=item["table"], data=json.loads(item["data"]), ts=item["ts"],
                        received_at=item["receivedAt"])


def put_new(record: StoredRecord) -> dynamo.Put:
    """Store the record unless (org, agent, recordId) is already stored."""
    return dynamo.Put(_table(), _item(record), condition="attribute_not_exists(PK)")


def _index(org_id: str, table: str | None, agent_id: str | None) -> tuple[str, str]:
    if table and agent_id:
        return "GSI4", f"ORG#{org_id}#INGEST#TABLE#{table}#AGENT#{agent_id}"
    if table:
        return "GSI3", f"ORG#{org_id}#INGEST#TABLE#{table}"
    if agent_id:
        return "GSI2", f"ORG#{org_id}#INGEST#AGENT#{agent_id}"
    return "GSI1", f"ORG#{org_id}#INGEST"


def query(org_id: str, table: str | None, agent_id: str | None, since: str | None, limit: int,
          start_key: dict[str, Any] | None) -> tuple[list[StoredRecord], dict[str, Any] | None]:
    index, pk = _index(org_id, table, agent_id)
    names = {"#pk": f"{index}PK"}
    condition, values = "#pk = :pk", {":pk": pk}
    if since is not None:
        condition += " AND #sk > :since"
        names["#sk"] = f"{index}SK"
        values[":since"] = f"{since}$"
    flt, ttl_names, ttl_values = retention.live_filter_args(clock.now())
    page = dynamo.query(_table(), condition, {**values, **ttl_values}, names={**names, **ttl_names}, index=index,
                        limit=limit, start_key=start_key, filter=flt)
    return [_entity(i) for i in page.items], page.last_key
