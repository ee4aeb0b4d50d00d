"""The ops scan on the local stack, filing on the fake GitHub server (real HTTP both ways).

Failures of three kinds (a failed job, an ERROR log, a failed patch), each
repeated with different ids, become exactly three GitHub issues; a second scan
opens none and comments on each; a rate-limited create (403, then 201 after
Retry-After) still yields one issue; losing the local group records and
scanning again opens no duplicate. The scan runs both through the schedule
endpoint of the local stack and through POST /api/ops/scan.
"""
from __future__ import annotations

import time
import urllib.request

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call
from tests.fakes.github_server import FakeGitHub
from tests.support import hostile
from tests.support.failures import FailureMaker

pytestmark = pytest.mark.e2e

TOKEN = "ghp_e2e_secret_value"
ISSUES = "POST /repos/{owner}/{repo}/issues"
COMMENTS = "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"
SCHEDULE = "ops_nightly_scan"


SCHEDULES = "/_local/schedules"  # the local stack's schedule endpoint: the one place that knows the path


def run_schedule(stack, name: str):
    """Fire a schedule now and wait for it: `POST /_local/schedules/{name}/run` -> {name, ok, durationMs, error?}."""
    return call(stack.url, "POST", f"{SCHEDULES}/{name}/run", None, timeout=120)


@pytest.fixture(scope="module")
def github():
    with FakeGitHub(token=TOKEN) as fake:
        yield fake
    assert fake.violations == []


@pytest.fixture(scope="module")
def stack(github):
    env = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPO": github.repo_full, "GITHUB_API_URL": github.url}
    with running_devstack(app_module="app", env=env) as s:
        yield s
    assert TOKEN not in s.log_tail(100000)


@pytest.fixture(scope="module")
def maker(stack):
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "ops e2e"}).json
    op = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "op", "scope": "operator"}).json["apiKey"]

    def transport(method, path, key, body):
        r = call(stack.url, method, path, key, body)
        return r.status, r.json

    return FailureMaker(transport, op)


def failed_patch(stack, key: str, i: int) -> None:
    """A batch whose one operation's marker is not in the file: the worker records a failed event."""
    request = urllib.request.Request(f"{stack.url}/api/workspaces/ops-e2e/files?path=a.txt", data=b"a\n",
                                     method="PUT", headers={"content-type": "text/plain",
                                                            "authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    r = call(stack.url, "POST", "/api/patches/apply", key, {
        "workspace": "ops-e2e", "orderId": f"ORD-{i}", "factory": "e2e", "phase": "ops",
        "operations": [{"op": "replace-block", "file": "a.txt", "anchor": {"marker": f"###GONE_{i}###"},
                        "content": "x"}]})
    assert r.status == 202, r.json
    deadline = time.monotonic() + 60
    while call(stack.url, "GET", f"/api/patches/batches/{r.json['batchId']}", key).json["status"] == "queued":
        assert time.monotonic() < deadline, "the patch worker did not finish the batch"
        time.sleep(0.2)  # polling the batch's status, not waiting for a guess


def make_failures(stack, maker, i: int) -> None:
    maker.failed_job(i)
    maker.error_log(i)
    failed_patch(stack, maker.key, i)


def issues(stack) -> list[dict]:
    r = call(stack.url, "GET", "/api/ops/issues", stack.admin_api_key)
    assert r.status == 200, r.json
    return r.json["items"]


def test_three_kinds_three_issues_then_comments_rate_limits_and_lost_records(stack, maker, github):
    for i in range(3):
        make_failures(stack, maker, i)
    github.rate_limit(ISSUES, kind="secondary", retry_after=1)

    fired = run_schedule(stack, SCHEDULE)
    assert fired.status == 200 and fired.json.get("ok", True), fired.json
    assert len(github.issues) == 3, [i["title"] for i in github.issues.values()]
    assert [r.status for r in github.calls(ISSUES)] == [403, 201, 201, 201]
    kinds = sorted(i["title"].split(":")[0] for i in github.issues.values())
    assert kinds == ["[ops] job build", "[ops] log", "[ops] patch failed replace-block"]
    assert sorted(i["count"] for i in issues(stack)) == [3, 3, 3]

    # a second scan after each kind recurred (new ids): no new issue, one comment on each
    make_failures(stack, maker, 3)
    r = call(stack.url, "POST", "/api/ops/scan", stack.admin_api_key, {"scope": "incremental"}, timeout=120)
    assert r.status == 200, r.json
    assert (r.json["issuesOpened"], r.json["issuesUpdated"]) == (0, 3)
    assert TOKEN not in r.headers.get("X-Trace-Id", "") + str(r.json)
    assert len(github.issues) == 3 and [len(c) for c in github.comments.values()] == [1, 1, 1]

    # the local group records are lost: the next scan finds each issue by its marker
    table = stack.aws("dynamodb")
    main = stack.environment["MAIN_TABLE"]
    for item in table.scan(TableName=main)["Items"]:
        if item["PK"]["S"].startswith("OPS#GROUP#"):
            table.delete_item(TableName=main, Key={"PK": item["PK"], "SK": item["SK"]})
    assert issues(stack) == []
    fired = run_schedule(stack, SCHEDULE)
    assert fired.status == 200 and fired.json.get("ok", True), fired.json
    assert len(github.issues) == 3 and len(github.calls(ISSUES)) == 4
    rebuilt = issues(stack)
    assert sorted(i["githubNumber"] for i in rebuilt) == [1, 2, 3] and all(i["filed"] for i in rebuilt)
    assert sorted(i["count"] for i in rebuilt) == [4, 4, 4]
    summary = call(stack.url, "GET", "/api/ops/summary", stack.admin_api_key).json
    assert summary["total"] == 3 and summary["byStatus"]["open"] == 3


def test_hostile_failure_text_is_filed_redacted_inert_and_bounded(stack, maker, github):
    """Issue 18 through the local stack: a failed job whose error carries every secret shape, mentions,
    references, HTML and a 190 KB traceback is filed with none of them live, within GitHub's limits, and
    its issue names the agent and the job."""
    secrets = " ".join(text for text, _ in hostile.SECRETS.values())
    trace = ("Traceback (most recent call last):\n  File \"/srv/agent/run.py\", line 9, in step\n    go()\n"
             + "x" * 190_000 + "\nRuntimeError: " + secrets)
    status, job = maker.call("POST", "/jobs", maker.key, {"agentId": maker.agent["agentId"], "type": "hostile"})
    assert status == 201, job
    status, polled = maker.call("GET", f"/jobs/poll?agentId={maker.agent['agentId']}", maker.agent["apiKey"], None)
    run = next(r for r in polled["jobs"] if r["jobId"] == job["jobId"])
    status, answer = maker.call("POST", "/jobs/complete", maker.agent["apiKey"], {
        "jobId": job["jobId"], "runId": run["runId"], "agentId": maker.agent["agentId"], "status": "FAILED",
        "error": {"code": "EXIT_CODE", "message": hostile.HOSTILE[:2000] + " " + secrets, "details": trace}})
    assert status == 204, answer
    fired = run_schedule(stack, SCHEDULE)
    assert fired.status == 200 and fired.json.get("ok", True), fired.json
    (issue,) = [i for i in github.issues.values() if i["title"].startswith("[ops] job hostile")]
    assert maker.agent["agentId"] in issue["body"] and job["jobId"] in issue["body"]
    for i in github.issues.values():
        assert hostile.problems(i["title"], hostile.GITHUB_TITLE_LIMIT) == []
        assert hostile.problems(i["body"], first_line_comment=True) == []
        for c in github.comments[i["number"]]:
            assert hostile.problems(c["body"]) == []
    assert [r.status for r in github.calls(ISSUES)][-1] == 201
