"""AWS calls made by one authenticated POST, with and without Idempotency-Key, beside the minimum.

The minimum, derived (docs/ARCHITECTURE.md, "Cost of a request"):
- authenticate: 1 read (GetItem of the key item; no cache, revocation is immediate);
- commit: 1 TransactWriteItems holding the domain item, its audit event and outbox event;
- idempotency, at best: the record rides in that same transaction (and a replay
  could read key + record in one BatchGetItem), so a first call needs 2 calls and a replay 1.
Measured (core/idempotency.py): a first call is auth GetItem + record GetItem + one
TransactWriteItems holding the domain's writes and the record: 3 (it was 4 with
Powertools' PutItem in progress + UpdateItem complete); a replay is 2 GetItems.
The record read stays a call of its own (not batched with the key read) so that
authentication is one code path for every route, idempotent or not.
"""
from __future__ import annotations

import json

from common import moto_stack, table


def main() -> None:
    from chalice.test import Client

    with moto_stack() as (app_module, counter, root):
        with Client(app_module.app) as client:
            admin = root["adminApiKey"]
            org = json.loads(client.http.post("/orgs", headers={"authorization": f"Bearer {admin}",
                                                               "content-type": "application/json"},
                                              body=json.dumps({"name": "bench"})).body)
            headers = {"authorization": f"Bearer {org['adminKey']}", "content-type": "application/json"}

            def post(body, key=None):
                h = dict(headers, **({"Idempotency-Key": key} if key else {}))
                with counter.counting():
                    response = client.http.post("/keys", headers=h, body=json.dumps(body))
                assert response.status_code == 201, response.body
                return len(counter.calls), counter.summary()

            plain = post({"name": "plain", "scope": "operator"})
            first = post({"name": "idem", "scope": "operator"}, key="bench-1")
            replay = post({"name": "idem", "scope": "operator"}, key="bench-1")
            with counter.counting():
                client.http.get("/keys?limit=50", headers=headers)
            listing = (len(counter.calls), counter.summary())
    rows = [
        ("POST /keys, no Idempotency-Key", plain[0], 2, plain[1]),
        ("POST /keys, Idempotency-Key, first (was 4)", first[0], 2, first[1]),
        ("POST /keys, Idempotency-Key, replay", replay[0], 1, replay[1]),
        ("GET /keys (one page)", listing[0], 2, listing[1]),
    ]
    print("AWS calls per request (measured with botocore before-call hooks), beside the derived minimum\n")
    print(table(rows, ("request", "measured", "minimum", "calls")))


if __name__ == "__main__":
    main()
