"""chalicelib/reports (service) on the fake unit of work, no moto: one commit per report with its event,
the watermark moved once, reads as the routes declare them."""
from __future__ import annotations

import pytest

import chalicelib.reports.routes  # noqa: F401 - registers the routes assert_declared looks up
from chalicelib.core.errors import NotFound
from chalicelib.patches.models import PatchEvent
from chalicelib.reports import models, service, store
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal


def _event(eid: str, status: str, at: str, order: str = "O1") -> PatchEvent:
    return PatchEvent(event_id=eid, batch_id=f"B{eid}", order_id=order, file="a.txt" if status != "requested" else None,
                      op="append" if status != "requested" else None, status=status, at=at)


class _Events:
    def __init__(self, by_order: dict[str, list[PatchEvent]]):
        self.by_order = by_order

    def order_events(self, ctx, order_id):
        return self.by_order.get(order_id, [])

    def orders_changed_since(self, ctx, since):
        return [(o, max(e.at for e in evs)) for o, evs in sorted(self.by_order.items())
                if since is None or max(e.at for e in evs) > since]


EVENTS = _Events({"O1": [_event("1", "requested", "2027-01-01T00:00:00.000Z"),
                         _event("2", "applied", "2027-01-01T00:00:05.000Z")],
                  "O2": [_event("3", "requested", "2027-01-01T00:01:00.000Z", "O2")]})


def test_generate_one_order_writes_the_report_with_its_event(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    page = service.generate(ctx, "O1", events=EVENTS)
    body = assert_declared("POST", "/api/delivery/reports/generate", page)
    [report] = body["items"]
    assert body["nextToken"] is None and report["orderId"] == "O1"
    assert report["summary"]["successRate"] == 1.0 and report["summary"]["leadTimeSeconds"] == 5.0
    [writes] = ledger.committed
    assert writes["report"].item["lastEventAt"] == "2027-01-01T00:00:05.000Z"
    assert store.from_item(writes["report"].item) == page.items[0]
    [(name, data)] = ledger.events()
    assert name == "report:generated" and data["batches"] == 2
    with pytest.raises(NotFound):
        service.generate(ctx, "O9", events=EVENTS)


def test_generate_all_skips_reports_up_to_date_and_moves_the_watermark(monkeypatch):
    ctx, ledger = fake_ctx(principal())
    up_to_date = service.generate(ctx, "O2", events=EVENTS).items[0]
    ledger.committed.clear()
    monkeypatch.setattr(store, "watermark", lambda org: None)
    monkeypatch.setattr(store, "get_many", lambda org, ids: {"O2": up_to_date})
    page = service.generate(ctx, None, events=EVENTS)
    assert [r.order_id for r in page.items] == ["O1"]
    assert [list(w) for w in ledger.committed] == [["report", "event:1:report:generated"], ["watermark"]]
    assert ledger.committed[-1]["watermark"].item["since"] == "2027-01-01T00:01:00.000Z"


def test_get_and_list_return_the_report_entity(monkeypatch):
    ctx, _ = fake_ctx(principal())
    report = service.generate(ctx, "O1", events=EVENTS).items[0]
    monkeypatch.setattr(store, "get", lambda org, oid: report if (org, oid) == (ORG, "O1") else None)
    assert service.get(ctx, "O1") is report
    with pytest.raises(NotFound, match="no delivery report for order O2"):
        service.get(ctx, "O2")
    monkeypatch.setattr(store, "list_reports", lambda org, limit, start: ([report], None))
    listed = service.list_reports(ctx, 10, None)
    assert isinstance(listed, models.ReportPage) and listed.items == [report] and listed.next_token is None
