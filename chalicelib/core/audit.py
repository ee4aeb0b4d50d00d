"""The audit trail: one item per mutation or denial.

Domains add `audit_put(...)` to the transaction that changes state, so the
change and its audit event commit together. Keys:
  PK ORG#{org}#AUDIT, SK {eventId}                      - the org's trail, in time order
  GSI1PK ORG#{org}#AUDIT#{entityType}#{entityId}        - one entity's history
  GSI2PK ORG#{org}#TRACE#{traceId}                      - one trace across entities
Denials of a known organization's key are one event each in that org's trail.
Denials with no organization (no key, an unknown key) are counted, not listed:
one item per source and minute, bumped with ADD, so an unauthenticated flood
grows the table by at most one item per source per minute (and those expire):
  PK DENIALS#{yyyy-mm-ddThh:mm}, SK {source}            - count, last reason/path
An audit write that fails is logged at ERROR with what it would have recorded;
it never turns the denial itself into a 500.
"""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids, retention
from chalicelib.core.config import settings

log = logging.getLogger(__name__)
NO_ORG = "-"


def audit_item(org_id: str | None, entity_type: str, entity_id: str, action: str, actor: str,
               trace_id: str | None = None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    org = org_id or NO_ORG
    # One clock reading for both: "since T" reads ids >= time_bound(T), so an id minted a
    # millisecond before its own `at` would be missed by `since=<that at>`.
    at_ms = int(clock.now() * 1000)
    event_id = ids.new_id(at_ms)
    item = {
        "PK": f"ORG#{org}#AUDIT", "SK": event_id, "type": "audit",
        "eventId": event_id, "orgId": org, "entityType": entity_type, "entityId": entity_id,
        "action": action, "actor": actor, "traceId": trace_id, "at": clock.iso(at_ms / 1000), "details": details or {},
        "GSI1PK": f"ORG#{org}#AUDIT#{entity_type}#{entity_id}", "GSI1SK": event_id,
        # AUDIT_RETENTION_DAYS (DynamoDB TTL; reads filter it, chalicelib/audit/store.py).
        "ttl": retention.expires_at(at_ms / 1000, settings().audit_retention_days),
    }
    if trace_id:
        item["GSI2PK"], item["GSI2SK"] = f"ORG#{org}#TRACE#{trace_id}", event_id
    return item


def audit_put(*args: Any, **kwargs: Any) -> dynamo.Put:
    return dynamo.Put(settings().main_table, audit_item(*args, **kwargs))


# How long a per-minute denial count is kept (DynamoDB TTL).
DENIAL_COUNT_TTL_SECONDS = 7 * 24 * 3600
MAX_SOURCE_LENGTH = 64


def denial_count_update(source: str | None, reason: str, method: str, path: str, status: int) -> dynamo.Update:
    """ADD 1 to the count of denials from `source` in the current minute (one item per source and minute)."""
    now = clock.now()
    minute = clock.iso(now)[:16]
    return dynamo.Update(
        settings().main_table, {"PK": f"DENIALS#{minute}", "SK": (source or "unknown")[:MAX_SOURCE_LENGTH]},
        set={"type": "denials", "minute": minute, "lastReason": reason, "lastMethod": method,
             "lastPath": path[:256], "lastStatus": status, "ttl": int(now) + DENIAL_COUNT_TTL_SECONDS},
        add={"count": 1})


def record_denial(org_id: str | None, actor: str, reason: str, method: str, path: str,
                  trace_id: str | None = None, status: int = 401, source: str | None = None,
                  email: str | None = None) -> None:
    """One audit event for an org's denial, one counter bump for a denial with no org.

    Failing to audit must not turn a 401 into a 500: the failure is logged at
    ERROR with the event it lost (never silently).
    """
    from chalicelib.core.context import Ctx  # here: the unit of work imports this module
    from chalicelib.core.tx import Tx

    details: dict[str, Any] = {"reason": reason, "method": method, "path": path[:256], "status": status}
    if email:  # a person's (core/auth.py): the trail names them by user:<sub> and email
        details["email"] = email[:320]
    try:
        tx = Tx(Ctx.system(org_id, trace_id))
        if org_id is None:
            tx.update("denials", denial_count_update(source, reason, method, path, status))
        else:
            tx.put("audit", audit_put(org_id, "auth", actor, "denied", actor, trace_id, details))
        tx.commit()
    except Exception:  # noqa: BLE001 - logged loudly, the denial itself still stands
        log.exception("AUDIT WRITE FAILED: lost the denial %s", {"orgId": org_id, "actor": actor,
                                                                 "traceId": trace_id, "source": source, **details})
