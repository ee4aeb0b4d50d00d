"""The audit trail: one item per mutation or denial.

Domains add `audit_put(...)` to the transaction that changes state, so the
change and its audit event commit together. Keys:
  PK ORG#{org}#AUDIT, SK {eventId}                      - the org's trail, in time order
  GSI1PK ORG#{org}#AUDIT#{entityType}#{entityId}        - one entity's history
  GSI2PK ORG#{org}#TRACE#{traceId}                      - one trace across entities
Denials of unknown keys have no org; they go to the "-" partition.
"""
from __future__ import annotations

import logging
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids
from chalicelib.core.config import settings

log = logging.getLogger(__name__)
NO_ORG = "-"


def audit_item(org_id: str | None, entity_type: str, entity_id: str, action: str, actor: str,
               trace_id: str | None = None, details: dict[str, Any] | None = None) -> dict:
    org = org_id or NO_ORG
    event_id = ids.new_id()
    item = {
        "PK": f"ORG#{org}#AUDIT", "SK": event_id, "type": "audit",
        "eventId": event_id, "orgId": org, "entityType": entity_type, "entityId": entity_id,
        "action": action, "actor": actor, "traceId": trace_id, "at": clock.iso(), "details": details or {},
        "GSI1PK": f"ORG#{org}#AUDIT#{entity_type}#{entity_id}", "GSI1SK": event_id,
    }
    if trace_id:
        item["GSI2PK"], item["GSI2SK"] = f"ORG#{org}#TRACE#{trace_id}", event_id
    return item


def audit_put(*args: Any, **kwargs: Any) -> dynamo.Put:
    return dynamo.Put(settings().main_table, audit_item(*args, **kwargs))


def record_denial(org_id: str | None, actor: str, reason: str, method: str, path: str,
                  trace_id: str | None = None, status: int = 401) -> None:
    """Denials are recorded best-effort: failing to audit must not turn a 401 into a 500."""
    try:
        dynamo.put(audit_put(org_id, "auth", actor, "denied", actor, trace_id,
                             {"reason": reason, "method": method, "path": path, "status": status}))
    except Exception:  # noqa: BLE001 - logged, the denial itself still stands
        log.exception("could not record an authorization denial")
