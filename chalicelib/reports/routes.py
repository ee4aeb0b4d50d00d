from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.context import Ctx
from chalicelib.core.lazy import lazy

if TYPE_CHECKING:
    from chalicelib.reports import service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    service = lazy("chalicelib.reports.service")

bp = Blueprint(__name__)
TAG = "Delivery reports"


def _ctx(call: Call) -> Ctx:
    return Ctx(principal=call.principal, trace_id=call.trace_id)


# Plain dicts out: a summary's null figures (no decided operation: successRate null) stay in the JSON.

@endpoint(bp, "/api/delivery/reports/generate", "POST", scope=Scope.OPERATOR, body="GenerateRequest",
          response="ReportPage", tag=TAG, errors=(404,),
          idempotency="locked",  # one commit per order's report
          summary="Generate the report of one order, or of every order with patch events since its last report")
def generate(call: Call) -> dict:
    return {"items": service.generate(_ctx(call), call.body.order_id), "nextToken": None}


@endpoint(bp, "/api/delivery/reports", "GET", scope=Scope.OPERATOR, query="ReportQuery",
          response="ReportOrPage", tag=TAG, errors=(404,),
          summary="One order's report (?orderId=) or the list; ?generate=true regenerates first")
def read(call: Call) -> dict:
    q, ctx = call.query, _ctx(call)
    if q.generate:
        service.generate(ctx, q.order_id)
    if q.order_id:
        return service.get(ctx, q.order_id)
    return service.list_reports(ctx, q.limit, q.next_token)
