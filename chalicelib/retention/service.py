"""The retention sweep: deletes every item past its lifetime that DynamoDB's TTL has not deleted yet.

On AWS, TTL deletes expired items within a few days and this sweep is a slow backstop (a lap over a
large table takes long); on the local stack, whose embedded DynamoDB never runs TTL, it is the only
thing that deletes them. Each run reads
at most `pages` Scan pages (RETENTION_SWEEP_PAGES), walking the TTL tables in turn; its cursor
commits with each page's deletes, so the next run goes on where this one stopped.
"""
from __future__ import annotations

from typing import Any

from chalicelib.core.context import Ctx
from chalicelib.core.tx import TxFailed
from chalicelib.retention import store
from chalicelib.retention.store import TTL_TABLES, BlobCursor, Cursor
from chalicelib.workspaces import service as workspaces

BLOBS_PER_PAGE = 100


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


def sweep_workspace_blobs(ctx: Ctx, pages: int | None = None) -> dict[str, Any]:
    """One bounded run over the workspace bucket: blobs no manifest names, older than
    ORPHAN_BLOB_GRACE_SECONDS, are deleted, organization by organization, a page of blobs at a time.
    The cursor (organization, last digest done) commits after each page, so the next run goes on
    from there; deleting a blob twice is harmless. {pages, deleted, finished}: finished when the
    last organization is done (the next run starts a new lap)."""
    budget = max(1, pages if pages is not None else ctx.settings.retention_sweep_pages)
    written_before = ctx.now() - ctx.settings.orphan_blob_grace_seconds
    position = store.blob_cursor()
    read = deleted = 0
    while read < budget:
        org = position.org or workspaces.org_with_blobs_after(None)
        if org is None:  # an empty bucket
            _move(ctx, BlobCursor())
            return {"pages": read, "deleted": deleted, "finished": True}
        gone, after = workspaces.sweep_orphans(org, position.after, BLOBS_PER_PAGE, written_before)
        read += 1
        deleted += gone
        if after is not None:
            position = BlobCursor(org, after)
        else:
            following = workspaces.org_with_blobs_after(org)
            position = BlobCursor(following, None)
        _move(ctx, position)
        if position.org is None:
            return {"pages": read, "deleted": deleted, "finished": True}
    return {"pages": read, "deleted": deleted, "finished": False}


def _move(ctx: Ctx, position: BlobCursor) -> None:
    tx = ctx.tx()
    tx.put("cursor", store.blob_cursor_put(position, ctx.now()))
    tx.commit()
