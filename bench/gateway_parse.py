"""CPU of the gateway's store validation (edge_gateway.api.parse_store) beside bare json.loads.

parse_store checks every number as the control plane would (issue 18: no NaN,
no Infinity, no 1e400, nothing DynamoDB cannot store), through json.loads'
parse_int/parse_float hooks, a Python call per number. Printed beside, from
the same run: json.loads of the same body with no hooks (the floor), and with
the hooks alone. CPU time (time.process_time), best of many rounds, so other
load on the machine moves the numbers less.
"""
from __future__ import annotations

import json
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_gateway import api  # noqa: E402

ROUNDS, CALLS = 40, 200


def main() -> None:
    body = json.dumps({"table": "temps", "records": [
        {"c": 21.5 + i, "n": i, "host": f"srv-{i}", "vals": [1.25, 2, 3.5, 123456789]} for i in range(100)]}).encode()
    hooks = api._Numbers()
    candidates = {
        "json.loads, no hooks (floor)": lambda: json.loads(body),
        "json.loads with the number hooks": lambda: json.loads(body, parse_constant=hooks.constant,
                                                                parse_float=hooks.float, parse_int=hooks.int),
        "parse_store (hooks, table, ids, sizes)": lambda: api.parse_store(body, 1_700_000_000_000),
    }
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, run in candidates.items():
            spent = timeit.timeit(run, number=CALLS, timer=time.process_time) / CALLS
            best[name] = min(best.get(name, spent), spent)
    print(f"one store of 100 records, 600 numbers, {len(body)} bytes; CPU per store, best of {ROUNDS} x {CALLS}:")
    for name, spent in best.items():
        print(f"  {name:<42} {spent * 1e6:7.0f} us")


if __name__ == "__main__":
    main()
