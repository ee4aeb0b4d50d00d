"""Delivery reports over HTTP (API.md "Delivery reports"): thin, each route calls one service function."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.reports import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp = Blueprint(__name__)
TAG = "Delivery reports"


@endpoint(bp, "/api/delivery/reports/generate", "POST", scope=Scope.OPERATOR, body="GenerateRequest",
          response="ReportPage", tag=TAG, errors=(404,),
          idempotency="locked",  # one commit per order's report
          summary="Generate the report of one order, or of every order with patch events since its last report")
def generate(call: Call) -> models.ReportPage:
    return service.generate(call.ctx, call.body.order_id)


@endpoint(bp, "/api/delivery/reports", "GET", scope=Scope.OPERATOR, query="ReportQuery",
          response="ReportOrPage", tag=TAG, errors=(404,),
          summary="One order's report (?orderId=) or the list; ?generate=true regenerates first")
def read(call: Call) -> models.Report | models.ReportPage:
    q, ctx = call.query, call.ctx
    if q.generate:
        service.generate(ctx, q.order_id)
    if q.order_id:
        return service.get(ctx, q.order_id)
    return service.list_reports(ctx, q.limit, q.next_token)
