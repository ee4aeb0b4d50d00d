"""GET /audit (operator and above)."""
from __future__ import annotations

from chalice import Blueprint

from chalicelib.audit import models, service
from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope

bp = Blueprint(__name__)


@endpoint(bp, "/audit", "GET", scope=Scope.OPERATOR, query=models.AuditQuery, response=models.AuditPage,
          tag="Sessions, tasks, approvals, audit",
          summary="Audit events newest first: by entity, by traceId, since a time")
def read_audit(call: Call) -> models.AuditPage:
    q = call.query
    page = service.read(call.ctx,
                        service.ReadAudit(q.entity_type, q.entity_id, q.trace_id, q.since, q.limit, q.next_token))
    return models.AuditPage.model_validate(page)
