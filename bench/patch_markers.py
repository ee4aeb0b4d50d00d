"""Patches: what a hostile marker costs, unbounded (the `regex` module on its own, as before the
bounds) beside the engine's bounds (engine.compile_marker: the checks, then a bounded cache).

Each pattern is compiled in a fresh child process, so the peak memory it adds (ru_maxrss) is
its own. Then one batch: 12 operations whose marker passes the checks but backtracks
polynomially on a 3,000-character line, with one regex budget per batch (BATCH_REGEX_SECONDS)
beside only the per-op timeout (the budget set as large as 12 per-op timeouts).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
pattern, bounded = sys.argv[1], sys.argv[2] == "1"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if bounded:
    from patch_engine import engine
    engine.compile_marker("warm(up)?")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        engine.compile_marker(pattern)
        outcome = "compiled"
    except engine.OpError as e:
        outcome = "refused: " + str(e)[:60]
else:
    import regex
    regex.compile("warm(up)?", cache_pattern=False)  # the module's first-use cost is not the pattern's
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        regex.compile(pattern)
        outcome = "compiled"
    except BaseException as e:
        outcome = type(e).__name__
took = time.perf_counter() - started
print(json.dumps({{"outcome": outcome, "ms": took * 1000,
                  "mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}}))
"""

PATTERNS = [
    ("(?: x 200 ... ) x 200", "(?:" * 200 + "a" + ")" * 200),
    ("(?:a{1000}){1000}", "(?:a{1000}){1000}"),
    ("(a|a)+$", "(a|a)+$"),
    ("worst allowed: (?:a{990}b){2}", "(?:a{990}b){2}"),
    (r"worst allowed: (?:\p{L}{980}){2}", r"(?:\p{L}{980}){2}"),
]


def compile_in_child(pattern: str, bounded: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), pattern, "1" if bounded else "0"],
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout)


def main() -> None:
    print(f"{'pattern':36} {'unbounded (regex.compile)':>38} {'bounded (engine.compile_marker)':>46}")
    for name, pattern in PATTERNS:
        raw, ours = compile_in_child(pattern, False), compile_in_child(pattern, True)
        print(f"{name:36} {raw['outcome'][:16]:>16} {raw['ms']:8.1f} ms {raw['mb']:7.1f} MB   "
              f"{ours['outcome'][:24]:>24} {ours['ms']:8.1f} ms {ours['mb']:7.1f} MB")

    sys.path.insert(0, str(ROOT))
    from patch_engine import engine

    text = {"f.txt": ("a" * 3000 + "c\n").encode()}
    ops = [{"op": "replace-block", "file": "f.txt", "anchor": {"marker": r"a*a*a*a*a*a*a*[ab]$"}, "content": "X"}
           for _ in range(12)]
    for label, seconds in (("per-op timeout only", 12 * engine.MARKER_TIMEOUT_SECONDS),
                           ("one budget per batch", engine.BATCH_REGEX_SECONDS)):
        started = time.perf_counter()
        outcome = engine.apply_batch(ops, text.get, regex_seconds=seconds)
        took = time.perf_counter() - started
        codes = sorted({r.code or "ok" for r in outcome.results})
        print(f"12 slow markers, {label:22} {took:6.2f} s   regex time {outcome.regex_seconds:6.2f} s   {codes}")


if __name__ == "__main__":
    main()
