"""Patches: the use cases (submit, dry run, the worker's apply, batch view, logs, stats, trends)
and the read functions other domains use (delivery reports, the ops scan).

Every function is `fn(ctx, ...)`. Read functions for other domains (stable signatures):

    order_events(ctx, order_id) -> list[PatchEvent]            one order's events, oldest first
    orders_changed_since(ctx, since_iso) -> [(orderId, lastAt)] orders whose latest event is after since
    failed_events(ctx, after_event_id, limit) -> [PatchEvent]   failed + rejected, in eventId order
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.patches import store
from chalicelib.patches.models import PatchEvent

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx


# --- reads for other domains ------------------------------------------------------

def order_events(ctx: "Ctx", order_id: str) -> list[PatchEvent]:
    """Every event of one order, oldest first: one Query (paged) on GSI2."""
    return store.order_events(ctx.org_id, order_id)


def orders_changed_since(ctx: "Ctx", since_iso: str | None) -> list[tuple[str, str]]:
    """(orderId, lastAt) of the orders whose latest event is strictly after `since_iso` (all when None),
    oldest change first; from the per-order aggregates (GSI1 by lastAt), never the events."""
    return [(i["orderId"], i["lastAt"]) for i in store.orders_since(ctx.org_id, since_iso)]


def failed_events(ctx: "Ctx", after_event_id: str | None, limit: int) -> list[PatchEvent]:
    """Failed and rejected events of the org in eventId (time) order, after the watermark."""
    return store.failed_events(ctx.org_id, after_event_id, max(1, min(int(limit), 1000)))
