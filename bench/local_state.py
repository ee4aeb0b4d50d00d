"""What keeping the local stack's state costs (devstack/persistence.py), beside what it protects.

The stack snapshots moto's tables, queues and buckets off the request path (a
checkpoint every 60 s with the journal, every 0.5 s without it); the journal's
cost per mutating call is bench/journal.py's. Printed: the change counter's
cost per request, and one snapshot's and one restore's duration and size as the
main table grows (the snapshot holds the DynamoDB lock while it copies the
items, so that is how long a request may wait behind it).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from common import table  # noqa: F401 - sets sys.path and the AWS test environment

import boto3

from devstack import persistence
from devstack.moto_server import EmbeddedMoto

SIZES = (1_000, 5_000, 10_000)


def fill(client, table_name: str, start: int, count: int) -> None:
    for first in range(start, start + count, 25):
        client.batch_write_item(RequestItems={table_name: [
            {"PutRequest": {"Item": {"PK": {"S": f"ORG#bench#JOB#{n:06d}"}, "SK": {"S": "JOB"},
                                     "status": {"S": "QUEUED"}, "payloadJson": {"S": '{"seconds": 5}' * 8},
                                     "GSI1PK": {"S": "ORG#bench#JOBS"}, "GSI1SK": {"S": f"{n:06d}"}}}}
            for n in range(first, min(first + 25, start + count))]})


def counter_cost() -> float:
    counter = persistence.ChangeCounter(lambda environ, start_response: [b""])
    environ = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem", "REQUEST_METHOD": "POST"}
    rounds = 100_000
    started = time.perf_counter()
    for _ in range(rounds):
        counter(environ, None)
    return (time.perf_counter() - started) / rounds


def main() -> None:
    moto = EmbeddedMoto()
    moto.start()
    os.environ["AWS_ENDPOINT_URL"] = moto.url
    from infra import stack

    outputs = stack.deploy("cp-bench-state")
    client = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    for n in range(100):  # some delayed lease checks, as a running stack has
        sqs.send_message(QueueUrl=outputs["JobsQueueUrl"], MessageBody=f'{{"n": {n}}}', DelaySeconds=n % 60)
    rows, filled = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        state = persistence.StateDir(Path(tmp))
        for size in SIZES:
            fill(client, outputs["MainTableName"], filled, size - filled)
            filled = size
            timings, size_bytes = [], 0
            for _ in range(5):
                started = time.perf_counter()
                snapshot = persistence.capture(outputs, moto.dynamodb_lock)
                size_bytes = state.save_snapshot(snapshot)
                timings.append(time.perf_counter() - started)
            lock = threading.Lock()
            started = time.perf_counter()
            persistence.capture(outputs, lock)
            locked = time.perf_counter() - started
            started = time.perf_counter()
            persistence.restore(state.load_snapshot() or {}, outputs)
            restore = time.perf_counter() - started
            rows.append((f"{size:,}", f"{statistics.median(timings) * 1000:.0f} ms", f"{locked * 1000:.0f} ms",
                         f"{size_bytes / 1e6:.1f} MB", f"{restore * 1000:.0f} ms"))
    moto.stop()
    print("Local stack state: one snapshot (capture + write + fsync) and one restore, by main-table items\n")
    print(table(rows, ("items", "snapshot", "of which capture", "file", "restore")))
    print(f"\nper mutating request: change counter {counter_cost() * 1e6:.2f} us (the journal's fsync: bench/journal.py)")
    print("baseline before this change: every acknowledged write lost on kill -9 or Ctrl-C (53 of 53 jobs in issue 8)")


if __name__ == "__main__":
    main()
