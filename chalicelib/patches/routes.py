"""The patches API (API.md "Patches"): apply (202 queued, or 200 for a dry run), batch status,
logs, stats, trends. Thin: validate, pass call.ctx and the command to the service."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.patches import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp = Blueprint(__name__)
TAG = "Patches"


@endpoint(bp, "/api/patches/apply", "POST", scope=Scope.AGENT, body="PatchBatch",
          response="ApplyAnswer", status=202, also=(200,), tag=TAG,
          # the queue message is sent after the batch's commit (a staged commit would land after it)
          idempotency="locked",
          summary="Queue a patch batch (202); with dryRun the results at once (200), nothing changes")
def apply(call: Call) -> models.ApplyAccepted | Reply:
    answer = service.submit(call.ctx, call.body)
    if isinstance(answer, models.DryRunAnswer):
        return Reply(body=answer, status=200)
    return answer


@endpoint(bp, "/api/patches/events", "POST", scope=Scope.AGENT, body="PatchEventsReport",
          response="EventsRecorded", status=201, errors=(409,), tag=TAG,
          # the events are a bulk write after the batch's commit (as the worker's)
          idempotency="locked",
          summary="Record a batch applied outside the control plane (agent CLI on local files): "
                  "its events count in logs, stats, trends and delivery reports")
def record_events(call: Call) -> models.EventsRecorded:
    return service.record_external(call.ctx, call.body)


@endpoint(bp, "/api/patches/batches/{batchId}", "GET", scope=Scope.AGENT, response="BatchView", tag=TAG,
          errors=(404,), summary="A batch's status and per-operation results")
def get_batch(call: Call) -> models.BatchView:
    return service.get_batch(call.ctx, call.params["batchId"])


@endpoint(bp, "/api/patches/logs", "GET", scope=Scope.AGENT, query="LogsQuery", response="LogsPage",
          tag=TAG, summary="Stored patch events, filtered by task, file, or text; offset paging")
def logs(call: Call) -> models.LogsPage:
    return service.logs(call.ctx, call.query)


@endpoint(bp, "/api/patches/stats", "GET", scope=Scope.AGENT, query="RangeQuery", response="Stats",
          tag=TAG, summary="Daily totals, success rate by factory, operations, errors (from day aggregates)")
def stats(call: Call) -> models.Stats:
    return service.stats(call.ctx, call.query.from_, call.query.to)


@endpoint(bp, "/api/patches/trends", "GET", scope=Scope.AGENT, query="TrendsQuery",
          response="list[Trend]", tag=TAG, summary="Totals grouped weekly, by phase or by order")
def trends(call: Call) -> list[models.Trend]:
    return service.trends(call.ctx, call.query.group_by, call.query.from_, call.query.to)
