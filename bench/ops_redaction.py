"""Ops scan: the CPU cost of redacting and quoting what it files (issue 18), beside the grouping it already does.

Per failure, the scan now redacts the message, subject, traceback and where-values when it reads it
(rules.Failure) and, per filed group, quotes every field of the body. Printed beside the baseline from the
same run: the normalization the scan did before (rules.group_key), and a body built from text without
hostile content. Pure Python, no AWS.

    python bench/ops_redaction.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.core.redaction import redact  # noqa: E402
from chalicelib.ops import rules  # noqa: E402
from chalicelib.ops.rules import Failure  # noqa: E402
from tests.support import hostile  # noqa: E402

ORDINARY = "EXIT_CODE: step compile exited 2 on worker7 after 49s (job 01KB0R8D2E6F0G4H8J2K6M0N4P) from 10.0.3.17:443"
SECRETS = " ".join(text for text, _ in hostile.SECRETS.values())
TRACE = ("Traceback (most recent call last):\n"
         + "".join(f'  File "/var/task/chalicelib/m{i}.py", line {i}, in f{i}\n    call()\n' for i in range(40))
         + "RuntimeError: " + ORDINARY)


def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    rows = [
        ("baseline: normalize an ordinary message (as before)", per_call_us(lambda: rules.normalize(ORDINARY), 20_000)),
        ("redact an ordinary message (~110 chars)", per_call_us(lambda: redact(ORDINARY), 20_000)),
        ("redact a message holding every secret shape", per_call_us(lambda: redact(SECRETS), 2_000)),
        ("redact a 40-frame traceback (~2.7 KB)", per_call_us(lambda: redact(TRACE), 2_000)),
        ("redact 190 KB of traceback", per_call_us(lambda: redact(TRACE * 70), 10)),
        ("Failure(...) with traceback, where (redacts 4 fields)", per_call_us(
            lambda: Failure(rules.JOB, "J", "2026-12-01T00:00:00Z", ORDINARY, "o", "build", TRACE, "c",
                            (("agent", "A"), ("job", "J"), ("pool", "p"))), 2_000)),
    ]
    group = _group(ORDINARY)
    hostile_group = _group(hostile.HOSTILE + " " + SECRETS)
    rows += [
        ("issue body, ordinary failure", per_call_us(lambda: rules.issue_body(group, b"k"), 500)),
        ("issue body, hostile failure (markup, secrets)", per_call_us(lambda: rules.issue_body(hostile_group, b"k"), 500)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'operation'.ljust(width)}  us per call")
    print(f"{'-' * width}  -----------")
    for name, us in rows:
        print(f"{name.ljust(width)}  {us:11.1f}")


def _group(message: str) -> dict:
    failures = [(Failure(rules.JOB, f"J{i}", f"2026-12-01T0{i}:00:00Z", message, "o", "build", TRACE, "c",
                         (("agent", "A"), ("job", f"J{i}"), ("pool", "p"))), True) for i in range(5)]
    (agg,) = rules.aggregate(failures).values()
    state = rules.merge(None, agg)
    return {"fingerprint": agg.fingerprint, "kind": agg.kind, "key": agg.key, "title": agg.title,
            "severity": state.severity, "count": state.count, "firstSeen": state.first_seen,
            "lastSeen": state.last_seen, "samples": state.samples, "traceback": state.traceback}


if __name__ == "__main__":
    main()
