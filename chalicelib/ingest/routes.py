from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.ingest import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Agent gateway"


@endpoint(bp, "/ingest", "POST", scope=Scope.AGENT, body="IngestRequest", response="IngestResult",
          tag=TAG, errors=(503,), idempotency="locked",  # one commit per record (core/idempotency.py)
          summary="Edge gateway upload (agent key): stores each record once per (agent, recordId); "
                  "answers accepted and duplicates")
def ingest(call: Call) -> models.IngestResult:
    ctx = call.ctx
    agent_id = service.require_agent_key(ctx)
    return service.ingest(ctx, service.IngestBatch(agent_id, call.body.records))


@endpoint(bp, "/ingest/records", "GET", scope=Scope.OPERATOR, query="RecordsQuery",
          response="RecordPage", tag=TAG,
          summary="Ingested records, oldest first (by ts), filtered by table and/or agent, strictly after since")
def list_records(call: Call) -> models.RecordPage:
    q = call.query
    return service.list_records(call.ctx, service.ListRecords(q.table, q.agent_id, q.since, q.limit,
                                                                q.next_token))
