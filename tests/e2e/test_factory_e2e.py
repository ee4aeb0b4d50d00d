"""The factory loop end to end on the local stack: `python -m agent patch submit` and `apply` run as
subprocesses (as a factory would run them), against real HTTP and the real WebSocket.

- submit: applied (exit 0, followed over the WebSocket), failed (1), rejected on drift (3),
  a dry run (0 with per-file results, nothing changes; 1 when an op would fail), invalid input (2),
  a refused key (5), an unreachable control plane (4), REST polling when the socket is off;
- apply on local files records its outcome: GET /api/patches/stats and the delivery report count it.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app") as s:
        yield s


@pytest.fixture(scope="module")
def key(stack) -> str:
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "factory e2e"}).json
    r = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "factory", "scope": "operator"})
    assert r.status == 201, r.json
    return r.json["apiKey"]


def put_file(stack, key, ws, path, text):
    request = urllib.request.Request(f"{stack.url}/api/workspaces/{ws}/files?path={path}", data=text.encode(),
                                     method="PUT", headers={"content-type": "text/plain",
                                                            "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def read(stack, key, ws, path):
    r = call(stack.url, "GET", f"/api/workspaces/{ws}/files?path={path}", key)
    return r.json["content"] if r.status == 200 else None


def agent(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CP_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "agent", "patch", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=full_env, timeout=timeout)


def submit(stack, key, batch: dict, *extra: str, tmp_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    return agent("submit", "-", "--url", stack.url, "--api-key", key, "--poll", "1", *extra,
                 stdin=json.dumps(batch))


def test_submit_applied_exits_0_followed_over_the_websocket(stack, key):
    put_file(stack, key, "fac-a", "hello.txt", "one\ntwo\n")
    batch = {"workspace": "fac-a", "orderId": "F-1", "factory": "fac", "phase": "build",
             "operations": [{"op": "insert-after", "file": "hello.txt", "anchor": {"search": "one"},
                             "content": "one and a half"},
                            {"op": "append", "file": "new.txt", "content": "fresh"}]}
    run = submit(stack, key, batch)
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["status"] == "applied"
    assert [r["status"] for r in shown["results"]] == ["applied", "applied"]
    assert shown["followedBy"]["via"] == "websocket", shown["followedBy"]
    assert any(e == "patch:applied" for e in shown["followedBy"]["events"])
    assert read(stack, key, "fac-a", "hello.txt") == "one\none and a half\ntwo\n"
    assert read(stack, key, "fac-a", "new.txt") == "fresh\n"


def test_submit_failed_exits_1_and_changes_nothing(stack, key):
    put_file(stack, key, "fac-b", "a.txt", "alpha\n")
    batch = {"workspace": "fac-b", "operations": [
        {"op": "append", "file": "a.txt", "content": "beta"},
        {"op": "replace-block", "file": "a.txt", "anchor": {"search": "no such text"}, "content": "x"}]}
    run = submit(stack, key, batch)
    assert run.returncode == 1, run.stderr
    shown = json.loads(run.stdout)
    assert shown["status"] == "failed"
    assert [r["status"] for r in shown["results"]] == ["rejected", "failed"]
    assert read(stack, key, "fac-b", "a.txt") == "alpha\n"


def test_submit_rejected_on_drift_exits_3(stack, key):
    put_file(stack, key, "fac-c", "c.txt", "gamma\n")
    batch = {"workspace": "fac-c", "operations": [
        {"op": "append", "file": "c.txt", "content": "delta", "expectedSha256": hashlib.sha256(b"other").hexdigest()}]}
    run = submit(stack, key, batch)
    assert run.returncode == 3, (run.stdout, run.stderr)
    assert json.loads(run.stdout)["status"] == "rejected"
    assert read(stack, key, "fac-c", "c.txt") == "gamma\n"


def test_submit_dry_run_shows_per_file_results_and_changes_nothing(stack, key):
    put_file(stack, key, "fac-d", "d.txt", "one\n")
    ops = [{"op": "append", "file": "d.txt", "content": "two"},
           {"op": "insert-before", "file": "d.txt", "anchor": {"line": 1}, "content": "zero"}]
    run = submit(stack, key, {"workspace": "fac-d", "operations": ops}, "--dry-run")
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["dryRun"] is True and shown["status"] == "validated"
    assert [(r["file"], r["status"]) for r in shown["results"]] == [("d.txt", "validated"), ("d.txt", "validated")]
    assert read(stack, key, "fac-d", "d.txt") == "one\n"
    bad = submit(stack, key, {"workspace": "fac-d", "operations": [
        {"op": "replace-block", "file": "d.txt", "anchor": {"line": 9}, "content": "x"}]}, "--dry-run")
    assert bad.returncode == 1, bad.stderr
    assert json.loads(bad.stdout)["results"][0]["status"] == "failed"


def test_submit_invalid_input_refused_key_and_unreachable(stack, key):
    not_json = agent("submit", "-", "--url", stack.url, "--api-key", key, stdin="{not json")
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    outside = submit(stack, key, {"workspace": "fac-e", "operations": [
        {"op": "append", "file": "../escape.txt", "content": "x"}]})
    assert outside.returncode == 2, outside.stderr
    assert json.loads(outside.stdout)["error"]["code"] == "VALIDATION_ERROR"
    refused = submit(stack, "cpk.not-a-key", {"workspace": "fac-e", "operations": [
        {"op": "append", "file": "e.txt", "content": "x"}]})
    assert refused.returncode == 5, refused.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = agent("submit", "-", "--url", f"http://127.0.0.1:{port}", "--api-key", key, "--timeout", "5",
                 stdin=json.dumps({"workspace": "fac-e", "operations": [{"op": "append", "file": "e.txt"}]}))
    assert gone.returncode == 4, gone.stderr


def test_submit_follows_by_rest_polling_when_the_socket_is_off(stack, key):
    put_file(stack, key, "fac-f", "f.txt", "x\n")
    run = submit(stack, key, {"workspace": "fac-f", "operations": [{"op": "append", "file": "f.txt", "content": "y"}]},
                 "--ws-url", f"{stack.url.replace('http', 'ws')}/no-such-socket")
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["followedBy"]["via"] == "rest" and shown["followedBy"]["socketError"]
    assert "REST polling" in run.stderr
    assert read(stack, key, "fac-f", "f.txt") == "x\ny\n"


def _stats(stack, key) -> dict:
    r = call(stack.url, "GET", "/api/patches/stats", key)
    assert r.status == 200, r.json
    return r.json


def test_a_local_apply_shows_up_in_stats_and_the_delivery_report(stack, key, tmp_path):
    before = _stats(stack, key)
    factories_before = {f["factory"]: f for f in before["successRateByFactory"]}
    assert "local-factory" not in factories_before
    (tmp_path / "src.txt").write_text("first\n")
    batch = {"workspace": "laptop", "orderId": "LOCAL-1", "factory": "local-factory", "phase": "build",
             "operations": [{"op": "append", "file": "src.txt", "content": "second"},
                            {"op": "prepend", "file": "notes.md", "content": "# notes"}]}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    run = agent("apply", str(path), "--root", str(tmp_path / ""), "--no-fsync",
                env={"CP_URL": stack.url, "CP_API_KEY": key})
    assert run.returncode == 0, run.stderr
    shown = json.loads(run.stdout)
    assert shown["status"] == "applied" and shown["reported"]["status"] == "applied"
    assert shown["reported"]["events"] == 3  # requested + one per operation
    assert (tmp_path / "src.txt").read_text() == "first\nsecond\n"

    after = _stats(stack, key)
    by_factory = {f["factory"]: f for f in after["successRateByFactory"]}
    assert by_factory["local-factory"]["total"] == 2 and by_factory["local-factory"]["applied"] == 2
    assert sum(d["applied"] for d in after["daily"]) == sum(d["applied"] for d in before["daily"]) + 2
    assert after["operations"].get("append", 0) == before["operations"].get("append", 0) + 1

    batch_id = shown["reported"]["batchId"]
    view = call(stack.url, "GET", f"/api/patches/batches/{batch_id}", key).json
    assert view["status"] == "applied" and view["workspace"] == "laptop" and view["factory"] == "local-factory"
    logs = call(stack.url, "GET", "/api/patches/logs?search=notes.md", key).json
    assert [e["batchId"] for e in logs["items"]] == [batch_id]
    trends = call(stack.url, "GET", "/api/patches/trends?groupBy=order", key).json
    assert {"key": "LOCAL-1", "total": 2, "applied": 2} == {k: t[k] for t in trends if t["key"] == "LOCAL-1"
                                                             for k in ("key", "total", "applied")}
    r = call(stack.url, "POST", "/api/delivery/reports/generate", key, {"orderId": "LOCAL-1"})
    assert r.status in (200, 201), r.json
    report = call(stack.url, "GET", "/api/delivery/reports?orderId=LOCAL-1", key).json
    assert report["summary"]["operations"]["applied"] == 2 and report["summary"]["factories"] == ["local-factory"]

    # A failed local batch is recorded too (the ops scan and the error stats see it); nothing changed.
    bad = {"workspace": "laptop", "orderId": "LOCAL-1", "factory": "local-factory",
           "operations": [{"op": "append", "file": "src.txt", "content": "third"},
                          {"op": "replace-block", "file": "src.txt", "anchor": {"search": "absent"}, "content": "x"}]}
    path.write_text(json.dumps(bad))
    failed = agent("apply", str(path), "--root", str(tmp_path), "--no-fsync", "--url", stack.url, "--api-key", key)
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["reported"]["status"] == "failed"
    assert (tmp_path / "src.txt").read_text() == "first\nsecond\n"
    final = {f["factory"]: f for f in _stats(stack, key)["successRateByFactory"]}["local-factory"]
    assert final["total"] == 4 and final["applied"] == 2
