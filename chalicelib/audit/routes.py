"""GET /audit (operator and above)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.audit import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp = Blueprint(__name__)


@endpoint(bp, "/audit", "GET", scope=Scope.OPERATOR, query="AuditQuery", response="AuditPage",
          tag="Sessions, tasks, approvals, audit",
          summary="Audit events newest first: by entity, by traceId, since a time")
def read_audit(call: Call) -> models.AuditPage:
    q = call.query
    return service.read(call.ctx,
                        service.ReadAudit(q.entity_type, q.entity_id, q.trace_id, q.since, q.limit, q.next_token))
