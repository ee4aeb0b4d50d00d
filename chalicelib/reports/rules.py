"""Delivery report figures for one order, from its patch events (pure: no store, no AWS).

An event is a PatchEvent (chalicelib/patches/models.py) or a dict of the same
fields: {eventId, batchId, taskId, orderId, factory, phase, file, op,
status: requested|applied|failed|rejected, error?, at, durationMs}.

Definitions (docs/OPS.md repeats them beside a sample):
- batches: distinct batchIds. A batch *failed* when any of its events is
  failed or rejected (a batch is atomic), *succeeded* when it has an applied
  event and no failure, and is *pending* otherwise (requested only).
- operations: events counted by status (requested, applied, failed, rejected).
- successRate: applied / (applied + failed + rejected) operations; null when none decided.
- filesTouched: distinct files of applied operations; phases and factories: distinct, of every event.
- firstActivityAt / lastActivityAt: earliest / latest event time.
- leadTimeSeconds: from the first requested event (else the first event) to the
  last applied event; null without an applied event.
- changeFailureRate: failed batches / decided (failed + succeeded) batches.
- timeToRestore: for each failed batch, from its last failure to the first
  applied event after it (the next successful change); meanSeconds over the
  restored ones, and how many are not restored yet.
"""
from __future__ import annotations

from typing import Any, Iterable

from chalicelib.core.clock import parse_iso

DECIDED = ("applied", "failed", "rejected")


FIELDS = ("eventId", "batchId", "factory", "phase", "file", "op", "status", "error", "at", "durationMs")


def _row(event: Any) -> dict[str, Any]:
    """A PatchEvent (pydantic, snake_case attributes) or a dict in the contract's camelCase: the fields
    above, absent ones None."""
    data = event if isinstance(event, dict) else event.model_dump(by_alias=True)
    return {k: data.get(k) for k in FIELDS}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(start: str, end: str) -> float:
    return round(parse_iso(end) - parse_iso(start), 3)


def summarize(order_id: str, events: Iterable[Any]) -> dict[str, Any]:
    rows = sorted((_row(e) for e in events), key=lambda r: (r["at"] or "", r["eventId"] or ""))
    ops = {s: 0 for s in ("requested", "applied", "failed", "rejected")}
    batches: dict[str, dict[str, Any]] = {}
    for r in rows:
        ops[r["status"]] = ops.get(r["status"], 0) + 1
        b = batches.setdefault(r["batchId"], {"applied": False, "failed": False, "lastFailureAt": None})
        if r["status"] == "applied":
            b["applied"] = True
        elif r["status"] in ("failed", "rejected"):
            b["failed"] = True
            b["lastFailureAt"] = r["at"]
    failed_batches = [bid for bid, b in batches.items() if b["failed"]]
    succeeded = [bid for bid, b in batches.items() if b["applied"] and not b["failed"]]
    decided_ops = sum(ops[s] for s in DECIDED)
    applied_at = [r["at"] for r in rows if r["status"] == "applied"]
    requested_at = [r["at"] for r in rows if r["status"] == "requested"]

    restores: list[float] = []
    unrestored = 0
    for bid in failed_batches:
        failed_at = batches[bid]["lastFailureAt"]
        after = [at for at, r in ((r["at"], r) for r in rows)
                 if r["status"] == "applied" and at > failed_at and r["batchId"] not in failed_batches]
        if after:
            restores.append(_seconds(failed_at, min(after)))
        else:
            unrestored += 1

    errors: dict[str, int] = {}
    for r in rows:
        if r["status"] in ("failed", "rejected") and r["error"]:
            errors[str(r["error"])] = errors.get(str(r["error"]), 0) + 1

    first = rows[0]["at"] if rows else None
    last = rows[-1]["at"] if rows else None
    start = requested_at[0] if requested_at else first
    return {
        "orderId": order_id,
        "events": len(rows),
        "batches": {"total": len(batches), "succeeded": len(succeeded), "failed": len(failed_batches),
                    "pending": len(batches) - len(succeeded) - len(failed_batches)},
        "operations": ops,
        "successRate": _ratio(ops["applied"], decided_ops),
        "filesTouched": sorted({r["file"] for r in rows if r["status"] == "applied" and r["file"]}),
        "phases": sorted({r["phase"] for r in rows if r["phase"]}),
        "factories": sorted({r["factory"] for r in rows if r["factory"]}),
        "firstActivityAt": first,
        "lastActivityAt": last,
        "leadTimeSeconds": _seconds(start, applied_at[-1]) if applied_at and start else None,
        "changeFailureRate": _ratio(len(failed_batches), len(failed_batches) + len(succeeded)),
        "timeToRestore": {"meanSeconds": round(sum(restores) / len(restores), 3) if restores else None,
                          "restored": len(restores), "unrestored": unrestored},
        "applyDurationMs": sum(int(r["durationMs"] or 0) for r in rows if r["status"] == "applied"),
        "topErrors": [{"message": m, "count": c} for m, c in sorted(errors.items(), key=lambda x: (-x[1], x[0]))[:5]],
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m {sec:02d}s" if h else f"{m}m {sec:02d}s"


def markdown(summary: dict[str, Any], generated_at: str) -> str:
    """The report a person pastes into a ticket."""
    s, b, o, t = summary, summary["batches"], summary["operations"], summary["timeToRestore"]
    lines = [
        f"## Delivery report: order {s['orderId']}",
        "",
        f"_Generated {generated_at}; activity {s['firstActivityAt'] or 'n/a'} to {s['lastActivityAt'] or 'n/a'}._",
        "",
        "| Measure | Value |",
        "|---|---|",
        f"| Batches | {b['total']} ({b['succeeded']} succeeded, {b['failed']} failed, {b['pending']} pending) |",
        f"| Operations applied | {o['applied']} |",
        f"| Operations failed | {o['failed']} |",
        f"| Operations rejected | {o['rejected']} |",
        f"| Success rate | {_pct(s['successRate'])} |",
        f"| Lead time (first request to last apply) | {_duration(s['leadTimeSeconds'])} |",
        f"| Change failure rate | {_pct(s['changeFailureRate'])} |",
        f"| Mean time to restore | {_duration(t['meanSeconds'])} ({t['restored']} restored, {t['unrestored']} open) |",
        "",
        f"**Factories:** {', '.join(s['factories']) or 'none'}  ",
        f"**Phases:** {', '.join(s['phases']) or 'none'}",
        "",
        f"**Files touched ({len(s['filesTouched'])}):**",
        "",
        *[f"- `{f}`" for f in s["filesTouched"]],
    ]
    if s["topErrors"]:
        lines += ["", "**Errors:**", "", *[f"- {e['count']} x {e['message']}" for e in s["topErrors"]]]
    return "\n".join(lines) + "\n"
