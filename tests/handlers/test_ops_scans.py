"""Every ops scan is kept: GET /api/ops/scans (newest first, paged) and GET /api/ops/scans/{scanId}, for the root
organization's admins; a scan that fails keeps its error; kept scans live REPORT_RETENTION_DAYS."""
from __future__ import annotations

import time

import pytest

from chalicelib.core.context import Ctx
from chalicelib.ops import scan, sources


@pytest.fixture
def admin(root):
    return root["adminApiKey"]


def post_scan(http, admin, scope="incremental"):
    r = http.post("/api/ops/scan", admin, {"scope": scope})
    assert r.status == 200, r.json
    return r.json


def test_a_scan_is_kept_with_its_sources_groups_and_issues(http, admin, fleet):
    job = fleet.create(type="build", pool="p")
    agent_id, _ = fleet.register("ci-agent", pools=["p"])
    polled = fleet.poll(agent_id)["jobs"][0]
    fleet.complete(agent_id, polled, status="FAILED", error={"code": "EXIT", "message": "step 3 exited 2"})
    assert job
    answer = post_scan(http, admin)
    kept = http.get(f"/api/ops/scans/{answer['scanId']}", admin)
    assert kept.status == 200, kept.json
    record = kept.json
    assert record["scanId"] == answer["scanId"] and record["scope"] == "incremental"
    assert record["startedAt"] <= record["finishedAt"] and record["finishedAt"].endswith("Z")
    names = {s["name"]: s for s in record["sources"]}
    assert {"job", "log", "patch", "job-dlq"} <= set(names)
    assert names["job"]["read"] >= 1 and names["job"]["errors"] == []
    assert record["groups"] >= 1 and record["ingested"] == answer["ingested"]
    assert (record["issuesOpened"], record["issuesUpdated"]) == (answer["issuesOpened"], answer["issuesUpdated"])
    assert "error" not in record


def test_scans_are_listed_newest_first_and_paged(http, admin):
    ids = [post_scan(http, admin)["scanId"] for _ in range(3)]
    first = http.get("/api/ops/scans?limit=2", admin).json
    assert [s["scanId"] for s in first["items"]] == ids[::-1][:2] and first["nextToken"]
    second = http.get(f"/api/ops/scans?limit=2&nextToken={first['nextToken']}", admin).json
    assert second["items"][0]["scanId"] == ids[0]
    assert http.get("/api/ops/scans?nextToken=garbage", admin).status == 400
    assert http.get("/api/ops/scans?limit=0", admin).status == 400


def test_only_the_root_organizations_admins_see_scans(http, org, admin):
    scan_id = post_scan(http, admin)["scanId"]
    assert http.get("/api/ops/scans", org["adminKey"]).status == 403
    assert http.get(f"/api/ops/scans/{scan_id}", org["adminKey"]).status == 403
    missing = http.get("/api/ops/scans/01NOSUCHSCAN0000000000000A", admin)
    assert missing.status == 404 and missing.json["error"]["code"] == "NOT_FOUND"
    assert http.get("/api/ops/scans", None).status == 401


def test_a_failed_scan_is_kept_with_its_error(http, admin, root, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the sources could not be listed (token=SecretTokenValue)")

    monkeypatch.setattr(sources, "all_sources", broken)
    with pytest.raises(RuntimeError):
        scan.run(Ctx.system(root["orgId"]), "full", time.time() + 30, use_github=False)
    newest = http.get("/api/ops/scans?limit=1", admin).json["items"][0]
    assert newest["scope"] == "full" and newest["finishedAt"]
    assert newest["error"].startswith("RuntimeError: the sources could not be listed")
    assert "SecretTokenValue" not in newest["error"]  # redacted like every text the scan keeps


def test_a_second_scan_while_one_runs_is_409_and_keeps_nothing(http, admin, root):
    before = http.get("/api/ops/scans?limit=100", admin).json["items"]
    assert scan.acquire_lock(Ctx.system(root["orgId"]), "someone-else")
    try:
        r = http.post("/api/ops/scan", admin, {"scope": "incremental"})
        assert r.status == 409
    finally:
        scan.release_lock(Ctx.system(root["orgId"]), "someone-else")
    assert http.get("/api/ops/scans?limit=100", admin).json["items"] == before


def test_kept_scans_live_as_long_as_reports(http, admin, clock, monkeypatch):
    from chalicelib.core import config

    scan_id = post_scan(http, admin)["scanId"]
    days = config.settings().report_retention_days
    clock.shift(days * 86400 - 60)
    assert http.get(f"/api/ops/scans/{scan_id}", admin).status == 200
    clock.shift(120)
    assert http.get(f"/api/ops/scans/{scan_id}", admin).status == 404
    assert scan_id not in [s["scanId"] for s in http.get("/api/ops/scans?limit=100", admin).json["items"]]
