"""AWS calls of the WebSocket side: $connect, $disconnect, and one fan-out batch cold and warm.

Run: .venv/bin/python bench/fanout_calls.py   (in-process moto; counts botocore calls, so no timing here)

Beside each, the count before issue 24's connection cache (b4472fe): then every fan-out batch read the
org's whole connection list (one Query of every connection item), and $connect wrote no list version.
Posts go to a counting stand-in (the management API is not an AWS call botocore makes here).
"""
from __future__ import annotations

from common import moto_stack, table


def _event(route: str, connection_id: str, token: str | None = None) -> dict:
    return {"requestContext": {"routeKey": route, "eventType": {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}[route],
                               "connectionId": connection_id, "apiId": "b", "stage": "ws",
                               "domainName": "b.execute-api.us-east-1.amazonaws.com", "requestId": connection_id},
            "queryStringParameters": {"token": token} if token else None, "headers": {}, "isBase64Encoded": False,
            "body": None}


def main() -> None:
    from chalice.test import Client
    import json

    with moto_stack() as (app_module, counter, root):
        from chalicelib.aws import websocket
        from chalicelib.core.context import Ctx
        from chalicelib.fanout import fanout, rules

        posts = []
        websocket.post = lambda endpoint, cid, data: posts.append(cid) or True
        with Client(app_module.app) as client:
            org = json.loads(client.http.post("/orgs", headers={"authorization": f"Bearer {root['adminApiKey']}",
                                                                "content-type": "application/json"},
                                              body=json.dumps({"name": "bench"})).body)
        rows = []

        def measure(label, before, fn):
            with counter.counting():
                fn()
            rows.append((label, len(counter.calls), before, counter.summary()))

        for n in range(99):
            app_module.ws_connect(_event("$connect", f"c{n}", org["adminKey"]), None)
        measure("$connect", 2, lambda: app_module.ws_connect(_event("$connect", "c99", org["adminKey"]), None))
        events = [rules.Event(f"e{n}", org["orgId"], "job:queued", {"jobId": f"j{n}"}) for n in range(10)]
        fanout.forget_cached_connections()
        measure("fan-out batch, cold Lambda (100 connections)", 1, lambda: fanout.deliver(events, Ctx.system()))
        fanout.SETTLE_SECONDS = 0.0  # the list above was read right after the connects: settled for the next
        fanout.forget_cached_connections()
        fanout.deliver(events, Ctx.system())
        measure("fan-out batch, warm Lambda, no connect since", 1, lambda: fanout.deliver(events, Ctx.system()))
        app_module.ws_connect(_event("$connect", "c100", org["adminKey"]), None)
        measure("fan-out batch, warm Lambda, after a connect", 1, lambda: fanout.deliver(events, Ctx.system()))
        measure("$disconnect", 1, lambda: app_module.ws_disconnect(_event("$disconnect", "c100"), None))

    print("AWS calls of the WebSocket side (botocore before-call hooks, in-process moto), beside b4472fe's\n")
    print(table(rows, ("operation", "calls", "before (b4472fe)", "calls made")))
    print("\nThe counts match; what a batch reads does not: before, every batch's Query read every connection item of"
          " the org (1,000 items of 290 B: 35.5 RRU); a warm batch now reads one version item (1 RRU, strongly"
          " consistent), and the Query runs only in a cold Lambda, after a $connect, or once a minute.")
    print(f"{len(posts)} posts to the counting stand-in (10 events x 100 or 101 connections per batch).")


if __name__ == "__main__":
    main()
