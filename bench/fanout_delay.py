"""Event delay by number of open sockets, and keep-alive against fresh-connection latency, on the real local stack.

    .venv/bin/python bench/fanout_delay.py [--sockets 0,100,300,1000] [--rounds 3]

For each count N: N WebSockets of one organization are open (plus one
observer); POST /jobs emits job:queued; the delay is from sending the POST
to the moment the LAST socket has the event (the observer's alone at N=0).
POST /jobs latency is measured beside it (it must stay flat in N).
Then: GET /health and an authenticated GET /keys, each 50 times on one
keep-alive connection and 50 times on a fresh connection per request.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect  # noqa: E402

from devstack.testing import running_devstack  # noqa: E402


def post(url: str, path: str, key: str, body: dict) -> tuple[int, dict, float]:
    host = urllib.parse.urlsplit(url).netloc
    conn = http.client.HTTPConnection(host, timeout=60)
    started = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read() or b"null")
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, payload, elapsed


async def open_sockets(ws_base: str, key: str, count: int, batch: int = 50) -> list:
    sockets = []

    async def one():
        ws = await connect(f"{ws_base}/ws?token={key}", open_timeout=60, max_queue=None)
        first = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert first["event"] == "system:connected", first
        return ws

    for start in range(0, count, batch):  # API Gateway admits 500 new connections/s: open in batches
        sockets += await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
    return sockets


async def measure(url: str, key: str, sockets: list, rounds: int) -> tuple[list[float], list[float]]:
    delays, latencies = [], []
    loop = asyncio.get_running_loop()
    for i in range(rounds):
        sent = time.perf_counter()
        waiters = [asyncio.create_task(wait_for_job_any(ws)) for ws in sockets]
        status, job, latency = await loop.run_in_executor(
            None, post, url, "/jobs", key, {"pool": "bench", "type": "noop", "payload": {"round": i}})
        assert status == 201, job
        done, pending = await asyncio.wait(waiters, timeout=60)
        for task in pending:
            task.cancel()
        arrivals = [task.result() for task in done if task.exception() is None]
        assert all(a[1] == job["jobId"] for a in arrivals), "a socket got another job first"
        if len(arrivals) < len(sockets):
            print(f"  round {i}: {len(arrivals)} of {len(sockets)} sockets had the event within 60 s", flush=True)
        delays.append(max(a[0] for a in arrivals) - sent if arrivals else float("inf"))
        latencies.append(latency)
    return delays, latencies


async def wait_for_job_any(ws) -> tuple[float, str]:
    while True:
        message = json.loads(await ws.recv())
        if message["event"] == "job:queued":
            return time.perf_counter(), message["data"]["jobId"]


def keep_alive_vs_fresh(url: str, key: str, n: int = 50) -> list[tuple[str, float, float]]:
    host = urllib.parse.urlsplit(url).netloc
    rows = []
    for label, path, headers in (("GET /health", "/health", {}),
                                 ("GET /keys (auth)", "/keys?limit=5", {"Authorization": f"Bearer {key}"})):
        kept = http.client.HTTPConnection(host, timeout=30)
        reused, fresh = [], []
        for _ in range(n):
            started = time.perf_counter()
            kept.request("GET", path, headers=headers)
            kept.getresponse().read()
            reused.append(time.perf_counter() - started)
        kept.close()
        for _ in range(n):
            started = time.perf_counter()
            conn = http.client.HTTPConnection(host, timeout=30)
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
            conn.close()
            fresh.append(time.perf_counter() - started)
        rows.append((label, statistics.median(reused) * 1000, statistics.median(fresh) * 1000))
    return rows


async def run(counts: list[int], rounds: int) -> None:
    with running_devstack(app_module="app", timeout=120) as stack:
        root = stack.admin_api_key
        _, org, _ = post(stack.url, "/orgs", root, {"name": "bench"})
        key = org["adminKey"]
        ws_base = stack.url.replace("http://", "ws://", 1)
        rows = []
        open_now: list = []
        for count in counts:
            opened = time.perf_counter()
            open_now += await open_sockets(ws_base, key, count + 1 - len(open_now))
            open_seconds = time.perf_counter() - opened
            delays, latencies = await measure(stack.url, key, open_now, rounds)
            rows.append((count, statistics.median(delays) * 1000, max(delays) * 1000,
                         statistics.median(latencies) * 1000, open_seconds))
            print(f"  {count:>5} sockets: delay median {rows[-1][1]:7.0f} ms, max {rows[-1][2]:7.0f} ms, "
                  f"POST /jobs {rows[-1][3]:6.0f} ms", flush=True)
        kept = keep_alive_vs_fresh(stack.url, key)
        problems = [line for line in stack.log_path.read_text(errors="replace").splitlines()
                    if "ERROR" in line or "failed" in line]
        if problems:
            print(f"\n{len(problems)} error lines in the stack log, the first: {problems[:3]}")
        for ws in open_now:
            await ws.close()
    print("\nEvent delay (POST /jobs sent -> job:queued on the last open socket), median of", rounds, "rounds\n")
    print(f"{'open sockets':>12}  {'delay median':>12}  {'delay max':>9}  {'POST /jobs':>10}")
    for count, median, worst, latency, _ in rows:
        print(f"{count:>12}  {median:>9.0f} ms  {worst:>6.0f} ms  {latency:>7.0f} ms")
    print("\nRequest latency, median of 50: one keep-alive connection vs a fresh connection per request\n")
    print(f"{'request':<18}  {'keep-alive':>10}  {'fresh':>8}")
    for label, reused, fresh in kept:
        print(f"{label:<18}  {reused:>7.1f} ms  {fresh:>5.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", default="0,100,300,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run([int(c) for c in args.sockets.split(",")], args.rounds))


if __name__ == "__main__":
    main()
