"""Delivery reports from patch events written through the patch system's store; figures computed by hand."""
from __future__ import annotations

import pytest

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids
from chalicelib.core.context import Ctx
from chalicelib.patches import store as patches_store
from chalicelib.patches.models import PatchEvent

DAY = "2026-11-30T"


def ev(batch, status, at, file=None, op=None, error=None, order="ORD-A", factory="f1", phase="build", ms=0):
    at_iso = DAY + at
    return PatchEvent(event_id=ids.new_id(int(clock.parse_iso(at_iso) * 1000)), batch_id=batch, order_id=order,
                      factory=factory, phase=phase, file=file, op=op, status=status, error=error, at=at_iso,
                      duration_ms=ms)


ORDER_A = [
    ev("B1", "requested", "10:00:00.000Z"),
    ev("B1", "applied", "10:00:05.000Z", "src/a.py", "replace-block", ms=120),
    ev("B1", "applied", "10:00:05.000Z", "src/b.py", "append", ms=120),
    ev("B2", "requested", "10:10:00.000Z", phase="fix"),
    ev("B2", "failed", "10:10:02.000Z", "src/c.py", "insert-after", "ANCHOR_NOT_FOUND: marker ###X###", phase="fix"),
    ev("B3", "requested", "10:20:00.000Z", phase="fix"),
    ev("B3", "applied", "10:20:04.000Z", "src/c.py", "insert-after", phase="fix", ms=300),
]
ORDER_B = [
    ev("C1", "requested", "11:00:00.000Z", order="ORD-B", factory="f2", phase="qa"),
    ev("C1", "rejected", "11:00:00.500Z", "../etc/passwd", "replace-block", "PATH_OUTSIDE_WORKSPACE", order="ORD-B",
       factory="f2", phase="qa"),
    ev("C2", "requested", "11:05:00.000Z", order="ORD-B", factory="f2", phase="qa"),
    ev("C2", "failed", "11:05:01.000Z", "x.py", "replace-block", "FILE_NOT_FOUND: x.py", order="ORD-B",
       factory="f2", phase="qa"),
]


def write(org_id, events):
    """As the patch worker records them: the events, and the order's aggregate (lastAt)."""
    bulk = Ctx.system(org_id).bulk()  # as the worker writes them: one bulk unit of work
    for e in events:
        bulk.put(e.event_id, patches_store.put_event(org_id, e))
    bulk.commit()
    for e in events:
        dynamo.update(patches_store.order_update(org_id, e.order_id, {"total": 1}, e.at), return_new=False)


@pytest.fixture
def operator(http, org):
    r = http.post("/keys", org["adminKey"], {"name": "op", "scope": "operator"})
    return r.json["apiKey"]


def test_two_orders_figures_equal_hand_computed_values(http, org, operator, outbox):
    write(org["orgId"], ORDER_A + ORDER_B)
    r = http.post("/api/delivery/reports/generate", operator, {})
    assert r.status == 200, r.json
    reports = {x["orderId"]: x for x in r.json["items"]}
    assert sorted(reports) == ["ORD-A", "ORD-B"]

    a = reports["ORD-A"]["summary"]
    assert a["batches"] == {"total": 3, "succeeded": 2, "failed": 1, "pending": 0}
    assert a["operations"] == {"requested": 3, "applied": 3, "failed": 1, "rejected": 0}
    assert a["successRate"] == 0.75                                    # 3 applied / 4 decided
    assert a["filesTouched"] == ["src/a.py", "src/b.py", "src/c.py"]
    assert a["phases"] == ["build", "fix"] and a["factories"] == ["f1"]
    assert (a["firstActivityAt"], a["lastActivityAt"]) == (DAY + "10:00:00.000Z", DAY + "10:20:04.000Z")
    assert a["leadTimeSeconds"] == 1204.0                              # 10:00:00 -> 10:20:04
    assert a["changeFailureRate"] == 0.3333                            # 1 failed of 3 decided batches
    assert a["timeToRestore"] == {"meanSeconds": 602.0, "restored": 1, "unrestored": 0}  # 10:10:02 -> 10:20:04
    assert a["applyDurationMs"] == 540

    b = reports["ORD-B"]["summary"]
    assert b["batches"] == {"total": 2, "succeeded": 0, "failed": 2, "pending": 0}
    assert b["operations"] == {"requested": 2, "applied": 0, "failed": 1, "rejected": 1}
    assert b["successRate"] == 0.0 and b["changeFailureRate"] == 1.0
    assert b["leadTimeSeconds"] is None and b["filesTouched"] == []
    assert b["timeToRestore"] == {"meanSeconds": None, "restored": 0, "unrestored": 2}
    assert b["topErrors"] == [{"message": "FILE_NOT_FOUND: x.py", "count": 1},
                              {"message": "PATH_OUTSIDE_WORKSPACE", "count": 1}]

    md_a, md_b = reports["ORD-A"]["markdown"], reports["ORD-B"]["markdown"]
    for text in ("order ORD-A", "| Success rate | 75.0% |", "| Lead time (first request to last apply) | 20m 04s |",
                 "| Change failure rate | 33.3% |", "| Mean time to restore | 10m 02s (1 restored, 0 open) |",
                 "| Batches | 3 (2 succeeded, 1 failed, 0 pending) |", "- `src/c.py`", "1 x ANCHOR_NOT_FOUND"):
        assert text in md_a, text
    for text in ("| Success rate | 0.0% |", "| Change failure rate | 100.0% |",
                 "| Lead time (first request to last apply) | n/a |", "| Operations rejected | 1 |"):
        assert text in md_b, text

    events = [e for e in outbox.drain() if e["event"] == "report:generated"]
    assert sorted(e["data"]["orderId"] for e in events) == ["ORD-A", "ORD-B"]

    got = http.get("/api/delivery/reports?orderId=ORD-A", operator).json
    assert got["summary"] == a and got["markdown"] == md_a
    listed = http.get("/api/delivery/reports?limit=1", operator).json
    assert len(listed["items"]) == 1 and listed["nextToken"]


def test_regeneration_touches_only_orders_with_new_events(http, org, operator, outbox):
    write(org["orgId"], ORDER_A + ORDER_B)
    assert len(http.post("/api/delivery/reports/generate", operator, {}).json["items"]) == 2
    assert http.post("/api/delivery/reports/generate", operator, {}).json["items"] == []
    write(org["orgId"], [ev("B4", "applied", "12:00:00.000Z", "src/d.py", "append")])
    outbox.drain()
    again = http.get("/api/delivery/reports?generate=true", operator).json["items"]
    r = http.post("/api/delivery/reports/generate", operator, {"order_id": "ORD-A"})
    assert [x["orderId"] for x in r.json["items"]] == ["ORD-A"]
    assert r.json["items"][0]["summary"]["batches"]["total"] == 4
    assert len(again) == 2
    assert [e["data"]["orderId"] for e in outbox.drain() if e["event"] == "report:generated"] == ["ORD-A", "ORD-A"]


def test_unknown_order_and_bad_input(http, operator):
    assert http.get("/api/delivery/reports?orderId=NOPE", operator).status == 404
    assert http.post("/api/delivery/reports/generate", operator, {"orderId": "NOPE"}).status == 404
    assert http.post("/api/delivery/reports/generate", operator, {"orderId": "bad id!"}).status == 400
