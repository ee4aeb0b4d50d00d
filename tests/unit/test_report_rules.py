"""Report figures on PatchEvent-shaped dicts (the contract's camelCase), edge cases."""
from chalicelib.reports import rules


def e(batch, status, at, file=None, error=None, ms=0):
    return {"eventId": f"{batch}-{status}-{at}", "batchId": batch, "orderId": "O", "factory": "f", "phase": "p",
            "file": file, "op": "append" if file else None, "status": status, "error": error,
            "at": f"2026-12-01T{at}Z", "durationMs": ms}


def test_pending_batch_and_restores():
    events = [
        e("A", "requested", "08:00:00.000"),
        e("A", "failed", "08:00:01.000", "x", "FILE_NOT_FOUND: x"),
        e("B", "requested", "08:01:00.000"),
        e("B", "failed", "08:01:30.000", "x", "FILE_NOT_FOUND: x"),
        e("C", "requested", "08:02:00.000"),
        e("C", "applied", "08:03:00.000", "x", ms=40),
        e("D", "requested", "08:04:00.000"),   # still queued
    ]
    s = rules.summarize("O", events)
    assert s["batches"] == {"total": 4, "succeeded": 1, "failed": 2, "pending": 1}
    assert s["successRate"] == 0.3333 and s["changeFailureRate"] == 0.6667
    # A: 08:00:01 -> 08:03:00 = 179 s; B: 08:01:30 -> 08:03:00 = 90 s
    assert s["timeToRestore"] == {"meanSeconds": 134.5, "restored": 2, "unrestored": 0}
    assert s["leadTimeSeconds"] == 180.0
    assert s["topErrors"] == [{"message": "FILE_NOT_FOUND: x", "count": 2}]


def test_no_events():
    s = rules.summarize("O", [])
    assert s["batches"]["total"] == 0 and s["successRate"] is None and s["leadTimeSeconds"] is None
    assert "| Success rate | n/a |" in rules.markdown(s, "now")
