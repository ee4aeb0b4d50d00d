"""The patches API (API.md "Patches"): apply (202 queued, or 200 for a dry run), batch status,
logs, stats, trends. Thin: validate, build a Ctx, call the service."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.context import Ctx
from chalicelib.core.lazy import lazy

if TYPE_CHECKING:
    from chalicelib.patches import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = lazy("chalicelib.patches.models"), lazy("chalicelib.patches.service")

bp = Blueprint(__name__)
TAG = "Patches"


def _ctx(call: Call) -> Ctx:
    return Ctx(principal=call.principal, trace_id=call.trace_id)


@endpoint(bp, "/api/patches/apply", "POST", scope=Scope.AGENT, body="PatchBatch",
          response="ApplyAnswer", status=202, also=(200,), tag=TAG,
          summary="Queue a patch batch (202); with dryRun the results at once (200), nothing changes")
def apply(call: Call):
    answer = service.submit(_ctx(call), call.body)
    if isinstance(answer, models.DryRunAnswer):
        return Reply(body=answer, status=200)
    return answer


@endpoint(bp, "/api/patches/batches/{batchId}", "GET", scope=Scope.AGENT, response="BatchView", tag=TAG,
          errors=(404,), summary="A batch's status and per-operation results")
def get_batch(call: Call) -> models.BatchView:
    return service.get_batch(_ctx(call), call.params["batchId"])


@endpoint(bp, "/api/patches/logs", "GET", scope=Scope.AGENT, query="LogsQuery", response="LogsPage",
          tag=TAG, summary="Stored patch events, filtered by task, file, or text; offset paging")
def logs(call: Call) -> models.LogsPage:
    return service.logs(_ctx(call), call.query)


@endpoint(bp, "/api/patches/stats", "GET", scope=Scope.AGENT, query="RangeQuery", response="Stats",
          tag=TAG, summary="Daily totals, success rate by factory, operations, errors (from day aggregates)")
def stats(call: Call) -> models.Stats:
    return service.stats(_ctx(call), call.query.from_, call.query.to)


@endpoint(bp, "/api/patches/trends", "GET", scope=Scope.AGENT, query="TrendsQuery",
          response="list[Trend]", tag=TAG, summary="Totals grouped weekly, by phase or by order")
def trends(call: Call) -> list:
    return service.trends(_ctx(call), call.query.group_by, call.query.from_, call.query.to)
