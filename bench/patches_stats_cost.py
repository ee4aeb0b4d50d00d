"""Patches: DynamoDB items read by a 90-day stats call (and by trends), beside reading the events.

In-process moto. One org with 90 days of history: every day 4 batches of 5 operations
(20 operation events a day, 1,800 in all, plus 360 `requested` events; the aggregates' cost does
not depend on how many), recorded through
the same code the worker uses (service._finish: batch transition + day and order aggregates;
service._write_events: the stored events), with the clock set to each day.
Items read = ScannedCount of every Query (botocore after-call hook).

- this API: GET /api/patches/stats?from=..&to=.. reads the day aggregates only;
- baseline: the same figures computed from the stored events (one Query over the org's events
  in the range, paged), which is what a design without write-time aggregates must read.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from unittest import mock

from common import moto_stack, table

DAYS, BATCHES, OPS = 90, 4, 5


class Reads:
    def __init__(self):
        self.queries = self.items = 0

    def __call__(self, parsed, **kwargs):
        self.queries += 1
        self.items += parsed.get("ScannedCount", 0)


def main() -> None:
    from devstack import fast_moto

    # moto backs up whole tables per transaction; the local stack's patch keeps seeding linear
    fast_moto.patch_transactions()
    fast_moto.patch_index_queries()
    with moto_stack() as (app_module, counter, root):
        from chalicelib.aws import clients, dynamo
        from chalicelib.core import clock
        from chalicelib.core.context import Ctx
        from chalicelib.patches import service, store
        from chalicelib.patches.models import BatchView, OpResult

        ctx = Ctx.system("bench-org")
        start = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
        ops = ["replace-block", "insert-after", "append", "insert-before", "prepend"]
        seeded = time.perf_counter()
        for day in range(DAYS):
            moment = (start + timedelta(days=day)).timestamp()
            with mock.patch.object(clock, "now", lambda m=moment: m):
                for b in range(BATCHES):
                    batch_id = f"b{day:03d}{b:02d}"
                    item = BatchView(batch_id=batch_id, workspace="ws", status="queued", factory=f"factory-{b % 4}",
                                 phase=f"phase-{b % 3}", order_id=f"order-{b % 7}", task_id=f"task-{day}",
                                 requested_at=clock.iso(moment), operations=OPS, requested_ms=int(moment * 1000))
                    created = ctx.tx()
                    created.put("batch", store.put_batch(ctx.org_id, item))
                    created.commit()
                    fail = b == 0 and day % 3 == 0
                    results = [OpResult(index=i, file=f"f{i}.txt", op=ops[i],
                                        status=("failed" if i == 2 else "rejected") if fail else "applied",
                                        error="MARKER_NOT_FOUND: no line matches marker '###X###'" if fail and i == 2 else None)
                               for i in range(OPS)]
                    service._finish(ctx, item, "failed" if fail else "applied", results,
                                    int(moment * 1000), int(moment * 1000) + 40)
                    service._write_events(ctx, store.get_batch(ctx.org_id, batch_id))
        seed_s = time.perf_counter() - seeded

        reads = Reads()
        clients.client("dynamodb").meta.events.register("after-call.dynamodb.Query", reads)
        first, last = start.date().isoformat(), (start + timedelta(days=DAYS - 1)).date().isoformat()
        stats = service.stats(ctx, first, last)
        rows = [("stats, 90 days (this API)", reads.queries, reads.items, sum(d.total for d in stats.daily))]
        for group in ("weekly", "phase", "order"):
            reads.queries = reads.items = 0
            service.trends(ctx, group, first, last)
            rows.append((f"trends groupBy={group}", reads.queries, reads.items, ""))
        reads.queries = reads.items = 0
        events = list(dynamo.query_all(store._table(), "PK = :pk", {":pk": f"ORG#{ctx.org_id}#PEVENTS"}))
        totals = sum(1 for e in events if e["status"] != "requested")
        rows.append(("baseline: read the events", reads.queries, reads.items, totals))
    print(f"{DAYS} days x {BATCHES} batches x {OPS} operations (seeded in {seed_s:.0f} s)")
    print(table(rows, ("call", "queries", "items read", "operations counted")))


if __name__ == "__main__":
    main()
