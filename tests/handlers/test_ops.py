"""The ops scan on moto through the Chalice test client, filing on the fake GitHub (real HTTP)."""
from __future__ import annotations

import os

import boto3
import pytest

from tests.handlers.conftest import configured_github
from tests.support.failures import FailureMaker

ISSUES = "POST /repos/{owner}/{repo}/issues"
COMMENTS = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
SEARCH = "GET /search/issues"


@pytest.fixture(scope="module")
def github(aws):
    with configured_github("ghp_handler_secret") as fake:
        yield fake


@pytest.fixture
def admin(root):
    return root["adminApiKey"]


@pytest.fixture
def maker(http, org):
    def call(method, path, key, body):
        r = http.call(method, path, key, body)
        return r.status, r.json
    status, created = call("POST", "/keys", org["adminKey"], {"name": "op", "scope": "operator"})
    assert status == 201, created
    return FailureMaker(call, created["apiKey"])


def scan(http, admin, scope="incremental"):
    r = http.post("/api/ops/scan", admin, {"scope": scope})
    assert r.status == 200, r.json
    return r.json


def delete_groups():
    table = boto3.resource("dynamodb").Table(os.environ["MAIN_TABLE"])
    for item in table.scan()["Items"]:
        if item["PK"].startswith("OPS#GROUP#"):
            table.delete_item(Key={"PK": item["PK"], "SK": item["SK"]})


def test_scan_groups_files_comments_reopens_and_never_duplicates(http, admin, maker, github, outbox):
    for i in range(3):
        maker.failed_job(i)
        maker.error_log(i)
    first = scan(http, admin)
    assert first["issuesOpened"] == 2 and first["issuesUpdated"] == 0 and first["ingested"] == 6
    assert len(github.issues) == 2
    bodies = [i["body"] for i in github.issues.values()]
    assert all("<!-- ops-fingerprint: " in b for b in bodies)
    assert "ghp_handler_secret" not in str(first)
    events = [e for e in outbox.drain() if e["event"] == "ops:issue"]
    assert sorted(e["data"]["action"] for e in events) == ["opened", "opened"]

    listed = http.get("/api/ops/issues", admin).json["items"]
    assert sorted(i["count"] for i in listed) == [3, 3] and all(i["filed"] for i in listed)

    # nothing new: no GitHub writes at all
    github.reset_calls()
    quiet = scan(http, admin)
    assert (quiet["issuesOpened"], quiet["issuesUpdated"]) == (0, 0)
    assert github.calls(ISSUES) == [] and github.calls(COMMENTS) == []

    # recurrence: one comment per group, no new issue
    maker.failed_job(9)
    maker.error_log(9)
    second = scan(http, admin)
    assert (second["issuesOpened"], second["issuesUpdated"]) == (0, 2)
    assert len(github.issues) == 2 and all(len(c) == 1 for c in github.comments.values())
    assert "Occurrences: 4 (+1" in github.comments[1][0]["body"]

    # closed on GitHub, then recurs: reopened with a comment
    job_issue = next(n for n, i in github.issues.items() if "[ops] job" in i["title"])
    github.close_issue(job_issue)
    scan(http, admin)  # learns it was closed
    closed = http.get("/api/ops/issues?status=closed", admin).json["items"]
    assert [i["githubNumber"] for i in closed] == [job_issue]
    maker.failed_job(10)
    third = scan(http, admin)
    assert third["issuesUpdated"] == 1 and github.issues[job_issue]["state"] == "open"
    assert github.comments[job_issue][-1]["body"].startswith("Recurred after the issue was closed")

    # the local records are lost: a full rescan finds the issues by their marker
    delete_groups()
    github.reset_calls()
    rebuilt = scan(http, admin, "full")
    assert rebuilt["issuesOpened"] == 0 and rebuilt["issuesUpdated"] == 2
    assert len(github.issues) == 2 and len(github.calls(SEARCH)) == 2 and github.calls(ISSUES) == []
    counts = sorted(i["count"] for i in http.get("/api/ops/issues", admin).json["items"])
    assert counts == [4, 5]


def test_rate_limited_create_still_yields_one_issue(http, admin, maker, github):
    github.rate_limit(ISSUES, kind="secondary", retry_after=1)
    maker.error_log(1)
    # a message no other test produces: its own group
    maker.call("POST", f"/instances/{maker.instance['instanceId']}/logs", maker.key,
               {"entries": [{"level": "ERROR", "message": "disk quota exceeded on volume vol-0a1b2c3d4e5f"}]})
    before = len(github.issues)
    result = scan(http, admin)
    assert result["issuesOpened"] == 1
    assert len(github.issues) == before + 1
    assert [r.status for r in github.calls(ISSUES)][-2:] == [403, 201]


def test_claim_summary_and_access(http, admin, github, org, maker):
    maker.call("POST", f"/instances/{maker.instance['instanceId']}/logs", maker.key,
               {"entries": [{"level": "ERROR", "message": "queue consumer stalled for 41 s"}]})
    scan(http, admin)
    items = http.get("/api/ops/issues", admin).json["items"]
    target = next(i for i in items if "stalled" in i["title"])
    r = http.post(f"/api/ops/issues/{target['id']}/claim", admin, {"claimedBy": "alice"})
    assert r.status == 200, r.json
    assert r.json["status"] == "in_progress" and r.json["claimedBy"] == "alice"
    issue = github.issues[target["githubNumber"]]
    assert [a["login"] for a in issue["assignees"]] == ["alice"]
    assert github.comments[target["githubNumber"]][-1]["body"] == "Claimed by alice: status in_progress."
    summary = http.get("/api/ops/summary", admin).json
    assert summary["byStatus"]["in_progress"] >= 1 and summary["total"] == len(items)
    assert sum(summary["bySeverity"].values()) == summary["total"]
    assert http.post("/api/ops/issues/0000000000000000/claim", admin, {"claimedBy": "x"}).status == 404
    assert http.post(f"/api/ops/issues/{target['id']}/claim", admin, {}).status == 400
    # a tenant's admin does not see the platform's failures
    assert http.get("/api/ops/issues", org["adminKey"]).status == 403


def test_without_a_token_groups_are_recorded_not_filed(http, admin, maker, github):
    from chalicelib.core import config

    os.environ.pop("GITHUB_TOKEN")
    config.settings.cache_clear()
    try:
        maker.call("POST", f"/instances/{maker.instance['instanceId']}/logs", maker.key,
                   {"entries": [{"level": "ERROR", "message": "certificate for host-17 expires in 3 days"}]})
        before = len(github.requests)
        result = scan(http, admin)
        assert result["notFiled"] == 1 and result["issuesOpened"] == 0 and len(github.requests) == before
        assert http.get("/api/ops/summary", admin).json["notFiled"] == 1
    finally:
        os.environ["GITHUB_TOKEN"] = github.token
        config.settings.cache_clear()
    assert scan(http, admin)["issuesOpened"] == 1  # filed once a token is there


def test_a_repeated_claim_with_its_idempotency_key_replays_and_comments_once(http, admin, github, maker):
    """The claim is idempotent under a lock (its endpoint says idempotency="locked"): GitHub hears it once."""
    maker.call("POST", f"/instances/{maker.instance['instanceId']}/logs", maker.key,
               {"entries": [{"level": "ERROR", "message": "cache warmer gave up after 9 tries"}]})
    scan(http, admin)
    target = next(i for i in http.get("/api/ops/issues", admin).json["items"] if "warmer" in i["title"])
    comments_before = len(github.comments.get(target["githubNumber"], []))
    path, body, key = f"/api/ops/issues/{target['id']}/claim", {"claimedBy": "bob"}, {"Idempotency-Key": "claim-1"}
    first = http.post(path, admin, body, headers=key)
    again = http.post(path, admin, body, headers=key)
    assert first.status == again.status == 200 and again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert len(github.comments[target["githubNumber"]]) == comments_before + 1
