"""Item lifetimes end to end on the local stack (whose embedded DynamoDB never runs TTL): the
stack gets INGEST_RETENTION_DAYS of a few seconds and a sweep page budget of one page from its
environment; records past their lifetime leave reads at once and the table once the
`retention_sweep` schedule (fired through POST /_local/schedules/{name}/run) has run; a run cut
short by its page budget is finished by the next runs; items inside their lifetime stay.
"""
from __future__ import annotations

import time
import urllib.request

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call

pytestmark = pytest.mark.e2e

INGEST_SECONDS = 4
OLD_RECORDS = 150  # more than one sweep page (99 items)


@pytest.fixture(scope="module")
def stack():
    env = {"INGEST_RETENTION_DAYS": str(INGEST_SECONDS / 86400), "RETENTION_SWEEP_PAGES": "1",
           "EXPIRED_SESSION_RETENTION_DAYS": str(INGEST_SECONDS / 86400), "ORPHAN_BLOB_GRACE_SECONDS": "0"}
    with running_devstack(app_module="app", env=env) as s:
        yield s


def run_schedule(stack, name: str) -> dict:
    r = call(stack.url, "POST", f"/_local/schedules/{name}/run")
    assert r.status == 200 and r.json["ok"], r.json
    return r.json


def stored_records(stack, org_id: str, agent_id: str) -> int:
    """How many ingest items the table still holds (read straight from the embedded DynamoDB)."""
    ddb = stack.aws("dynamodb")
    args = {"TableName": stack.environment["MAIN_TABLE"], "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"ORG#{org_id}#INGEST#AGENT#{agent_id}"}},
            "Select": "COUNT", "ConsistentRead": True}
    return ddb.query(**args)["Count"]


def _put_file(stack, key: str, text: str) -> None:
    request = urllib.request.Request(stack.url + "/api/workspaces/ws/files?path=a.txt", data=text.encode(),
                                     method="PUT", headers={"content-type": "text/plain",
                                                            "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def blob_keys(stack, org_id: str) -> list[str]:
    listed = stack.aws("s3").list_objects_v2(Bucket=stack.environment["WORKSPACE_BUCKET"],
                                             Prefix=f"orgs/{org_id}/blobs/")
    return [o["Key"] for o in listed.get("Contents", [])]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_the_retention_schedule_is_listed(stack):
    schedules = {s["name"]: s for s in call(stack.url, "GET", "/_local/schedules").json}
    for name in ("retention_sweep", "purge_ended_sessions", "workspace_blob_sweep"):
        assert schedules[name]["expression"] == "rate(1 hour)", schedules


def test_records_past_their_lifetime_are_swept_in_budgeted_runs_and_the_rest_stays(stack):
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "retention"}).json
    org_id = org["orgId"]
    ops = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
    agent = call(stack.url, "POST", "/agents", ops, {"name": "edge"}).json
    session = call(stack.url, "POST", "/sessions", ops, {"agentRole": "r"}).json
    ended = call(stack.url, "POST", "/sessions", ops, {"agentRole": "r"}).json
    assert call(stack.url, "PUT", f"/sessions/{ended['sessionId']}", ops, {"status": "expired"}).status == 200
    for text in ("first", "second"):  # the first version's blob becomes an orphan
        _put_file(stack, ops, text)
    records = [{"recordId": f"r{i:04d}", "table": "m", "data": {"i": i}, "ts": "2026-12-01T10:00:00.000Z"}
               for i in range(OLD_RECORDS)]
    r = call(stack.url, "POST", "/ingest", agent["apiKey"], {"batchId": "old", "records": records})
    assert r.status == 200 and r.json["accepted"] == OLD_RECORDS, r.json

    # Inside their lifetime: a sweep deletes none of them.
    run_schedule(stack, "retention_sweep")
    assert stored_records(stack, org_id, agent["agentId"]) == OLD_RECORDS

    # Past it: gone from reads at once (the reads filter), still stored until the sweep comes.
    def unread() -> bool:
        return call(stack.url, "GET", "/ingest/records?limit=10", ops).json["items"] == []

    wait_until(unread, INGEST_SECONDS * 4, "the records to pass their lifetime")
    assert stored_records(stack, org_id, agent["agentId"]) == OLD_RECORDS

    # One page per run (RETENTION_SWEEP_PAGES=1): a run cannot delete them all; the next runs go on.
    run_schedule(stack, "retention_sweep")
    left = stored_records(stack, org_id, agent["agentId"])
    assert left >= OLD_RECORDS - 99
    runs = 1
    while left:
        assert runs < 60, f"{left} expired records left after {runs} runs"
        run_schedule(stack, "retention_sweep")
        runs += 1
        left = stored_records(stack, org_id, agent["agentId"])
    assert runs > 1

    # The ended session is deleted (EXPIRED_SESSION_RETENTION_DAYS), with its place in the counters.
    assert call(stack.url, "GET", "/sessions", ops).json["total"] == 2
    run_schedule(stack, "purge_ended_sessions")
    assert call(stack.url, "GET", f"/sessions/{ended['sessionId']}", ops).status == 404
    assert call(stack.url, "GET", "/sessions", ops).json["total"] == 1

    # The orphaned blob goes (grace 0); the one the manifest names stays.
    assert len(blob_keys(stack, org_id)) == 2
    for _ in range(10):
        run_schedule(stack, "workspace_blob_sweep")
        if len(blob_keys(stack, org_id)) == 1:
            break
    assert len(blob_keys(stack, org_id)) == 1
    assert call(stack.url, "GET", "/api/workspaces/ws/files?path=a.txt", ops).json["content"] == "second"

    # Items inside their lifetime stayed: the open session, the org's audit trail (400 days).
    assert call(stack.url, "GET", f"/sessions/{session['sessionId']}", ops).status == 200
    trail = call(stack.url, "GET", f"/audit?entityType=session&entityId={session['sessionId']}", ops).json
    assert [e["action"] for e in trail["items"]] == ["created"]
