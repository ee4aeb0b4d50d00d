"""AWS calls made by one authenticated POST, with and without Idempotency-Key, beside the minimum.

The minimum, derived (docs/ARCHITECTURE.md, "Cost of a request"):
- authenticate: 1 read (GetItem of the key item; no cache, revocation is immediate);
- commit: 1 TransactWriteItems holding the domain item, its audit event and outbox event;
- idempotency: the record rides in that same transaction, so a first call needs 2 calls.
Measured (core/idempotency.py, issue 20): a first call is auth GetItem + one
TransactWriteItems holding the domain's staged writes and the record: 2 (it was
3 with a GetItem of the record first, and 4 with Powertools' PutItem in
progress + UpdateItem complete). A replay is auth GetItem + the same
transaction, whose failed record condition hands the record back
(ReturnValuesOnConditionCheckFailure=ALL_OLD): 2 (it was 2 GetItems).
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

            # A key's first use in a minute records lastUsedAt (one UpdateItem; none again for a minute):
            # measured on its own row, then the rows below are the steady state.
            with counter.counting():
                client.http.get("/keys?limit=1", headers=headers)
            first_use = (len(counter.calls), counter.summary())
            plain = post({"name": "plain", "scope": "operator"})
            first = post({"name": "idem", "scope": "operator"}, key="bench-1")
            replay = post({"name": "idem", "scope": "operator"}, key="bench-1")
            with counter.counting():
                client.http.get("/keys?limit=50", headers=headers)
            listing = (len(counter.calls), counter.summary())
    rows = [
        ("GET /keys, the key's first use in a minute (lastUsedAt)", first_use[0], 3, first_use[1]),
        ("POST /keys, no Idempotency-Key", plain[0], 2, plain[1]),
        ("POST /keys, Idempotency-Key, first (before issue 20: 3)", first[0], 2, first[1]),
        ("POST /keys, Idempotency-Key, replay (before issue 20: 2)", replay[0], 2, replay[1]),
        ("GET /keys (one page)", listing[0], 2, listing[1]),
    ]
    print("AWS calls per request (measured with botocore before-call hooks), beside the derived minimum\n")
    print(table(rows, ("request", "measured", "minimum", "calls")))


if __name__ == "__main__":
    main()
