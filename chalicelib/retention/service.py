"""The retention sweep: deletes every item past its lifetime that DynamoDB's TTL has not deleted yet.

On AWS, TTL deletes expired items within a few days; this sweep caps that lag and, on the local
stack (whose embedded DynamoDB never runs TTL), is the only thing that deletes them. Each run reads
at most `pages` Scan pages (RETENTION_SWEEP_PAGES), walking the TTL tables in turn; its cursor
commits with each page's deletes, so the next run goes on where this one stopped.
"""
from __future__ import annotations

from typing import Any

from chalicelib.core.context import Ctx
from chalicelib.core.tx import TxFailed
from chalicelib.retention import store
from chalicelib.retention.store import TTL_TABLES, Cursor


def sweep(ctx: Ctx, pages: int | None = None) -> dict[str, Any]:
    """One bounded run: {pages, deleted, finished}. finished: this run walked the last table to its
    end (a lap over every table is complete); a run stops there, the next one starts a new lap."""
    budget = max(1, pages if pages is not None else ctx.settings.retention_sweep_pages)
    now = ctx.now()
    position = store.cursor()
    read = deleted = 0
    finished = False
    while read < budget:
        table = TTL_TABLES[position.table]
        page = store.expired_page(table, position.start_key, now)
        read += 1
        if page.last_key is not None:
            following = Cursor(position.table, page.last_key)
        else:
            following = Cursor((position.table + 1) % len(TTL_TABLES), None)
        deleted += _commit_page(ctx, table, page.items, following, now)
        position = following
        if position == Cursor():
            finished = True
            break
    return {"pages": read, "deleted": deleted, "finished": finished}


def _commit_page(ctx: Ctx, table: store.TtlTable, items: list[dict[str, Any]], following: Cursor,
                 now: float) -> int:
    """Delete a page's expired items and move the cursor past it, in one unit of work. An item renewed
    since the Scan (its condition fails) is left alone and the rest is committed again without it."""
    doomed = {f"expired:{i}": item for i, item in enumerate(items)}
    while True:
        tx = ctx.tx()
        for name, item in doomed.items():
            tx.delete(name, store.delete_expired(table, item, now))
        tx.put("cursor", store.cursor_put(following, now))
        try:
            tx.commit()
            return len(doomed)
        except TxFailed as failed:
            kept = [name for name in failed.names if name in doomed]
            if not kept:
                raise
            for name in kept:
                del doomed[name]
