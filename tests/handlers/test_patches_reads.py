"""The read functions the delivery reports and the ops scan use, against moto."""
from __future__ import annotations

from chalicelib.aws import dynamo
from chalicelib.core import ids
from chalicelib.core.context import Ctx
from chalicelib.patches import service, store
from chalicelib.patches.models import PatchEvent


def _event(status, order="o1", at_ms=1_700_000_000_000, **kw):
    return PatchEvent(event_id=ids.new_id(at_ms), batch_id="b1", order_id=order, task_id="t1", factory="f",
                      phase="p", file="a.txt", op="append", status=status, at="2023-11-14T22:13:20.000Z",
                      duration_ms=5, **kw)


def test_order_events_orders_since_and_failed_events(app_module):
    ctx = Ctx.system("org-reads")
    events = [_event("requested", at_ms=1_700_000_000_000 + i) if i == 0 else
              _event("failed" if i % 3 == 0 else "applied", at_ms=1_700_000_000_000 + i,
                     error="ANCHOR_NOT_FOUND: x" if i % 3 == 0 else None) for i in range(10)]
    events.append(_event("rejected", order="o2", at_ms=1_700_000_000_100, error="REJECTED: batch failed"))
    bulk = Ctx.system(ctx.org_id).bulk()  # as the worker writes them: one bulk unit of work
    for e in events:
        bulk.put(e.event_id, store.put_event(ctx.org_id, e))
    bulk.commit()
    got = service.order_events(ctx, "o1")
    assert [e.event_id for e in got] == [e.event_id for e in events[:10]]
    assert got[3].error == "ANCHOR_NOT_FOUND: x" and got[0].status == "requested"

    failed = service.failed_events(ctx, None, 100)
    assert [e.status for e in failed] == ["failed", "failed", "failed", "rejected"]
    assert service.failed_events(ctx, failed[1].event_id, 1) == [failed[2]]

    dynamo.update(store.order_update(ctx.org_id, "o1", {"total": 1}, "2026-01-01T00:00:00.000Z"))
    dynamo.update(store.order_update(ctx.org_id, "o2", {"total": 1}, "2026-01-02T00:00:00.000Z"))
    dynamo.update(store.order_update(ctx.org_id, "o1", {"total": 1}, "2026-01-03T00:00:00.000Z"))
    assert service.orders_changed_since(ctx, None) == [("o2", "2026-01-02T00:00:00.000Z"),
                                                        ("o1", "2026-01-03T00:00:00.000Z")]
    assert service.orders_changed_since(ctx, "2026-01-02T00:00:00.000Z") == [("o1", "2026-01-03T00:00:00.000Z")]
    item = dynamo.get(store._table(), store.order_key(ctx.org_id, "o1"))
    assert item["firstAt"] == "2026-01-01T00:00:00.000Z" and item["total"] == 2
    assert service.order_events(Ctx.system("other-org"), "o1") == []
