"""AWS calls per job lifecycle (create, claim, 10 progress, complete), beside the lower bound.

Run: .venv/bin/python bench/jobs_calls.py   (in-process moto; counts botocore calls, so no timing here)

The lower bound is derived in docs/JOBS.md ("Cost"): per request one read to
authenticate (no key cache: a revoked key must fail at once), one
TransactWriteItems per state change (the change and its outbox event must
commit together), and for a claim the reads that find work: the agent (its
pools and status) and one Query per ready queue it serves (its own and one per
pool), plus the durable lease timer (one SQS request per poll).
"""
from __future__ import annotations

import json
import time

from common import moto_stack, table, warm

# The lifecycle's count before issue 24 moved the fan-out's wall (b4472fe, docs/SCALE.md): it changed no job key.
LIFECYCLE_BEFORE = 29


def main() -> None:
    from chalice.test import Client

    with moto_stack() as (app_module, counter, root):
        from chalicelib.core import clock
        from chalicelib.jobs import leases

        offset = {"s": 0.0}
        clock.now = lambda: time.time() + offset["s"]  # lease checks without waiting

        with Client(app_module.app) as client:
            def call(method, path, key, body=None, expect=(200, 201, 204)):
                warm(key)
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
                with counter.counting():
                    response = getattr(client.http, method)(path, headers=headers,
                                                            body=json.dumps(body) if body is not None else b"")
                assert response.status_code in expect, (path, response.status_code, response.body)
                return (json.loads(response.body) if response.body else None), len(counter.calls), counter.summary()

            org = call("post", "/orgs", root["adminApiKey"], {"name": "bench"})[0]
            ops = call("post", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"})[0]["apiKey"]
            agent = call("post", "/agents", ops, {"name": "a"})[0]
            pooled = call("post", "/agents", ops, {"name": "b", "pools": ["p1", "p2"]})[0]
            a, key = agent["agentId"], agent["apiKey"]
            rows = []

            def measure(label, bound, method, path, k, body=None):
                result, n, summary = call(method, path, k, body)
                rows.append((label, n, bound, summary))
                return result

            def check(label, bound, job_id, run_id):
                with counter.counting():
                    action = leases.check(org["orgId"], job_id, run_id)
                rows.append((f"{label} -> {action.value}", len(counter.calls), bound, counter.summary()))

            # The lifecycle.
            job = measure("POST /jobs (direct)", 2, "post", "/jobs", ops, {"agentId": a, "type": "t", "payload": {}})
            run = measure("GET /jobs/poll (claims 1)", 5, "get", f"/jobs/poll?agentId={a}&max=1", key)["jobs"][0]
            progress_calls = []
            for i in range(10):
                _, n, summary = call("post", "/jobs/progress", key,
                                     {"jobId": run["jobId"], "runId": run["runId"], "agentId": a, "percent": i * 10})
                progress_calls.append(n)
            rows.append(("POST /jobs/progress x10", sum(progress_calls), 20, f"{summary} (each)"))
            measure("POST /jobs/complete", 2, "post", "/jobs/complete", key,
                    {"jobId": run["jobId"], "runId": run["runId"], "agentId": a, "status": "COMPLETED"})
            lifecycle = sum(r[1] for r in rows)
            lifecycle_bound = sum(r[2] for r in rows)
            offset["s"] += 61
            check("lease check after completion", 1, run["jobId"], run["runId"])
            rows.append(("= lifecycle (create, claim, 10 progress, complete)", lifecycle, lifecycle_bound,
                         f"before issue 24's fan-out change (b4472fe): {LIFECYCLE_BEFORE}"))
            rows.append(("", "", "", ""))

            # The other paths.
            measure("POST /agents/{id}/heartbeat", 2, "post", f"/agents/{a}/heartbeat", key)
            measure("GET /jobs/poll (nothing queued)", 3, "get", f"/jobs/poll?agentId={a}&max=10", key)
            for _ in range(3):
                call("post", "/jobs", ops, {"pool": "p2", "type": "t", "payload": {}})
            measure("GET /jobs/poll (2 pools, claims 3)", 1 + 1 + 3 + 3 + 1, "get",
                    f"/jobs/poll?agentId={pooled['agentId']}&max=3", pooled["apiKey"])
            job2 = call("post", "/jobs", ops, {"agentId": a, "type": "t", "payload": {}, "leaseSeconds": 60})[0]
            run2 = call("get", f"/jobs/poll?agentId={a}", key)[0]["jobs"][0]
            offset["s"] += 30
            call("post", "/jobs/progress", key, {"jobId": run2["jobId"], "runId": run2["runId"], "agentId": a,
                                                 "percent": 5})
            offset["s"] += 31
            check("lease check, lease renewed", 2, run2["jobId"], run2["runId"])
            offset["s"] += 61
            check("lease check, lease expired", 3, run2["jobId"], run2["runId"])
            measure("GET /jobs/{id}", 2, "get", f"/jobs/{job['jobId']}", ops)
            measure("GET /jobs (a page, running jobs in it)", 3, "get", "/jobs?limit=20", ops)
            measure("POST /jobs/{id}/cancel (queued)", 3, "post", f"/jobs/{job2['jobId']}/cancel", ops)

    print("AWS calls per job operation (botocore before-call hooks, in-process moto), beside the lower bound\n")
    print(table(rows, ("operation", "measured", "lower bound", "calls")))
    print("\nLease-check messages are received and deleted by Lambda's SQS poller in batches of up to 10 "
          "(ReceiveMessage + DeleteMessageBatch per batch: 0.2 SQS requests per check), not counted above.")


if __name__ == "__main__":
    main()
