"""Ops scan: items read, DynamoDB calls and GitHub calls per scan for 10,000 failures in 20 groups.

Goal: GitHub calls proportional to groups, never to failures. Baseline: a
design that files or comments once per failure makes 10,000 GitHub calls for
the same input (and would hit GitHub's ~80 content-creating requests a minute
after the first 80).

Setup (in-process moto, the fake GitHub server over real HTTP):
- 8,000 ERROR instance log entries in 16 message shapes (each repeated with other
  ids, addresses, numbers) and 2,000 failed patch events in 4 shapes: 10,000
  failures, 20 fingerprints, written through the logs and patches stores;
- scan 1 files them (incremental, from nothing), scan 2 finds nothing new,
  then 1,000 more failures of the same 20 shapes arrive and scan 3 comments;
- 2,000 failures in 5 other shapes (another organization) for the ratio.
Items read = failures read + group items read (the scan's own count); DynamoDB
calls counted on the app's boto3 session.
"""
from __future__ import annotations

import os
import time
import uuid

from common import moto_stack, table

WORDS = ["billing", "catalog", "checkout", "search", "profile", "payments", "inventory", "shipping",
         "auth", "notify", "ledger", "reports", "media", "pricing", "gateway", "scheduler"]
PATCH_SHAPES = [("replace-block", "MARKER_NOT_FOUND"), ("insert-before", "SEARCH_NOT_FOUND"),
                ("insert-after", "MARKER_NOT_FOUND"), ("replace-block", "FILE_NOT_FOUND")]


def write_logs(org_id: str, instance_id: str, count: int, shapes: list[str], start_ms: int) -> None:
    from chalicelib.core import ids
    from chalicelib.core.context import Ctx
    from chalicelib.logs import store
    from chalicelib.logs.models import LogEntry

    entries = []
    for i in range(count):
        ms = start_ms + i
        word = shapes[i % len(shapes)]
        entries.append(LogEntry(
            org_id=org_id, instance_id=instance_id, id=ids.new_id(ms),
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ms / 1000)), level="ERROR",
            message=f"{word} call to 10.0.{i % 250}.{i % 200}:8443 failed after {i % 97} ms (request {uuid.uuid4()})",
            expires_at=int(time.time()) + 86400))
    bulk = Ctx.system(org_id).bulk()  # as a push writes them (issue 20: stores never commit)
    for e in entries:
        bulk.put(e.entry_id, store.entry_put(e))
    bulk.commit()


def write_patch_failures(org_id: str, count: int, start_ms: int) -> None:
    from chalicelib.core import clock, ids
    from chalicelib.core.context import Ctx
    from chalicelib.patches import store
    from chalicelib.patches.models import PatchEvent

    events = []
    for i in range(count):
        op, code = PATCH_SHAPES[i % len(PATCH_SHAPES)]
        ms = start_ms + i
        events.append(PatchEvent(event_id=ids.new_id(ms), batch_id=ids.new_id(ms), order_id=f"ORD-{i % 40}",
                                 file=f"src/m{i}.py", op=op, status="failed", at=clock.iso(ms / 1000),
                                 error=f"{code}: no line matches '###BLOCK_{i}###' in src/m{i}.py"))
    bulk = Ctx.system(org_id).bulk()  # as the worker writes them: one bulk unit of work
    for e in events:
        bulk.put(e.event_id, store.put_event(org_id, e))
    bulk.commit()


def scan_once(ctx, counter):
    from chalicelib.ops import scan

    with counter.counting():
        started = time.perf_counter()
        result = scan.run(ctx, "incremental", time.time() + 600).model_dump(by_alias=True)
        elapsed = time.perf_counter() - started
        ddb = sum(1 for c in counter.calls if c.startswith("dynamodb."))
    return result, ddb, elapsed


def main() -> None:
    from devstack import fast_moto
    from tests.fakes.github_server import FakeGitHub

    # As the local stack does: moto's transactions and GSI queries at the cost of what they touch
    # (this process sends one DynamoDB request at a time, the condition fast_moto needs).
    fast_moto.patch_transactions()
    fast_moto.patch_index_queries()

    with FakeGitHub(token="bench-token") as github:
        os.environ.update(GITHUB_TOKEN=github.token, GITHUB_REPO=github.repo_full, GITHUB_API_URL=github.url)
        with moto_stack() as (app_module, counter, root):
            from chalice.test import Client

            from chalicelib.core import config
            from chalicelib.core.context import Ctx

            config.settings.cache_clear()
            admin = root["adminApiKey"]
            with Client(app_module.app) as client:
                import json

                def post(path, key, body):
                    r = client.http.post(path, headers={"authorization": f"Bearer {key}",
                                                        "content-type": "application/json"}, body=json.dumps(body))
                    return json.loads(r.body)

                org = post("/orgs", admin, {"name": "bench-20"})
                agent = post("/agents", org["adminKey"], {"name": "a"})
                inst = post("/instances", org["adminKey"], {"agentId": agent["agentId"], "name": "i"})
                org5 = post("/orgs", admin, {"name": "bench-5"})
                agent5 = post("/agents", org5["adminKey"], {"name": "a"})
                inst5 = post("/instances", org5["adminKey"], {"agentId": agent5["agentId"], "name": "i"})

            ctx = Ctx.system(root["orgId"])
            t0 = int(time.time() * 1000) - 3_600_000
            write_logs(org["orgId"], inst["instanceId"], 8000, WORDS, t0)
            write_patch_failures(org["orgId"], 2000, t0)
            rows = []

            def record(label, failures, result, ddb, elapsed, calls_before):
                gh_calls = len(github.requests) - calls_before
                print(label, "done", flush=True)
                rows.append((label, f"{failures:,}", result["groupsTouched"], result["issuesOpened"],
                             result["issuesUpdated"], gh_calls, f"{result['itemsRead']:,}", ddb, f"{elapsed:.1f}"))

            before = len(github.requests)
            result, ddb, elapsed = scan_once(ctx, counter)
            record("1: 10,000 new failures, 20 shapes", 10_000, result, ddb, elapsed, before)
            before = len(github.requests)
            result, ddb, elapsed = scan_once(ctx, counter)
            record("2: nothing new", 0, result, ddb, elapsed, before)
            write_logs(org["orgId"], inst["instanceId"], 800, WORDS, t0 + 100_000)
            write_patch_failures(org["orgId"], 200, t0 + 100_000)
            before = len(github.requests)
            result, ddb, elapsed = scan_once(ctx, counter)
            record("3: 1,000 recurrences of the 20", 1_000, result, ddb, elapsed, before)
            write_logs(org5["orgId"], inst5["instanceId"], 2_000, [w + "-five" for w in WORDS[:5]], t0)
            before = len(github.requests)
            result, ddb, elapsed = scan_once(ctx, counter)
            record("4: 2,000 new failures, 5 shapes", 2_000, result, ddb, elapsed, before)
            issues = len(github.issues)

    print(__doc__.split("\n\n")[0] + "\n")
    print(table(rows, ("scan", "failures", "group writes", "opened", "commented", "GitHub calls", "items read",
                       "DynamoDB calls", "s (moto)")))
    print(f"\nGitHub issues at the end: {issues} (20 + 5 fingerprints; no duplicate).")
    print("GitHub calls per scan = 1 list of closed issues + per new group (search marker + create)"
          " + per recurring group (comment).")
    print("Baseline (one GitHub call per failure): 10,000 calls for scan 1, 1,000 for scan 3.")
    assert github.violations == [], github.violations[:3]


if __name__ == "__main__":
    main()
