"""Item lifetimes on moto: items past their lifetime are gone from reads at once and from the table
after the retention sweep; items inside it stay; a sweep cut short by its page budget finishes on
its next runs (chalicelib/retention, chalicelib/core/retention.py)."""
from __future__ import annotations

import pytest

from chalicelib.aws import clients, dynamo
from chalicelib.core.config import settings
from chalicelib.core.context import Ctx
from chalicelib.retention import service as retention
from chalicelib.retention import store as retention_store
from tests.handlers.test_ingest import ingest, rec, records
from tests.handlers.test_instances import operator_key, register_agent
from tests.handlers.test_reports import ORDER_A, write

DAY = 86400


@pytest.fixture
def ops(http, org):
    return operator_key(http, org)


def sweep_to_the_end(pages: int | None = None, runs: int = 1000) -> list[dict]:
    """Run the sweep until a run says it finished a lap (at most `runs` runs)."""
    results = []
    for _ in range(runs):
        results.append(retention.sweep(Ctx.system(), pages=pages))
        if results[-1]["finished"]:
            return results
    raise AssertionError(f"no lap finished in {runs} runs: {results[-3:]}")


def raw(table: str, key: dict) -> dict | None:
    return dynamo.get(table, key, consistent=True)


def test_ingest_records_live_their_lifetime_then_leave_reads_then_the_table(http, org, ops, clock):
    agent = register_agent(http, org, "edge")
    assert ingest(http, agent["apiKey"], [rec(1), rec(2)]).json["accepted"] == 2
    pk = f"ORG#{org['orgId']}#INGEST#AGENT#{agent['agentId']}"
    clock.shift(29.9 * DAY)  # INGEST_RETENTION_DAYS is 30
    assert len(records(http, ops).json["items"]) == 2
    sweep_to_the_end()
    assert raw(settings().main_table, {"PK": pk, "SK": "REC#r00001"})  # inside its lifetime: kept
    clock.shift(0.2 * DAY)
    assert records(http, ops).json["items"] == []  # gone from reads before anything deleted it
    assert raw(settings().main_table, {"PK": pk, "SK": "REC#r00001"})  # still stored: TTL deletes late
    sweep_to_the_end()
    assert raw(settings().main_table, {"PK": pk, "SK": "REC#r00001"}) is None
    assert raw(settings().main_table, {"PK": pk, "SK": "REC#r00002"}) is None


def test_audit_events_live_audit_retention_days(http, org, ops, clock):
    r = http.post("/sessions", ops, {"agentRole": "r"})
    assert r.status == 201, r.json
    query = f"/audit?entityType=session&entityId={r.json['sessionId']}"
    assert len(http.get(query, ops).json["items"]) == 1
    clock.shift(399 * DAY)
    assert len(http.get(query, ops).json["items"]) == 1
    clock.shift(2 * DAY)  # AUDIT_RETENTION_DAYS is 400
    assert http.get(query, ops).json["items"] == []
    sweep_to_the_end()
    org_trail = dynamo.query(settings().main_table, "PK = :pk", {":pk": f"ORG#{org['orgId']}#AUDIT"},
                             consistent=True).items
    assert org_trail == []  # the sweep deleted them; later audit events (the key's creation, ...) too


def test_patch_events_and_reports_live_their_lifetimes(http, org, ops, clock):
    write(org["orgId"], ORDER_A)
    assert http.post("/api/delivery/reports/generate", ops, {}).status == 200
    assert http.get("/api/delivery/reports?orderId=ORD-A", ops).status == 200
    assert len(http.get("/api/patches/logs?limit=100", ops).json["items"]) == len(ORDER_A)

    clock.shift(91 * DAY)  # PATCH_EVENT_RETENTION_DAYS is 90; the report (365) stays
    assert http.get("/api/patches/logs?limit=100", ops).json["items"] == []
    assert http.get("/api/delivery/reports?orderId=ORD-A", ops).status == 200
    sweep_to_the_end()
    assert dynamo.query(settings().main_table, "PK = :pk", {":pk": f"ORG#{org['orgId']}#PEVENTS"},
                        consistent=True).items == []

    clock.shift(275 * DAY)  # 366 days after it was generated
    assert http.get("/api/delivery/reports?orderId=ORD-A", ops).status == 404
    assert http.get("/api/delivery/reports", ops).json["items"] == []
    sweep_to_the_end()
    assert raw(settings().main_table, {"PK": f"ORG#{org['orgId']}#REPORT#ORD-A", "SK": "REPORT"}) is None


def test_log_entries_expire_log_retention_days_after_receipt_through_the_shared_rule(app_module):
    """Their read filter and its tests predate this module (logs/store.py `query`, tests/handlers/test_logs.py)."""
    from chalicelib.logs import store as logs_store

    assert logs_store.expiry(1000) == 1000 + 14 * DAY  # LOG_RETENTION_DAYS


def _seed_expired(count: int, now: float) -> list[dict]:
    """`count` main-table items past their time, one outbox and one idempotency item too, and fresh ones."""
    main, outbox, idem = settings().main_table, settings().outbox_table, settings().idempotency_table
    past, future = int(now) - 10, int(now) + 3600
    expired = [{"PK": f"RETENTION-TEST#{i:04d}", "SK": "X", "ttl": past} for i in range(count)]
    dynamo.batch_put(main, expired + [{"PK": "RETENTION-TEST#fresh", "SK": "X", "ttl": future},
                                       {"PK": "RETENTION-TEST#forever", "SK": "X"}])
    dynamo.batch_put(outbox, [{"id": "RETENTION-TEST-old", "ttl": past}, {"id": "RETENTION-TEST-new", "ttl": future}])
    dynamo.batch_put(idem, [{"id": "RETENTION-TEST-old", "expiration": past},
                            {"id": "RETENTION-TEST-new", "expiration": future}])
    return expired


def test_a_sweep_cut_short_by_its_page_budget_finishes_on_its_next_runs(app_module, clock):
    expired = _seed_expired(250, clock.now())
    main = settings().main_table

    first = retention.sweep(Ctx.system(), pages=1)
    assert first["pages"] == 1 and not first["finished"]
    cursor = retention_store.cursor()
    assert cursor != retention_store.Cursor()  # where the next run goes on

    runs = [first] + sweep_to_the_end(pages=1)
    assert len(runs) > 3  # 250 expired items alone need three pages of 99
    assert sum(r["deleted"] for r in runs) >= 252
    assert all(raw(main, {"PK": e["PK"], "SK": "X"}) is None for e in expired)
    assert raw(main, {"PK": "RETENTION-TEST#fresh", "SK": "X"})
    assert raw(main, {"PK": "RETENTION-TEST#forever", "SK": "X"})
    assert raw(settings().outbox_table, {"id": "RETENTION-TEST-old"}) is None
    assert raw(settings().outbox_table, {"id": "RETENTION-TEST-new"})
    assert raw(settings().idempotency_table, {"id": "RETENTION-TEST-old"}) is None
    assert raw(settings().idempotency_table, {"id": "RETENTION-TEST-new"})
    assert retention_store.cursor() == retention_store.Cursor()  # the lap ended: the next run starts over


def test_an_item_renewed_between_the_scan_and_the_delete_stays(app_module, clock, monkeypatch):
    main = settings().main_table
    past = int(clock.now()) - 10
    dynamo.batch_put(main, [{"PK": "RENEW-TEST#a", "SK": "X", "ttl": past},
                            {"PK": "RENEW-TEST#b", "SK": "X", "ttl": past}])
    real_page = retention_store.expired_page

    def page_then_renew(table, start_key, now):
        page = real_page(table, start_key, now)
        if table.role == "main":  # after the Scan saw it expired, someone renews `a`
            clients.client("dynamodb").update_item(
                TableName=main, Key={"PK": {"S": "RENEW-TEST#a"}, "SK": {"S": "X"}},
                UpdateExpression="SET #t = :t", ExpressionAttributeNames={"#t": "ttl"},
                ExpressionAttributeValues={":t": {"N": str(int(clock.now()) + 3600)}})
        return page

    monkeypatch.setattr(retention_store, "expired_page", page_then_renew)
    sweep_to_the_end()
    assert raw(main, {"PK": "RENEW-TEST#a", "SK": "X"})
    assert raw(main, {"PK": "RENEW-TEST#b", "SK": "X"}) is None



def test_terminal_sessions_are_deleted_after_their_retention_with_counters_kept_right(http, org, ops, clock,
                                                                                      monkeypatch):
    from chalicelib.sessions import service as sessions

    def session(*moves: str) -> str:
        sid = http.post("/sessions", ops, {"agentRole": "r"}).json["sessionId"]
        for status in moves:
            assert http.put(f"/sessions/{sid}", ops, {"status": status}).status == 200
        return sid

    ended = [session("active", "completed"), session("active", "failed"), session("expired"),
             session("active", "completed"), session("expired")]
    still_open = session("active")
    clock.shift(29 * DAY)  # EXPIRED_SESSION_RETENTION_DAYS is 30
    late = session("active", "completed")
    assert sessions.purge_ended(Ctx.system())["deleted"] == 0
    assert http.get("/sessions", ops).json["total"] == 7

    clock.shift(1.5 * DAY)
    monkeypatch.setattr(sessions, "RETENTION_PAGE", 2)  # small pages: a run of one page is cut short
    first = sessions.purge_ended(Ctx.system(), pages=1)
    assert not first["finished"] and 1 <= first["deleted"] <= 2
    runs = [first]
    while not runs[-1]["finished"]:
        assert len(runs) < 20
        runs.append(sessions.purge_ended(Ctx.system(), pages=1))
    assert sum(r["deleted"] for r in runs) == len(ended)

    for sid in ended:
        assert http.get(f"/sessions/{sid}", ops).status == 404
        assert raw(settings().main_table, {"PK": f"ORG#{org['orgId']}#SESSION#{sid}", "SK": "LIST"}) is None
    listed = http.get("/sessions", ops).json
    assert sorted(s["sessionId"] for s in listed["sessions"]) == sorted([still_open, late]) and listed["total"] == 2
    assert http.get("/sessions?status=completed", ops).json["total"] == 1
    assert http.get("/sessions?status=expired", ops).json["total"] == 0
    assert http.get(f"/sessions/{still_open}", ops).json["status"] == "active"
    trail = http.get(f"/audit?entityType=session&entityId={ended[0]}", ops).json["items"]
    assert trail[0]["action"] == "deleted" and trail[0]["actor"] == "system"


def put_file(http, key, ws, path, text):
    r = http.call("PUT", f"/api/workspaces/{ws}/files?path={path}", key, raw_body=text.encode(),
                  headers={"content-type": "text/plain"})
    assert r.status == 200, r.json


def stored_blobs(org_id: str) -> set[str]:
    listed = clients.client("s3").list_objects_v2(Bucket=settings().workspace_bucket, Prefix=f"orgs/{org_id}/blobs/")
    return {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])}


def test_workspace_blobs_no_manifest_names_are_swept_after_their_grace_in_budgeted_runs(http, root, clock,
                                                                                         monkeypatch):
    import hashlib

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    orgs = []
    for name in ("blobs-a", "blobs-b"):
        org = http.post("/orgs", root["adminApiKey"], {"name": name}).json
        orgs.append((org["orgId"], operator_key(http, org)))
    (org_a, key_a), (org_b, key_b) = orgs
    for i in range(3):
        put_file(http, key_a, "alpha", "a.txt", f"one {i}")  # each version but the last is an orphan
    put_file(http, key_a, "beta", "c.txt", "one 0")  # ...except one another workspace still names
    put_file(http, key_b, "gamma", "x.txt", "old")
    put_file(http, key_b, "gamma", "x.txt", "new")
    assert {digest("one 1"), digest("old")} <= stored_blobs(org_a) | stored_blobs(org_b)

    # Inside the grace (ORPHAN_BLOB_GRACE_SECONDS, an hour): a commit in flight may still name them.
    assert retention.sweep_workspace_blobs(Ctx.system())["deleted"] == 0

    clock.shift(2 * 3600)
    monkeypatch.setattr(retention, "BLOBS_PER_PAGE", 1)  # one blob per page, one page per run: cut short
    first = retention.sweep_workspace_blobs(Ctx.system(), pages=1)
    assert first["pages"] == 1 and not first["finished"]
    runs = [first]
    while not runs[-1]["finished"]:
        assert len(runs) < 30
        runs.append(retention.sweep_workspace_blobs(Ctx.system(), pages=1))
    assert sum(r["deleted"] for r in runs) == 2

    assert stored_blobs(org_a) == {digest("one 0"), digest("one 2")}
    assert stored_blobs(org_b) == {digest("new")}
    assert http.get("/api/workspaces/alpha/files?path=a.txt", key_a).json["content"] == "one 2"
    assert http.get("/api/workspaces/beta/files?path=c.txt", key_a).json["content"] == "one 0"
    assert http.get("/api/workspaces/gamma/files?path=x.txt", key_b).json["content"] == "new"
    assert retention_store.blob_cursor() == retention_store.BlobCursor()  # the lap ended
