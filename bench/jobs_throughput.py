"""Jobs on the local stack: throughput with N concurrent agents, and request latency percentiles.

Run: .venv/bin/python bench/jobs_throughput.py [--agents 1,5,20] [--jobs 200] [--concurrency 2] [--no-calls]

Prints, in one run: the AWS calls per job lifecycle beside the lower bound
(bench/jobs_calls.py, in-process moto), then for each N a fresh local stack
(`python -m devstack`), N reference agents (half of
them sharing a pool; each runs `--concurrency` jobs at once), `--jobs` jobs
queued first (half direct, half pool), then the agents started together. Each
job reports progress once and completes. Figures: jobs/s from the agents'
start to the last completion, p50/p99 of poll, progress and complete as the
agents saw them (HTTP round trip), and lease-check messages sent per job (one
per claim attempt, so above 1.0 = claims lost to a concurrent poll).

The local stack is one Python process whose DynamoDB (moto) serves one request
at a time, so these figures measure the app's cost per job in AWS calls more
than anything about AWS; see docs/JOBS.md for how to read them.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent import Agent, Client  # noqa: E402
from devstack.testing import running_devstack  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_once(n_agents: int, n_jobs: int, concurrency: int) -> dict:
    with running_devstack(app_module="app", env={"JOBS_IDLE_POLL_SECONDS": "1"}) as stack:
        admin = Client(stack.url, stack.admin_api_key)
        org = admin.request("POST", "/orgs", {"name": "bench"})
        ops = Client(stack.url, org["adminKey"]).request("POST", "/keys", {"name": "ops", "scope": "operator"})["apiKey"]
        operator = Client(stack.url, ops)
        latencies: dict[str, list[float]] = defaultdict(list)
        lock = threading.Lock()

        def record(method: str, path: str, seconds: float, status: int) -> None:
            if status and status < 400:
                with lock:
                    latencies[f"{method} {path}"].append(seconds)

        def work(job):
            job.progress(50, "half way")
            return {"ok": True}

        agents = []
        for i in range(n_agents):
            created = operator.register_agent(f"bench-{i}", ["bench"] if i < max(1, n_agents // 2) else [])
            client = Client(stack.url, created["apiKey"], on_request=record)
            agents.append(Agent(client, created["agentId"], {"work": work}, concurrency=concurrency))

        create_times: list[float] = []

        def create(i: int) -> None:
            started = time.monotonic()
            options = {"idempotency_key": f"b-{i}"}
            if i % 2:
                operator.create_job("work", {"i": i}, pool="bench", **options)
            else:
                operator.create_job("work", {"i": i}, agent_id=agents[(i // 2) % n_agents].agent_id, **options)
            create_times.append(time.monotonic() - started)

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(n_jobs)))
        create_rate = n_jobs / (time.monotonic() - started)
        started = time.monotonic()
        for agent in agents:
            agent.start()
        deadline = started + 600
        while sum(a.stats["completed"] for a in agents) < n_jobs:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {sum(a.stats['completed'] for a in agents)} of {n_jobs} completed")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        for agent in agents:
            agent.stop(wait=False)
        sqs = stack.aws("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=stack.environment["JOBS_QUEUE_URL"], AttributeNames=["All"])
        messages = sum(int(attrs["Attributes"][k]) for k in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"))
        ms = {name: [1000 * v for v in values] for name, values in latencies.items()}
        return {
            "agents": n_agents, "jobs": n_jobs, "jobs/s": n_jobs / elapsed, "creates/s": create_rate,
            "create p50": 1000 * statistics.median(create_times), "create p99": 1000 * percentile(create_times, 99),
            "polls": sum(a.stats["polls"] for a in agents),
            **{f"{label} p50": percentile(ms.get(key, []), 50) for label, key in _KEYS},
            **{f"{label} p99": percentile(ms.get(key, []), 99) for label, key in _KEYS},
            "checks/job": messages / n_jobs,
        }


_KEYS = (("poll", "GET /jobs/poll"), ("progress", "POST /jobs/progress"), ("complete", "POST /jobs/complete"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1,5,20")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--no-calls", action="store_true", help="skip the AWS call counts")
    args = parser.parse_args()
    if not args.no_calls:
        subprocess.run([sys.executable, str(ROOT / "bench" / "jobs_calls.py")], check=True)
        print()
    rows = []
    for n in (int(x) for x in args.agents.split(",")):
        result = run_once(n, args.jobs, args.concurrency)
        rows.append(result)
        print(f"  ... {n} agents: {result['jobs/s']:.1f} jobs/s", file=sys.stderr, flush=True)
    from common import table  # noqa: E402 - bench/common.py, once the stacks are done

    print(f"Local stack throughput: {args.jobs} jobs (half direct, half pool), agents run {args.concurrency} "
          f"jobs at once, each job = claim + 1 progress + complete; latencies in ms (HTTP round trip)\n")
    headers = ("agents", "jobs/s", "poll p50", "poll p99", "progress p50", "progress p99", "complete p50",
               "complete p99", "create p50", "create p99", "polls", "checks/job")
    print(table([tuple(_fmt(r[h]) for h in headers) for r in rows], headers))


def _fmt(value) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
