"""Patches: keys and queries of batches, stored events and the aggregates kept at write time.

  batch           PK ORG#{org}#PBATCH#{batchId}  SK BATCH
  event           PK ORG#{org}#PEVENTS           SK {eventId}           the org's events, time order
                  GSI1 ORG#{org}#PEV#TASK#{taskId}   / {eventId}         logs?taskId=
                  GSI2 ORG#{org}#PEV#ORDER#{orderId} / {eventId}         one order's events (delivery reports)
                  GSI3 ORG#{org}#PEV#FAILED          / {eventId}         failed + rejected only (ops scan)
                  GSI4 ORG#{org}#PEV#FILE#{file}     / {eventId}         logs?file=
  day aggregate   PK ORG#{org}#PSTATS            SK DAY#{YYYY-MM-DD}    counters (total, applied, failed, per
                                                                         factory, op, phase, error message)
  order aggregate PK ORG#{org}#PORDER#{orderId}  SK AGG                 total/applied/failed/firstAt/lastAt
                  GSI1 ORG#{org}#PORDERS / {lastAt}#{orderId}           orders changed since a time

Counters are per operation outcome (an applied batch of 5 ops adds 5 to total and applied).
A day item is one flat item of counters (`f#{factory}#t`, `op#{op}`, `ph#{phase}#a`, `e#{message}`,
...): ADD on top-level attributes needs no read, so a batch's aggregates cost two UpdateItems in
the same transaction as the batch's status transition, and a 90-day stats call reads 90 items.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import clock, retention
from chalicelib.core.config import settings
from chalicelib.patches.models import BatchView, OpResult, PatchEvent

QUEUED, APPLIED, FAILED, REJECTED = "queued", "applied", "failed", "rejected"
MAX_ERROR_KEYS = 200  # distinct error messages counted per day; the rest count as "other"


def _table() -> str:
    return settings().main_table


# --- batches -------------------------------------------------------------------

def batch_key(org_id: str, batch_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#PBATCH#{batch_id}", "SK": "BATCH"}


def to_item(org_id: str, batch: BatchView) -> dict[str, Any]:
    """A batch as its item: keys, the results as JSON text (never queried), no null attributes."""
    item: dict[str, Any] = {**batch_key(org_id, batch.batch_id), "type": "patch-batch", "orgId": org_id,
                            **batch.model_dump(by_alias=True, exclude_none=True,
                                               exclude={"results", "pending_results"}),
                            "operations": batch.operations, "requestedMs": batch.requested_ms}
    for field, results in (("results", batch.results), ("pendingResults", batch.pending_results)):
        if results:
            item[field] = _results_json(results)
    for field, value in (("pendingOutcome", batch.pending_outcome), ("pendingMs", batch.pending_ms)):
        if value is not None:
            item[field] = value
    return item


def from_item(item: dict[str, Any]) -> BatchView:
    return BatchView.model_validate({**{k: v for k, v in item.items() if k in _BATCH_FIELDS},
                                 "results": _results_of(item.get("results")),
                                 "pendingResults": _results_of(item.get("pendingResults")) or None})


def put_batch(org_id: str, batch: BatchView) -> dynamo.Put:
    """A new batch; a batchId already used in this org fails the condition (409)."""
    return dynamo.Put(_table(), to_item(org_id, batch), condition="attribute_not_exists(PK)")


def get_batch(org_id: str, batch_id: str) -> BatchView | None:
    item = dynamo.get(_table(), batch_key(org_id, batch_id), consistent=True)
    return from_item(item) if item is not None else None


def prepare_batch(org_id: str, batch_id: str, results: list[OpResult], outcome: str, at_ms: int) -> dynamo.Update:
    """Before the workspace commit: the results the worker is about to commit, and when.
    Still queued; a redelivery that finds the manifest already holding the batch uses these."""
    return dynamo.Update(_table(), batch_key(org_id, batch_id),
                         set={"pendingResults": _results_json(results), "pendingOutcome": outcome,
                              "pendingMs": at_ms},
                         condition="#st = :q", names={"#st": "status"}, values={":q": QUEUED})


def finish_batch(org_id: str, batch: BatchView) -> dynamo.Update:
    """queued -> applied | failed | rejected, once (the condition makes redeliveries no-ops)."""
    return dynamo.Update(_table(), batch_key(org_id, batch.batch_id),
                         set={"status": batch.status, "results": _results_json(batch.results),
                              "finishedAt": batch.finished_at, "durationMs": batch.duration_ms},
                         remove=("pendingResults", "pendingOutcome"),
                         condition="#st = :q", names={"#st": "status"}, values={":q": QUEUED})


def _results_json(results: list[OpResult]) -> str:
    return json.dumps([r.model_dump(by_alias=True, exclude_none=True) for r in results], separators=(",", ":"))


def _results_of(raw: str | None) -> list[OpResult]:
    return [OpResult.model_validate(r) for r in json.loads(raw)] if raw else []


_BATCH_FIELDS = {f.alias for f in BatchView.model_fields.values() if f.alias} - {"results", "pendingResults"}


# --- events ----------------------------------------------------------------------

def event_item(org_id: str, event: PatchEvent) -> dict[str, Any]:
    eid = event.event_id
    item = {"PK": f"ORG#{org_id}#PEVENTS", "SK": eid, "type": "patch-event", "orgId": org_id,
            **event.model_dump(by_alias=True, exclude_none=True)}
    if event.task_id:
        item["GSI1PK"], item["GSI1SK"] = f"ORG#{org_id}#PEV#TASK#{event.task_id}", eid
    if event.order_id:
        item["GSI2PK"], item["GSI2SK"] = f"ORG#{org_id}#PEV#ORDER#{event.order_id}", eid
    if event.status in (FAILED, REJECTED):
        item["GSI3PK"], item["GSI3SK"] = f"ORG#{org_id}#PEV#FAILED", eid
    if event.file:
        item["GSI4PK"], item["GSI4SK"] = f"ORG#{org_id}#PEV#FILE#{event.file}", eid
    # PATCH_EVENT_RETENTION_DAYS (DynamoDB TTL; events_page and order_events filter it).
    item["ttl"] = retention.expires_at(clock.now(), settings().patch_event_retention_days)
    return item


def put_event(org_id: str, event: PatchEvent) -> dynamo.Put:
    """Unconditional: event ids are deterministic per batch, so a retry rewrites the same item
    (the worker's events go in one bulk unit of work with their outbox items)."""
    return dynamo.Put(_table(), event_item(org_id, event))


_EVENT_FIELDS = set(PatchEvent.model_fields) | {f.alias for f in PatchEvent.model_fields.values() if f.alias}


def to_event(item: dict[str, Any]) -> PatchEvent:
    return PatchEvent.model_validate({k: v for k, v in item.items() if k in _EVENT_FIELDS})


def events_page(org_id: str, *, task_id: str | None, file: str | None, forward: bool,
                limit: int, start_key: dict[str, Any] | None, filter_file: str | None = None,
                search: str | None = None) -> dynamo.Page:
    """One Query on the narrowest key: the task's, else the file's, else the org's events."""
    filters: list[str] = []
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    if task_id:
        index, key = "GSI1", ("GSI1PK", f"ORG#{org_id}#PEV#TASK#{task_id}")
        if file:
            filters.append("#file = :file")
            names["#file"], values[":file"] = "file", file
    elif file:
        index, key = "GSI4", ("GSI4PK", f"ORG#{org_id}#PEV#FILE#{file}")
    else:
        index, key = None, ("PK", f"ORG#{org_id}#PEVENTS")
    if search:
        filters.append("(contains(#file, :s) OR contains(#error, :s) OR contains(#batch, :s)"
                       " OR contains(#factory, :s) OR contains(#phase, :s) OR contains(#op, :s))")
        names.update({"#file": "file", "#error": "error", "#op": "op", "#batch": "batchId",
                      "#factory": "factory", "#phase": "phase"})
        values[":s"] = search
    live, ttl_names, ttl_values = retention.live_filter_args(clock.now())
    filters.append(live)
    names.update(ttl_names)
    values.update(ttl_values)
    values[":pk"] = key[1]
    return dynamo.query(_table(), f"{key[0]} = :pk", values, names=names or None, index=index, limit=limit,
                        start_key=start_key, forward=forward, filter=" AND ".join(filters) or None)


def order_events(org_id: str, order_id: str) -> list[PatchEvent]:
    live, ttl_names, ttl_values = retention.live_filter_args(clock.now())
    return [to_event(i) for i in dynamo.query_all(
        _table(), "GSI2PK = :pk", {":pk": f"ORG#{org_id}#PEV#ORDER#{order_id}", **ttl_values}, index="GSI2",
        names=ttl_names, filter=live)]


def failed_events(org_id: str, after_event_id: str | None, limit: int) -> list[PatchEvent]:
    values = {":pk": f"ORG#{org_id}#PEV#FAILED"}
    condition = "GSI3PK = :pk"
    if after_event_id:
        condition += " AND GSI3SK > :after"
        values[":after"] = after_event_id
    page = dynamo.query(_table(), condition, values, index="GSI3", limit=limit)
    return [to_event(i) for i in page.items]


# --- aggregates ---------------------------------------------------------------------

def day_key(org_id: str, date: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#PSTATS", "SK": f"DAY#{date}"}


def order_key(org_id: str, order_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#PORDER#{order_id}", "SK": "AGG"}


def day_update(org_id: str, date: str, counters: dict[str, int], at: str) -> dynamo.Update:
    return dynamo.Update(_table(), day_key(org_id, date), add=counters,
                         set={"date": date, "lastAt": at}, if_missing={"firstAt": at})


def order_update(org_id: str, order_id: str, totals: dict[str, int], at: str) -> dynamo.Update:
    return dynamo.Update(
        _table(), order_key(org_id, order_id), add=totals,
        set={"orderId": order_id, "orgId": org_id, "type": "patch-order", "lastAt": at,
             "GSI1PK": f"ORG#{org_id}#PORDERS", "GSI1SK": f"{at}#{order_id}"},
        if_missing={"firstAt": at},
    )


def days(org_id: str, first: str, last: str) -> list[dict[str, Any]]:
    return list(dynamo.query_all(_table(), "PK = :pk AND SK BETWEEN :a AND :b",
                                 {":pk": f"ORG#{org_id}#PSTATS", ":a": f"DAY#{first}", ":b": f"DAY#{last}"}))


def orders_since(org_id: str, since: str | None, until: str | None = None) -> list[dict[str, Any]]:
    values: dict[str, Any] = {":pk": f"ORG#{org_id}#PORDERS"}
    condition = "GSI1PK = :pk"
    if since and until:
        condition += " AND GSI1SK BETWEEN :a AND :b"
        values[":a"], values[":b"] = f"{since}#\uffff", f"{until}#\uffff"
    elif since:
        condition += " AND GSI1SK > :a"
        values[":a"] = f"{since}#\uffff"
    elif until:
        condition += " AND GSI1SK <= :b"
        values[":b"] = f"{until}#\uffff"
    return list(dynamo.query_all(_table(), condition, values, index="GSI1"))
