"""Patches end to end on the local stack (real HTTP, WebSocket, SQS FIFO pump, S3 in moto).

- 30 batches for 3 workspaces submitted at once (one submitter thread per workspace, all
  concurrent) apply in submission order per workspace;
- a batch whose 5th operation has a bad anchor changes no file and reports every result;
- a WebSocket client sees patch:requested/applied/failed/rejected;
- logs, stats and trends agree with the applied results;
- bad paths: 400 and nothing queued;
- a worker that dies after the first file (fault injection): no file changes, the
  redelivery (visibility timeout shortened to 2 s for this module) applies the batch once.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call, ws_connect

pytestmark = pytest.mark.e2e
FAULT_FACTORY = "fault-injection:die-after-first-file"


@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app", env={"PATCHES_FAULT_INJECTION": "1"}) as s:
        s.aws("sqs").set_queue_attributes(QueueUrl=s.environment["PATCHES_QUEUE_URL"],
                                          Attributes={"VisibilityTimeout": "2"})
        yield s


@pytest.fixture(scope="module")
def key(stack) -> str:
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "patches e2e"}).json
    r = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"})
    assert r.status == 201, r.json
    return r.json["apiKey"]


class Watcher(threading.Thread):
    def __init__(self, url: str, key: str):
        super().__init__(daemon=True)
        self.conn = ws_connect(url, key)
        assert json.loads(self.conn.recv(timeout=10))["event"] == "system:connected"
        self.events: list[dict] = []
        self.start()

    def run(self):
        try:
            for raw in self.conn:
                self.events.append(json.loads(raw))
        except Exception:  # noqa: BLE001 - closed at the end
            pass

    def patch_events(self, batch_id: str) -> list[str]:
        return [e["event"] for e in list(self.events)
                if e["event"].startswith("patch:") and e["data"].get("batchId") == batch_id]


@pytest.fixture(scope="module")
def watcher(stack, key):
    w = Watcher(stack.url, key)
    yield w
    w.conn.close()


def put_file(stack, key, ws, path, text):
    request = urllib.request.Request(f"{stack.url}/api/workspaces/{ws}/files?path={path}", data=text.encode(),
                                     method="PUT", headers={"content-type": "text/plain",
                                                            "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def read(stack, key, ws, path):
    r = call(stack.url, "GET", f"/api/workspaces/{ws}/files?path={path}", key)
    return r.json["content"] if r.status == 200 else None


def wait_done(stack, key, batch_ids, timeout=120) -> dict[str, dict]:
    deadline, done = time.monotonic() + timeout, {}
    while len(done) < len(batch_ids):
        for batch_id in batch_ids:
            if batch_id not in done:
                view = call(stack.url, "GET", f"/api/patches/batches/{batch_id}", key).json
                if view["status"] != "queued":
                    done[batch_id] = view
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(batch_ids) - len(done)} batches still queued")
        if len(done) < len(batch_ids):
            time.sleep(0.2)  # polling the status, not waiting for a guess
    return done


def test_30_batches_for_3_workspaces_apply_in_submission_order(stack, key, watcher):
    workspaces = ["order-a", "order-b", "order-c"]
    for ws in workspaces:
        put_file(stack, key, ws, "log.txt", "start\n")

    def submit(ws):
        ids = []
        for i in range(10):
            # each batch edits what the previous one wrote: out of order, its anchor would miss
            ops = [{"op": "insert-after", "file": "log.txt", "anchor": {"marker": f"^{'start' if i == 0 else f'b{i - 1}'}$"},
                    "content": f"b{i}"},
                   {"op": "append", "file": f"n/{i}.txt", "content": str(i)}]
            r = call(stack.url, "POST", "/api/patches/apply", key,
                     {"workspace": ws, "taskId": f"task-{ws}", "orderId": f"ord-{ws}", "factory": "e2e",
                      "phase": f"phase-{i % 2}", "operations": ops})
            assert r.status == 202, r.json
            ids.append(r.json["batchId"])
        return ids

    with ThreadPoolExecutor(3) as pool:
        submitted = dict(zip(workspaces, pool.map(submit, workspaces), strict=True))
    views = wait_done(stack, key, [b for ids in submitted.values() for b in ids])
    assert {v["status"] for v in views.values()} == {"applied"}
    for ws in workspaces:
        assert read(stack, key, ws, "log.txt") == "start\n" + "".join(f"b{i}\n" for i in range(10))
    # every batch was seen on the WebSocket: requested, then one event per operation
    deadline = time.monotonic() + 20
    all_ids = [b for ids in submitted.values() for b in ids]
    while any(len(watcher.patch_events(b)) < 3 for b in all_ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for b in all_ids:
        assert watcher.patch_events(b) == ["patch:requested", "patch:applied", "patch:applied"]


def test_a_failing_batch_changes_no_file_and_reports_all_results(stack, key, watcher):
    put_file(stack, key, "failing", "a.txt", "a\n")
    ops = [{"op": "append", "file": f"f{i}.txt", "content": str(i)} for i in range(4)]
    ops.append({"op": "replace-block", "file": "a.txt", "anchor": {"marker": "###NOT_THERE###"}, "content": "x"})
    ops.append({"op": "append", "file": "a.txt", "content": "later"})
    r = call(stack.url, "POST", "/api/patches/apply", key,
             {"workspace": "failing", "factory": "e2e-fail", "phase": "failing", "operations": ops})
    batch_id = r.json["batchId"]
    view = wait_done(stack, key, [batch_id])[batch_id]
    assert view["status"] == "failed"
    assert [x["status"] for x in view["results"]] == ["rejected"] * 4 + ["failed", "rejected"]
    assert view["results"][4]["error"].startswith("MARKER_NOT_FOUND")
    files = call(stack.url, "GET", "/api/workspaces/failing/files", key).json["items"]
    assert [f["path"] for f in files] == ["a.txt"] and read(stack, key, "failing", "a.txt") == "a\n"
    deadline = time.monotonic() + 20
    while len(watcher.patch_events(batch_id)) < 7 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert watcher.patch_events(batch_id) == ["patch:requested"] + ["patch:rejected"] * 4 + [
        "patch:failed", "patch:rejected"]


def test_logs_stats_and_trends_agree_with_what_was_applied(stack, key):
    logs = call(stack.url, "GET", "/api/patches/logs?limit=1000", key).json["items"]
    outcomes = [e for e in logs if e["status"] != "requested"]
    applied = sum(e["status"] == "applied" for e in outcomes)
    assert applied == 60  # 30 batches x 2 operations
    stats = call(stack.url, "GET", "/api/patches/stats", key).json
    assert sum(d["total"] for d in stats["daily"]) == len(outcomes)
    assert sum(d["applied"] for d in stats["daily"]) == applied
    assert sum(d["failed"] for d in stats["daily"]) == len(outcomes) - applied
    by_factory = {f["factory"]: f for f in stats["successRateByFactory"]}
    assert by_factory["e2e"] == {"factory": "e2e", "total": 60, "applied": 60, "rate": 1.0}
    assert stats["operations"]["insert-after"] >= 30 and stats["operations"]["append"] >= 30
    task_logs = call(stack.url, "GET", "/api/patches/logs?taskId=task-order-a&limit=1000", key).json["items"]
    assert len(task_logs) == 30  # 10 requested + 20 applied
    trends = {t["key"]: t for t in call(stack.url, "GET", "/api/patches/trends?groupBy=phase", key).json}
    assert trends["phase-0"]["applied"] + trends["phase-1"]["applied"] == 60
    orders = {t["key"]: t for t in call(stack.url, "GET", "/api/patches/trends?groupBy=order", key).json}
    assert orders["ord-order-b"]["total"] == 20 and orders["ord-order-b"]["successRate"] == 1.0
    weekly = call(stack.url, "GET", "/api/patches/trends?groupBy=weekly", key).json
    assert sum(t["applied"] for t in weekly) == applied


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a\\b", "a\x00b", "\u2024\u2024/x", "nul.txt", "a.txt::$DATA",
                                  "a\u202eb.txt"])
def test_bad_paths_are_400_and_nothing_is_queued(stack, key, path):
    sqs = stack.aws("sqs")
    url = stack.environment["PATCHES_QUEUE_URL"]

    def depth():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    before = depth()
    r = call(stack.url, "POST", "/api/patches/apply", key,
             {"workspace": "paths", "operations": [{"op": "append", "file": path, "content": "x"}]})
    assert r.status == 400 and r.json["error"]["code"] == "VALIDATION_ERROR"
    assert r.json["error"]["details"][0]["field"] == "operations[0].file"
    assert depth() == before == 0


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_marker_that_crashed_the_regex_compiler_is_a_400_and_the_workspace_goes_on(stack, key, dry_run):
    """`(?:` x 200 answered 500 on a dry run and, queued, wedged the workspace's FIFO group."""
    crash = "(?:" * 200 + "a" + ")" * 200
    ws = f"crash-{str(dry_run).lower()}"
    put_file(stack, key, ws, "a.txt", "a\n")
    r = call(stack.url, "POST", "/api/patches/apply", key,
             {"workspace": ws, "dryRun": dry_run, "operations": [
                 {"op": "replace-block", "file": "a.txt", "anchor": {"marker": crash}, "content": "x"}]})
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "operations[0].anchor.marker", r.json
    r = call(stack.url, "POST", "/api/patches/apply", key,
             {"workspace": ws, "operations": [{"op": "append", "file": "a.txt", "content": "next"}]})
    assert r.status == 202
    assert wait_done(stack, key, [r.json["batchId"]])[r.json["batchId"]]["status"] == "applied"
    assert read(stack, key, ws, "a.txt") == "a\nnext\n"


def test_a_worker_dying_after_the_first_file_changes_nothing_and_redelivery_applies_once(stack, key):
    put_file(stack, key, "crash", "a.txt", "a\n")
    r = call(stack.url, "POST", "/api/patches/apply", key, {
        "workspace": "crash", "factory": FAULT_FACTORY,
        "operations": [{"op": "append", "file": "a.txt", "content": "one"},
                       {"op": "append", "file": "b.txt", "content": "two"}]})
    batch_id = r.json["batchId"]
    deadline = time.monotonic() + 30
    while f"injected fault after the first file of batch {batch_id}" not in stack.log_tail(400):
        assert time.monotonic() < deadline, stack.log_tail()
        time.sleep(0.05)
    # died after writing a blob: the workspace (its manifest) did not change
    assert read(stack, key, "crash", "a.txt") == "a\n"
    assert [f["path"] for f in call(stack.url, "GET", "/api/workspaces/crash/files", key).json["items"]] == ["a.txt"]
    view = wait_done(stack, key, [batch_id])[batch_id]
    assert view["status"] == "applied"
    assert read(stack, key, "crash", "a.txt") == "a\none\n" and read(stack, key, "crash", "b.txt") == "two\n"
    logs = call(stack.url, "GET", f"/api/patches/logs?search={batch_id}", key).json["items"]
    assert sorted(e["status"] for e in logs) == ["applied", "applied", "requested"]


def test_concurrent_file_writers_lose_no_change(stack, key):
    """Eight writers over HTTP, one workspace: each commit is a conditional manifest write, the
    losers re-read and retry, and every file is there at the end."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: put_file(stack, key, "race", f"f{i}.txt", f"{i}\n"), range(8)))
    files = call(stack.url, "GET", "/api/workspaces/race/files", key).json["items"]
    assert sorted(f["path"] for f in files) == [f"f{i}.txt" for i in range(8)]
    assert all(read(stack, key, "race", f"f{i}.txt") == f"{i}\n" for i in range(8))
