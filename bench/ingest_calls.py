"""AWS calls per 500-record POST /ingest (new, all duplicates, half and half), beside two baselines.

The design: one conditional Put per record, in TransactWriteItems of 99 records
+ the agent's active check; a cancelled transaction names every existing
record, which are dropped and the chunk re-sent once. Baselines, derived:
- read-then-write: BatchGetItem (100 keys per call: 5) to find the existing
  records, then BatchWriteItem (25 per call: 20 for 500 new) for the rest:
  26 calls with auth, and racy (two uploads of one batch both see "missing");
- one PutItem per record with the condition: 501 calls.
"""
from __future__ import annotations

import json

from common import moto_stack, table, warm


def main() -> None:
    from chalice.test import Client

    with moto_stack() as (app_module, counter, root):
        from devstack import fast_moto

        fast_moto.patch_transactions()  # moto deep-copies the table per transaction; irrelevant to the count
        with Client(app_module.app) as client:
            def post(path, key, body):
                response = client.http.post(path, headers={"authorization": f"Bearer {key}",
                                                           "content-type": "application/json"},
                                            body=json.dumps(body))
                assert response.status_code in (200, 201), response.body
                return json.loads(response.body)

            org = post("/orgs", root["adminApiKey"], {"name": "bench"})
            agent = post("/agents", org["adminKey"], {"name": "edge"})
            key = agent["apiKey"]

            def records(start, count):
                return [{"recordId": f"r{i:06d}", "table": "metrics", "data": {"i": i, "v": 0.5},
                         "ts": "2026-12-01T10:00:00.000Z"} for i in range(start, start + count)]

            def ingest(batch):
                warm(key)
                with counter.counting():
                    answer = post("/ingest", key, {"batchId": "b", "records": batch})
                return len(counter.calls), counter.summary(), answer

            new = ingest(records(0, 500))
            dup = ingest(records(0, 500))
            half = ingest(records(250, 500))
    rows = [
        ("500 new", new[0], 26, 501, new[1], f"{new[2]['accepted']}/{new[2]['duplicates']}"),
        ("500 duplicates (a retried batch)", dup[0], 6, 501, dup[1], f"{dup[2]['accepted']}/{dup[2]['duplicates']}"),
        ("250 new + 250 duplicates", half[0], 16, 501, half[1], f"{half[2]['accepted']}/{half[2]['duplicates']}"),
    ]
    print("AWS calls per 500-record POST /ingest (botocore before-call hooks), beside read-then-write "
          "(BatchGet + BatchWrite) and one conditional PutItem per record\n")
    print(table(rows, ("batch", "measured", "read-then-write", "put-per-record", "calls", "accepted/duplicates")))


if __name__ == "__main__":
    main()
