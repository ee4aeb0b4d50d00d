"""Reads of the audit trail that chalicelib/core/audit.py writes (its item layout, read only here).

  PK ORG#{org}#AUDIT, SK {eventId}                          the org's trail
  GSI1PK ORG#{org}#AUDIT#{entityType}#{entityId}, GSI1SK    one entity's history
  GSI2PK ORG#{org}#TRACE#{traceId}, GSI2SK                  one trace
Event ids are ULIDs: "since T" is "id >= ids.time_bound(T)", newest first is a backward Query.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.audit.models import AuditEvent
from chalicelib.aws import dynamo
from chalicelib.core import clock, retention
from chalicelib.core.config import settings


@dataclass(frozen=True)
class Selection:
    """Which partition a query reads: its index, key attribute names and value."""

    index: str | None
    pk_name: str
    sk_name: str
    pk: str


def by_org(org_id: str) -> Selection:
    return Selection(None, "PK", "SK", f"ORG#{org_id}#AUDIT")


def by_entity(org_id: str, entity_type: str, entity_id: str) -> Selection:
    return Selection("GSI1", "GSI1PK", "GSI1SK", f"ORG#{org_id}#AUDIT#{entity_type}#{entity_id}")


def by_trace(org_id: str, trace_id: str) -> Selection:
    return Selection("GSI2", "GSI2PK", "GSI2SK", f"ORG#{org_id}#TRACE#{trace_id}")


def query(selection: Selection, since_id: str | None, trace_id: str | None, limit: int,
          start_key: dict[str, Any] | None) -> tuple[list[AuditEvent], dict[str, Any] | None]:
    """One Query, newest first, at most `limit` items read (a trace filter on an entity's
    history may return fewer, with a nextToken to go on)."""
    condition = "#pk = :pk" + (" AND #sk >= :since" if since_id else "")
    names = {"#pk": selection.pk_name, **({"#sk": selection.sk_name} if since_id else {})}
    values: dict[str, Any] = {":pk": selection.pk, **({":since": since_id} if since_id else {})}
    # Past AUDIT_RETENTION_DAYS an event is gone from every read, before DynamoDB's TTL deletes it.
    flt, ttl_names, ttl_values = retention.live_filter_args(clock.now())
    names.update(ttl_names)
    values.update(ttl_values)
    if trace_id:
        flt, values[":trace"] = f"{flt} AND traceId = :trace", trace_id
    page = dynamo.query(settings().main_table, condition, values, names=names, index=selection.index,
                        limit=limit, start_key=start_key, forward=False, filter=flt)
    return [from_item(i) for i in page.items], page.last_key


FIELDS = ("eventId", "entityType", "entityId", "action", "actor", "traceId", "at", "details")


def from_item(item: dict[str, Any]) -> AuditEvent:
    return AuditEvent.model_validate({k: item[k] for k in FIELDS if item.get(k) is not None})
