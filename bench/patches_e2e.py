"""Patches on the local stack: end-to-end batches per second.

Run: .venv/bin/python bench/patches_e2e.py [--batches 120] [--workspaces 6] [--ops 5]

A fresh local stack (`python -m devstack`); the workspaces seeded with one 200-line file
each; then every batch submitted at once (one submitter thread per workspace, so batches of
a workspace are in a known order), each batch `--ops` operations (a marker replacement, a
line insertion, a search replacement, appends to new files). Figures: submit rate (202s/s),
and batches applied per second from the first submit to the last batch applied, with the
time from request to applied (p50/p99, from the batches' own requestedAt/finishedAt) and the
worker's time per batch (durationMs). Only each workspace's last batch is polled.

The local stack is one process whose moto serves one request at a time: the figure
measures the worker's AWS calls per batch more than anything about AWS.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.testing import running_devstack  # noqa: E402
from chalicelib.core import clock  # noqa: E402
from tests.e2e.client import call  # noqa: E402


def put_file(url, key, ws, path, text):
    request = urllib.request.Request(f"{url}/api/workspaces/{ws}/files?path={path}", data=text.encode(), method="PUT",
                                     headers={"content-type": "text/plain", "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30):
        pass


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--batches", type=int, default=120)
    p.add_argument("--workspaces", type=int, default=6)
    p.add_argument("--ops", type=int, default=5)
    args = p.parse_args()
    with running_devstack(app_module="app") as stack:
        org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "bench"}).json
        key = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "b", "scope": "operator"}).json["apiKey"]
        names = [f"ws{i}" for i in range(args.workspaces)]
        body = "".join(f"line {i}\n" for i in range(200))
        for ws in names:
            put_file(stack.url, key, ws, "main.txt", "###HEAD###\nhead\n###HEAD###\n" + body)
        per_ws = args.batches // len(names)
        submitted: dict[str, float] = {}
        order: dict[str, list[str]] = {}
        lock = threading.Lock()

        def submit(ws):
            for b in range(per_ws):
                ops = [{"op": "replace-block", "file": "main.txt", "anchor": {"marker": "###HEAD###"},
                        "content": f"###HEAD###\nhead {b}\n###HEAD###"},
                       {"op": "insert-after", "file": "main.txt", "anchor": {"line": 10}, "content": f"ins {b}"},
                       {"op": "replace-block", "file": "main.txt", "anchor": {"search": f"line {100 + b}\n"},
                        "content": f"LINE {100 + b}\n"}]
                ops += [{"op": "append", "file": f"gen/{b}-{i}.txt", "content": "x"} for i in range(args.ops - 3)]
                r = call(stack.url, "POST", "/api/patches/apply", key, {"workspace": ws, "factory": "bench",
                                                                         "operations": ops})
                assert r.status == 202, r.json
                with lock:
                    submitted[r.json["batchId"]] = time.perf_counter()
                    order.setdefault(ws, []).append(r.json["batchId"])

        started = time.perf_counter()
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(submit, names))
        submit_s = time.perf_counter() - started
        # poll only each workspace's last batch (batches of a workspace apply in order), so the
        # polling does not compete with the worker for the single-threaded local moto
        last = {ws: ids[-1] for ws, ids in order.items()}
        pending = set(last.values())
        while pending:
            for batch_id in list(pending):
                if call(stack.url, "GET", f"/api/patches/batches/{batch_id}", key).json["status"] != "queued":
                    pending.discard(batch_id)
            if pending:
                time.sleep(0.25)
        total_s = time.perf_counter() - started
        views = [call(stack.url, "GET", f"/api/patches/batches/{b}", key).json for b in submitted]
        assert {v["status"] for v in views} == {"applied"}, {v["status"] for v in views}
        latencies = sorted((clock.parse_iso(v["finishedAt"]) - clock.parse_iso(v["requestedAt"])) * 1000 for v in views)
        work = sorted(v["durationMs"] for v in views)
    n = len(submitted)
    print(f"{n} batches x {args.ops} operations over {len(names)} workspaces, all submitted at once")
    print(f"  submit: {n / submit_s:6.1f} batches/s (202)")
    print(f"  end to end: {n / total_s:6.1f} batches/s applied ({n * args.ops / total_s:.0f} operations/s), "
          f"{total_s:.1f} s in all")
    print(f"  requested -> applied (server times): p50 {statistics.median(latencies):.0f} ms, "
          f"p99 {latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]:.0f} ms (queueing included)")
    print(f"  worker time per batch (durationMs): p50 {statistics.median(work):.0f} ms, p99 {work[int(len(work) * 0.99)]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
