"""Nothing acknowledged is lost on kill -9 (issue 18, finding 7): the local stack's journal.

Five times: a burst of concurrent `POST /jobs`, each with its own
Idempotency-Key, against a stack holding 10,000+ items, and a kill -9 in the
middle of it. After each restart every acknowledged job is there, and every
acknowledged Idempotency-Key replays (`Idempotent-Replayed: true`, the same
jobId) instead of creating a second job. Requests that were in flight at the
kill got no answer: the client retries them after the restart, as a client
would, and they either replay or create (never 5xx, never two jobs).

Snapshots are taken every second here (DEVSTACK_CHECKPOINT_SECONDS), so kills
also land while a snapshot rotates the journal and deletes covered segments.
One stack at a time, on one port and state directory, as `make run` restarts.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.testing import Devstack, running_devstack
from tests.e2e.client import call

pytestmark = pytest.mark.e2e

KILLS = 5
SEEDED_ITEMS = 10_500
WORKERS = 8
ACKS_BEFORE_KILL = 25  # per round; the kill lands while the workers are still sending
# DEVSTACK_JOURNAL is passed through so that `DEVSTACK_JOURNAL=0 pytest ...` shows what the journal fixes.
ENV = {"DEVSTACK_CHECKPOINT_SECONDS": "1", "DEVSTACK_JOURNAL": os.environ.get("DEVSTACK_JOURNAL", "1")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _body(key: str) -> dict:
    return {"pool": "journal", "type": "burst", "payload": {"key": key}}


def _post(url: str, api_key: str, key: str):
    return call(url, "POST", "/jobs", api_key, _body(key), headers={"Idempotency-Key": key}, timeout=20)


def _seed(stack: Devstack, count: int) -> None:
    """`count` job-shaped items of another organization, straight into the embedded DynamoDB (journaled too)."""
    table = stack.environment["MAIN_TABLE"]
    client = stack.aws("dynamodb")

    def batch(first: int) -> None:
        items = [{"PutRequest": {"Item": {
            "PK": {"S": f"ORG#seed#JOB#{n:06d}"}, "SK": {"S": "JOB"}, "status": {"S": "QUEUED"},
            "payloadJson": {"S": '{"seconds": 5}' * 8}, "GSI1PK": {"S": "ORG#seed#JOBS"}, "GSI1SK": {"S": f"{n:06d}"}}}}
            for n in range(first, min(first + 25, count))]
        while items:
            left = client.batch_write_item(RequestItems={table: items}).get("UnprocessedItems", {})
            items = left.get(table, [])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(batch, range(0, count, 25)))
    assert client.describe_table(TableName=table)["Table"]["ItemCount"] >= count


def _burst_until_killed(stack: Devstack, api_key: str, round_no: int, acked: dict[str, str], unanswered: set[str]) -> int:
    """Post new keys from WORKERS threads; kill -9 the stack once this round has ACKS_BEFORE_KILL answers."""
    lock = threading.Lock()
    answered = threading.Event()
    dead = threading.Event()
    counter = iter(range(10**9))
    acks_this_round = [0]
    failures: list[str] = []

    def worker(worker_no: int) -> None:
        while not dead.is_set():
            key = f"r{round_no}-w{worker_no}-{next(counter)}"
            try:
                reply = _post(stack.url, api_key, key)
            except (OSError, http.client.HTTPException):  # refused, reset or cut short: no answer, retried later
                with lock:
                    unanswered.add(key)
                return
            if reply.status != 201:
                failures.append(f"{key}: {reply.status} {reply.json}")
                answered.set()
                return
            with lock:
                acked[key] = reply.json["jobId"]
                acks_this_round[0] += 1
                if acks_this_round[0] >= ACKS_BEFORE_KILL:
                    answered.set()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    assert answered.wait(60), "the burst got no answers"
    stack.stop(signal.SIGKILL)
    dead.set()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    return acks_this_round[0]


def _check_everything_acknowledged_survived(stack: Devstack, api_key: str, acked: dict[str, str],
                                            unanswered: set[str]) -> None:
    def check(item: tuple[str, str]) -> str | None:
        key, job_id = item
        got = call(stack.url, "GET", f"/jobs/{job_id}", api_key)
        if got.status != 200:
            return f"{key}: job {job_id} is gone ({got.status})"
        again = _post(stack.url, api_key, key)
        replayed = {k.lower(): v for k, v in again.headers.items()}.get("idempotent-replayed")
        if again.status != 201 or replayed != "true" or again.json["jobId"] != job_id:
            return f"{key}: replayed {again.status} {replayed} {again.json} instead of {job_id}"
        return None

    with ThreadPoolExecutor(WORKERS) as pool:
        lost = [problem for problem in pool.map(check, sorted(acked.items())) if problem]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost:\n" + "\n".join(lost[:20]) + \
        "\n" + stack.log_tail(30)

    # What got no answer, retried as a client would: it replays or is created now, once.
    def retry(key: str) -> tuple[str, str]:
        reply = _post(stack.url, api_key, key)
        assert reply.status == 201, (key, reply.status, reply.json)
        return key, reply.json["jobId"]

    with ThreadPoolExecutor(WORKERS) as pool:
        acked.update(pool.map(retry, sorted(unanswered)))
    unanswered.clear()


def test_five_kill_9s_mid_burst_lose_no_acknowledged_job(tmp_path):
    state, port = tmp_path / "state", _free_port()
    acked: dict[str, str] = {}
    unanswered: set[str] = set()
    log = tmp_path / "devstack.log"
    with running_devstack(state_dir=state, port=port, env=ENV, log_file=log) as first:
        api_key = call(first.url, "POST", "/keys", first.admin_api_key, {"name": "burst", "scope": "operator"}).json[
            "apiKey"]
        _seed(first, SEEDED_ITEMS)
        in_round = [_burst_until_killed(first, api_key, 0, acked, unanswered)]
    for round_no in range(1, KILLS + 1):
        with running_devstack(state_dir=state, port=port, env=ENV, log_file=log) as stack:
            _check_everything_acknowledged_survived(stack, api_key, acked, unanswered)
            if round_no < KILLS:
                in_round.append(_burst_until_killed(stack, api_key, round_no, acked, unanswered))
            else:  # one job per key, no more: no key created a second job across the kills
                assert sorted(_all_jobs(stack, api_key)) == sorted(acked.values())
                table = stack.aws("dynamodb").describe_table(TableName=stack.environment["MAIN_TABLE"])["Table"]
                assert table["ItemCount"] >= SEEDED_ITEMS + len(acked)
    assert len(in_round) == KILLS and all(n >= ACKS_BEFORE_KILL for n in in_round), in_round
    print(f"\n{len(acked)} jobs acknowledged or retried over {KILLS} kills ({in_round} answered before each), 0 lost")


def _all_jobs(stack: Devstack, api_key: str) -> list[str]:
    found, token = [], None
    while True:
        page = call(stack.url, "GET", "/jobs?pool=journal&limit=100" + (f"&nextToken={token}" if token else ""),
                    api_key).json
        found += [job["jobId"] for job in page["items"]]
        token = page.get("nextToken")
        if not token:
            return found
