"""AWS calls per session, task, approval and list operation, beside the lower bound derived in
docs/SESSIONS.md ("Cost"), and the index keys each list page reads.

Run: .venv/bin/python bench/sessions_calls.py   (in-process moto; counts botocore calls, so no timing here)

Every request pays one GetItem to authenticate (no key cache: a revoked key
fails at once). A change is one TransactWriteItems (the change, its counters,
its audit event and its outbox event commit together or not at all). A change
that depends on the current state (a status move, a merge, a decision) reads
that state first: the from-status decides the answer and which counter moves,
and the response and the event carry the whole item, which a transaction
cannot return.
"""
from __future__ import annotations

import json

from common import moto_stack, table, warm


def main() -> None:
    from chalice.test import Client

    with moto_stack() as (app_module, counter, root):
        from chalicelib.aws import clients
        from chalicelib.core import config
        from chalicelib.core.context import Ctx
        from chalicelib.sessions import service as sessions

        keys_read = {"n": 0}

        def count_keys(parsed=None, **kwargs):
            keys_read["n"] += (parsed or {}).get("ScannedCount", 0)

        # the DynamoDB client exists already (the seed made it): hook it directly
        clients.client("dynamodb").meta.events.register("after-call.dynamodb.Query", count_keys)

        with Client(app_module.app) as client:
            def call(method, path, key, body=None, expect=(200, 201)):
                warm(key)
                headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
                keys_read["n"] = 0
                with counter.counting():
                    response = getattr(client.http, method)(path, headers=headers,
                                                            body=json.dumps(body) if body is not None else b"")
                assert response.status_code in expect, (path, response.status_code, response.body)
                return (json.loads(response.body) if response.body else None), len(counter.calls), counter.summary()

            org = call("post", "/orgs", root["adminApiKey"], {"name": "bench"})[0]
            ops = call("post", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"})[0]["apiKey"]
            # an agent key names an agent of the organization (POST /keys checks it): register one
            agent = call("post", "/agents", ops, {"name": "a"})[0]["apiKey"]
            rows = []

            def measure(label, bound, method, path, k, body=None, expect=(200, 201), keys_note=False):
                result, n, summary = call(method, path, k, body, expect)
                note = f"; {keys_read['n']} keys from the keys-only index" if keys_note else ""
                rows.append((label, n, bound, summary + note))
                return result

            s = measure("POST /sessions", 2, "post", "/sessions", agent, {"agentRole": "planner"})
            sid = s["sessionId"]
            measure("PUT /sessions/{id} status pending -> active", 3, "put", f"/sessions/{sid}", agent,
                    {"status": "active"})
            measure("PUT /sessions/{id} metadata merge", 3, "put", f"/sessions/{sid}", agent,
                    {"metadata": {"k": "v"}})
            measure("PUT /sessions/{id} same status (no-op)", 2, "put", f"/sessions/{sid}", agent,
                    {"status": "active"})
            measure("PUT /sessions/{id} forbidden move (409)", 2, "put", f"/sessions/{sid}", agent,
                    {"status": "pending"}, expect=(409,))
            measure("GET /sessions/{id}", 2, "get", f"/sessions/{sid}", agent)
            for _ in range(119):
                call("post", "/sessions", agent, {"agentRole": "planner"})
            rows.append(("", "", "", ""))
            measure("GET /sessions page 1 (pageSize 20)", 3, "get", "/sessions?pageSize=20", agent, keys_note=True)
            page5 = measure("GET /sessions page 5 (pageSize 20)", 3, "get", "/sessions?page=5&pageSize=20", agent,
                            keys_note=True)
            measure("GET /sessions page 6 by nextToken", 3, "get",
                    f"/sessions?pageSize=20&nextToken={page5['nextToken']}", agent, keys_note=True)
            measure("GET /sessions?status=active page 1", 3, "get", "/sessions?status=active", agent,
                    keys_note=True)
            measure("GET /sessions page 1 (pageSize 100)", 4, "get", "/sessions?pageSize=100", agent,
                    keys_note=True)
            rows.append(("", "", "", ""))
            t = measure("POST /tasks", 2, "post", "/tasks", agent,
                        {"idempotencyKey": "k1", "toRole": "coder", "type": "build", "sessionId": sid})
            measure("POST /tasks repeat (200, same task)", 3, "post", "/tasks", agent,
                    {"idempotencyKey": "k1", "toRole": "coder", "type": "build", "sessionId": sid})
            measure("PUT /tasks/{id} pending -> in_progress", 3, "put", f"/tasks/{t['taskId']}", agent,
                    {"status": "in_progress"})
            measure("POST /tasks requiresApproval (task + approval)", 2, "post", "/tasks", agent,
                    {"idempotencyKey": "k2", "toRole": "coder", "type": "deploy", "requiresApproval": True})
            approvals = measure("GET /approvals (a page, tasks batched)", 3, "get", "/approvals", ops)
            approval_id = approvals["items"][0]["approvalId"]
            measure("POST /approvals/{id}/decision", 4, "post", f"/approvals/{approval_id}/decision", ops,
                    {"decision": "approved", "decidedBy": "alice"})
            measure("POST /approvals/{id}/decision again (409)", 2, "post", f"/approvals/{approval_id}/decision",
                    ops, {"decision": "approved", "decidedBy": "alice"}, expect=(409,))
            measure("GET /status?sessionId=", 2, "get", f"/status?sessionId={sid}", agent)
            measure("GET /audit?entityType=session&entityId=", 2, "get",
                    f"/audit?entityType=session&entityId={sid}", ops)

            # Retention: one run over 120 open sessions made "old" by a zero retention.
            import os
            os.environ["SESSION_RETENTION_DAYS"] = "0"
            config.settings.cache_clear()
            with counter.counting():
                result = sessions.expire_old(Ctx.system())
            queries = counter.calls.count("dynamodb.Query")
            rows.append(("", "", "", ""))
            rows.append((f"retention run ({result['expired']} expired)", len(counter.calls),
                         result["expired"] + 4, f"{counter.summary()} ({queries} Query: one page per shard)"))

    print("AWS calls per operation (botocore before-call hooks, in-process moto), beside the lower bound\n")
    print(table(rows, ("operation", "measured", "lower bound", "calls")))


if __name__ == "__main__":
    main()
