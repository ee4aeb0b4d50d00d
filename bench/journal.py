"""What the local stack's journal (devstack/journal.py) costs per mutating call, beside the same stack without it.

Run: .venv/bin/python bench/journal.py [--items 10000] [--posts 300] [--clients 8]

In one run, two local stacks (`python -m devstack` with a state directory on
this disk), each seeded with `--items` job-shaped items (BatchWriteItem
straight into its DynamoDB, as the issue's 13,434-item stack held):

* journal on (the default): every mutating AWS call is fsynced before moto
  answers, concurrent calls sharing one fsync; snapshots every 60 s;
* journal off (DEVSTACK_JOURNAL=0): snapshots only, at most every 0.5 s
  while something changes (a kill -9 loses what came after the last one);
* no state (`--no-state`, what the e2e tests run): neither journal nor
  snapshots, so the journal's own cost per call is its row minus this one.

All three run at once and are measured in alternating slices (so a loaded,
shared machine weighs on each alike). For each: `POST /jobs` (with an
Idempotency-Key; 1 TransactWriteItems plus reads) latency one at a time
(p50/p95) and throughput from `--clients` concurrent clients; the journal's records, fsyncs and calls per fsync from
the stack's log at its clean stop. And the journal alone, in this process:
one append + commit (fdatasync) of a job-sized record, single-threaded.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, table  # noqa: F401 - sets sys.path

from devstack import journal
from devstack.testing import running_devstack
from tests.e2e.client import call


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def seed(stack, count: int) -> None:
    client, name = stack.aws("dynamodb"), stack.environment["MAIN_TABLE"]

    def batch(first: int) -> None:
        items = [{"PutRequest": {"Item": {
            "PK": {"S": f"ORG#bench#JOB#{n:06d}"}, "SK": {"S": "JOB"}, "status": {"S": "QUEUED"},
            "payloadJson": {"S": '{"seconds": 5}' * 8}, "GSI1PK": {"S": "ORG#bench#JOBS"}, "GSI1SK": {"S": f"{n:06d}"}}}}
            for n in range(first, min(first + 25, count))]
        while items:
            items = client.batch_write_item(RequestItems={name: items}).get("UnprocessedItems", {}).get(name, [])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(batch, range(0, count, 25)))


def post(url: str, key: str, idempotency_key: str) -> float:
    started = time.perf_counter()
    reply = call(url, "POST", "/jobs", key, {"pool": "bench", "type": "j", "payload": {"k": idempotency_key}},
                 headers={"Idempotency-Key": idempotency_key})
    assert reply.status == 201, reply.json
    return time.perf_counter() - started


CONFIGS = (("journal on", "1", "on"), ("journal off (DEVSTACK_JOURNAL=0)", "0", "off"),
           ("no state (--no-state)", "0", None))


def burst(url: str, key: str, label: str, count: int, clients: int) -> tuple[list[float], float]:
    counter = iter(range(count))
    lock = threading.Lock()
    took: list[float] = []

    def client() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            t = post(url, key, f"{label}-{n}")
            with lock:
                took.append(t)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took, time.perf_counter() - started


def measure_all(items: int, posts: int, clients: int, state_root: Path, rounds: int = 6) -> list[dict]:
    """All three stacks up at once, measured in alternating slices: the machine's load falls on each alike."""
    with contextlib.ExitStack() as stacks:
        runs = []
        for label, switch, state in CONFIGS:
            stack = stacks.enter_context(running_devstack(
                state_dir=state_root / state if state else None, env={"DEVSTACK_JOURNAL": switch}))
            seed(stack, items)
            key = call(stack.url, "POST", "/keys", stack.admin_api_key, {"name": "b", "scope": "operator"}).json["apiKey"]
            for n in range(20):  # warm: imports, connections, caches
                post(stack.url, key, f"warm-{n}")
            runs.append({"label": label, "stack": stack, "key": key, "serial": [], "concurrent": [], "seconds": 0.0})
        for round_no in range(rounds):
            for run in runs:
                run["serial"] += [post(run["stack"].url, run["key"], f"s{round_no}-{n}") for n in range(posts // rounds)]
            for run in runs:
                took, seconds = burst(run["stack"].url, run["key"], f"c{round_no}", 2 * posts // rounds, clients)
                run["concurrent"] += took
                run["seconds"] += seconds
        for run in runs:
            stack = run.pop("stack")
            assert stack.stop(signal.SIGINT) == 0, stack.log_tail()
            found = re.search(r"journal: (\d+) records in (\d+) fsyncs", stack.log_tail(400))
            run["records"], run["fsyncs"] = (int(found.group(1)), int(found.group(2))) if found else (None, None)
    return runs


def journal_alone(rounds: int = 2000) -> float:
    """One append + commit of a job-sized record (a TransactWriteItems' after-images), single-threaded."""
    record = {"d": [["MainTableName", {"PK": {"S": "ORG#o#JOB#x"}, "SK": {"S": "JOB"}},
                     {"PK": {"S": "ORG#o#JOB#x"}, "SK": {"S": "JOB"}, "payloadJson": {"S": "x" * 200},
                      "status": {"S": "QUEUED"}, "createdAt": {"S": "2026-01-01T00:00:00.000Z"}}]] * 3}
    with tempfile.TemporaryDirectory(dir=ROOT / ".devstack" if (ROOT / ".devstack").is_dir() else None) as tmp:
        wal = journal.Journal(Path(tmp), 1)
        started = time.perf_counter()
        for _ in range(rounds):
            wal.commit(wal.append(lambda: record))
        took = (time.perf_counter() - started) / rounds
        wal.close()
    return took


def replay_rate(records: int = 20_000) -> tuple[float, float]:
    """Replay at start: `records` job-sized records (one item each) into a freshly deployed in-process moto."""
    from moto import mock_aws

    from infra.stack import deploy

    item = {"SK": {"S": "JOB"}, "status": {"S": "QUEUED"}, "payloadJson": {"S": '{"seconds": 5}' * 8},
            "GSI1PK": {"S": "ORG#bench#JOBS"}, "createdAt": {"S": "2026-01-01T00:00:00.000Z"}}
    with mock_aws(), tempfile.TemporaryDirectory(dir=ROOT / ".devstack") as tmp:
        outputs = deploy("cp-bench-replay")
        wal = journal.Journal(Path(tmp), 1)
        for n in range(records):
            pk = {"PK": {"S": f"ORG#bench#JOB#{n:06d}"}}
            wal.append(lambda pk=pk: {"d": [["MainTableName", {**pk, "SK": {"S": "JOB"}}, {**pk, **item}]]})
        wal.close()
        size = journal.segment_path(Path(tmp), 1).stat().st_size
        started = time.perf_counter()
        counts = journal.replay(Path(tmp), outputs, 0)
        took = time.perf_counter() - started
        assert counts["records"] == records
    return took, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    (ROOT / ".devstack").mkdir(exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=ROOT / ".devstack", prefix="bench-journal-") as tmp:
        for r in measure_all(args.items, args.posts, args.clients, Path(tmp)):
            per_fsync = f"{r['records'] / r['fsyncs']:.1f}" if r["records"] and r["fsyncs"] else "-"
            serial, concurrent = r["serial"], r["concurrent"]
            rows.append((r["label"], f"{percentile(serial, 50) * 1000:.1f} ms", f"{percentile(serial, 95) * 1000:.1f} ms",
                         f"{len(concurrent) / r['seconds']:.0f}/s", f"{percentile(concurrent, 50) * 1000:.0f} ms",
                         f"{percentile(concurrent, 95) * 1000:.0f} ms", r["records"] or "-", r["fsyncs"] or "-",
                         per_fsync))
    print(f"POST /jobs (Idempotency-Key) on the local stack holding {args.items:,} items; "
          f"{args.posts} one at a time, then {args.posts * 2} from {args.clients} clients\n")
    print(table(rows, ("stack", "p50", "p95", f"{args.clients} clients", "p50", "p95",
                       "journal records", "fsyncs", "records/fsync")))
    print(f"\njournal alone: append + commit (fdatasync) of a job-sized record, one thread: "
          f"{journal_alone() * 1e6:.0f} us")
    took, size = replay_rate()
    print(f"replay at start: 20,000 job-sized records ({size / 1e6:.1f} MB) in {took * 1000:.0f} ms "
          f"(a segment is checkpointed at 16 MB)")
    print("journal off loses acknowledged writes on kill -9 (issue 18: 31 of 61; "
          "tests/e2e/test_local_journal.py with DEVSTACK_JOURNAL=0: all of them); journal on: none")


if __name__ == "__main__":
    main()
