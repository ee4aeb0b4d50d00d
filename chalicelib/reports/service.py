"""Delivery reports: generate (one order, or every order with events since its last report), read, list.

Patch events are read only through the patch system's service
(chalicelib/patches/service.py: order_events, orders_changed_since); `events`
is that module unless a caller passes another object with the same two
functions (the unit tests do, with PatchEvent-shaped data).
"""
from __future__ import annotations

from typing import Any, Protocol

from chalicelib.core import paging
from chalicelib.core.context import Ctx
from chalicelib.core.errors import NotFound
from chalicelib.core.lookup import found
from chalicelib.reports import rules, store
from chalicelib.reports.models import Report, ReportPage


class PatchEvents(Protocol):
    def order_events(self, ctx: Ctx, order_id: str) -> list[Any]: ...
    def orders_changed_since(self, ctx: Ctx, since_iso: str | None) -> list[tuple[str, str]]: ...


def _patches() -> PatchEvents:
    from chalicelib.patches import service  # the patch system owns its events

    return service


def _build(ctx: Ctx, order_id: str, events: list[Any]) -> Report:
    summary = rules.summarize(order_id, events)
    generated_at = ctx.iso()
    report = Report(order_id=order_id, generated_at=generated_at, summary=summary,
                    markdown=rules.markdown(summary, generated_at))
    tx = ctx.tx()
    tx.put("report", store.report_put(ctx.org_id, report))
    tx.emit("report:generated", {"orderId": order_id, "generatedAt": generated_at,
                                 "successRate": summary["successRate"], "batches": summary["batches"]["total"],
                                 "lastActivityAt": summary["lastActivityAt"]})
    tx.commit()
    return report


def generate(ctx: Ctx, order_id: str | None = None, events: PatchEvents | None = None) -> ReportPage:
    """One order's report (404 when it has no events), or every order changed since its last report:
    the reports written, as one page."""
    source = events or _patches()
    if order_id is not None:
        events_of_order = list(source.order_events(ctx, order_id))
        if not events_of_order:
            raise NotFound(f"no patch events for order {order_id}")
        return ReportPage(items=[_build(ctx, order_id, events_of_order)])
    since = store.watermark(ctx.org_id)
    changed = list(source.orders_changed_since(ctx, since))
    existing = store.get_many(ctx.org_id, [o for o, _ in changed])
    reports = []
    for oid, last_at in changed:
        # Only orders whose newest event is newer than their report are rebuilt.
        if oid in existing and store.last_event_at(existing[oid]) >= last_at:
            continue
        reports.append(_build(ctx, oid, list(source.order_events(ctx, oid))))
    if changed:
        newest = max(last for _, last in changed)
        if newest > (since or ""):
            tx = ctx.tx()
            tx.put("watermark", store.watermark_put(ctx.org_id, newest))
            tx.commit()
    return ReportPage(items=reports)


def get(ctx: Ctx, order_id: str) -> Report:
    return found(store.get(ctx.org_id, order_id), "delivery report for order", order_id)


def list_reports(ctx: Ctx, limit: int, next_token: str | None) -> ReportPage:
    scope = f"reports:{ctx.org_id}"
    items, last_key = store.list_reports(ctx.org_id, limit, paging.start_key(next_token, scope))
    return ReportPage(items=items, next_token=paging.next_token(last_key, scope))
