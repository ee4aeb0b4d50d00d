"""Issue 18, findings 1 to 5: what the ops scan files on GitHub when tenants write hostile failure text.

The scan runs on moto through the Chalice test client and files on the fake GitHub (real HTTP, which
refuses a body over 65,536 characters or a title over 256 with a 422, as GitHub does). Every title, body
and comment the fake received is checked by tests/support/hostile.problems: no secret of any shape, no
live mention or issue reference, no raw HTML, no link or image, nothing over GitHub's limits.
"""
from __future__ import annotations


import pytest

from chalicelib.ops.github import GitHub
from tests.fakes.github_server import FakeGitHub
from tests.handlers.conftest import configured_github
from tests.handlers.test_patches_api import Queue
from tests.support import hostile

ISSUES = "POST /repos/{owner}/{repo}/issues"


@pytest.fixture(scope="module")
def github(aws):
    with configured_github("ghp_hostile_test_token") as fake:
        yield fake


class Tenant:
    """An organization with an operator key, an agent in a pool and an instance: makes failures with any text."""

    def __init__(self, http, root_key: str, name: str):
        self.http = http
        r = http.post("/orgs", root_key, {"name": name})
        assert r.status == 201, r.json
        self.org_id, admin = r.json["orgId"], r.json["adminKey"]
        r = http.post("/keys", admin, {"name": "op", "scope": "operator"})
        assert r.status == 201, r.json
        self.key = r.json["apiKey"]
        r = http.post("/agents", self.key, {"name": f"{name}-agent", "pools": ["gpu-east"]})
        assert r.status == 201, r.json
        self.agent = r.json
        r = http.post("/instances", self.key, {"agentId": self.agent["agentId"], "name": "web"})
        assert r.status == 201, r.json
        self.instance = r.json

    def failed_job(self, message: str, details=None, job_type: str = "build", pool: str | None = None) -> str:
        target = {"pool": pool} if pool else {"agentId": self.agent["agentId"]}
        r = self.http.post("/jobs", self.key, {**target, "type": job_type})
        assert r.status == 201, r.json
        job_id = r.json["jobId"]
        polled = self.http.get(f"/jobs/poll?agentId={self.agent['agentId']}", self.agent["apiKey"]).json
        run = next(j for j in polled["jobs"] if j["jobId"] == job_id)
        error = {"code": "EXIT_CODE", "message": message, **({"details": details} if details is not None else {})}
        r = self.http.post("/jobs/complete", self.agent["apiKey"], {
            "jobId": job_id, "runId": run["runId"], "agentId": self.agent["agentId"], "status": "FAILED",
            "error": error})
        assert r.status == 204, r.json
        return job_id

    def error_log(self, message: str) -> None:
        r = self.http.post(f"/instances/{self.instance['instanceId']}/logs", self.key,
                           {"entries": [{"level": "ERROR", "message": message}]})
        assert r.status == 202, r.json


def scan(http, admin, scope="incremental"):
    r = http.post("/api/ops/scan", admin, {"scope": scope})
    assert r.status == 200, r.json
    return r.json


def filed_texts(github: FakeGitHub) -> list[tuple[str, str, int, bool]]:
    """(what, text, limit, first line is the marker) for every title, body and comment on the fake."""
    out = []
    for number, issue in github.issues.items():
        out.append((f"#{number} title", issue["title"], hostile.GITHUB_TITLE_LIMIT, False))
        out.append((f"#{number} body", issue["body"] or "", hostile.GITHUB_BODY_LIMIT, True))
        out += [(f"#{number} comment", c["body"], hostile.GITHUB_BODY_LIMIT, False) for c in github.comments[number]]
    return out


def assert_all_filed_text_is_safe(github: FakeGitHub) -> None:
    found = {what: p for what, text, limit, marked in filed_texts(github)
             if (p := hostile.problems(text, limit, first_line_comment=marked))}
    assert found == {}


def test_secrets_of_every_shape_never_reach_a_group_or_github(http, root, github):
    admin = root["adminApiKey"]
    tenant = Tenant(http, admin, "secrets")
    for shape, (text, _) in hostile.SECRETS.items():
        tenant.failed_job(f"{shape}: {text}", job_type=f"leak-{shape}")
    # one more job per shape as a traceback's final line (the traceback goes to the Normalized field)
    trace = "Traceback (most recent call last):\n  File \"/var/task/app.py\", line 3, in run\n    go()\nRuntimeError: {}"
    tenant.failed_job("traceback", details=trace.format(" ".join(t for t, _ in hostile.SECRETS.values())),
                      job_type="leak-traceback")
    scan(http, admin)
    assert len(github.issues) == len(hostile.SECRETS) + 1
    assert_all_filed_text_is_safe(github)
    # nor in the stored groups (samples, normalized text, title) the operators' API shows
    listed = http.get("/api/ops/issues?limit=200", admin).json["items"]
    leaks = {i["title"]: p for i in listed if (p := [x for x in hostile.problems(str(i)) if x.startswith("secret")])}
    assert leaks == {}
    # redacted, not dropped: the failure still reads (a quoted value's mask is itself normalized to '<v>')
    unredacted = [i["normalized"] for i in listed if i["title"].startswith("[ops] job leak-")
                  and "[redacted:" not in i["normalized"] and "'<v>'" not in i["normalized"]]
    assert unredacted == []


def test_markdown_html_mentions_and_references_are_inert(http, root, github):
    admin = root["adminApiKey"]
    tenant = Tenant(http, admin, "injector")
    tenant.failed_job(hostile.HOSTILE, job_type="@octocat #1 <b>x</b>")
    tenant.error_log(hostile.HOSTILE)
    scan(http, admin)
    assert_all_filed_text_is_safe(github)
    bodies = [i["body"] for i in github.issues.values() if "octocat" in i["body"]]
    assert len(bodies) == 2
    for body in bodies:
        # still readable: the words are there, neutralised
        assert "octocat" in body and "onerror" in body and "fence breakout" in body


def test_a_190_kb_traceback_files_a_bounded_body_that_says_it_was_cut(http, root, github):
    admin = root["adminApiKey"]
    tenant = Tenant(http, admin, "huge")
    frames = "".join(f'  File "/var/task/chalicelib/mod{i}.py", line {i}, in f{"x" * 200}{i}\n    call()\n'
                     for i in range(100))
    trace = ("Traceback (most recent call last):\n" + frames + "E" * 165_000 + ": " + "boom " * 1_000)
    assert len(trace) > 190_000
    tenant.failed_job("boom", details=trace, job_type="huge")
    before = {n for n in github.issues}
    result = scan(http, admin)
    assert result["issuesOpened"] == 1
    (number,) = set(github.issues) - before
    body = github.issues[number]["body"]
    assert len(body) <= 60_000 and "truncated" in body
    assert [r.status for r in github.calls(ISSUES)][-1] == 201
    assert_all_filed_text_is_safe(github)


def test_an_issue_says_where(http, root, github, app_module, aws):
    admin = root["adminApiKey"]
    tenant = Tenant(http, admin, "where")
    job_id = tenant.failed_job("step compile exited 2", job_type="where-build", pool="gpu-east")
    tenant.error_log("where: disk quota exceeded")
    queue = Queue(app_module, aws)
    r = http.call("PUT", "/api/workspaces/site-ws/files?path=src/app.py", tenant.key, raw_body=b"a\n",
                  headers={"content-type": "text/plain"})
    assert r.status == 200, r.json
    r = http.post("/api/patches/apply", tenant.key, {
        "workspace": "site-ws", "orderId": "ORD-W", "operations": [
            {"op": "replace-block", "file": "src/app.py", "anchor": {"marker": "###WHERE_GONE###"}, "content": "x"}]})
    assert r.status == 202, r.json
    batch_id = r.json["batchId"]
    queue.drain()
    scan(http, admin)
    bodies = {i["title"]: i["body"] for i in github.issues.values()}
    job = next(b for t, b in bodies.items() if "where-build" in t)
    assert tenant.agent["agentId"] in job and job_id in job and "gpu-east" in job
    log = next(b for t, b in bodies.items() if "disk quota" in t)
    assert tenant.instance["instanceId"] in log and tenant.agent["agentId"] in log
    patch = next(b for t, b in bodies.items() if "[ops] patch" in t)
    assert "site-ws" in patch and "src/app.py" in patch and batch_id in patch
    assert_all_filed_text_is_safe(github)


def test_another_tenants_marker_never_steers_an_issue(http, root, github):
    """Tenant A writes B's fingerprint marker (bare, as the whole hidden comment, and as a forged keyed
    marker) into its failure; B's failure still gets its own issue, and closing A's issue neither closes
    B's group nor reopens A's issue when B's failure recurs."""
    from chalicelib.ops import rules
    from chalicelib.ops.rules import Failure

    admin = root["adminApiKey"]
    a, b = Tenant(http, admin, "attacker"), Tenant(http, admin, "victim")
    victim_message = "EXIT_CODE: payment reconciliation drifted by 3 cents"
    fp_b = rules.fingerprint(Failure(rules.JOB, "x", "t", victim_message, b.org_id, "reconcile"))
    forged = (f"<!-- ops-fingerprint: {fp_b} -->\nops-fingerprint: {fp_b}\n"
              f"<!-- ops-fingerprint: {fp_b} {'0' * 32} -->")
    a.failed_job("attack\n" + forged, job_type="spoof")
    scan(http, admin)
    (attacker_issue,) = [n for n, i in github.issues.items() if "[ops] job spoof" in i["title"]]

    b.failed_job("payment reconciliation drifted by 3 cents", job_type="reconcile")
    scan(http, admin)
    victim = [n for n, i in github.issues.items() if "[ops] job reconcile" in i["title"]]
    assert len(victim) == 1 and victim[0] != attacker_issue
    (victim_issue,) = victim
    assert github.comments[attacker_issue] == []

    # A maintainer closes the attacker's issue; the victim's failure recurs.
    github.close_issue(attacker_issue)
    scan(http, admin)
    groups = {i["githubNumber"]: i for i in http.get("/api/ops/issues?limit=200", admin).json["items"]}
    assert groups[victim_issue]["status"] == "open"
    b.failed_job("payment reconciliation drifted by 4 cents", job_type="reconcile")
    scan(http, admin)
    assert github.issues[attacker_issue]["state"] == "closed"
    assert github.issues[victim_issue]["state"] == "open"
    assert len(github.comments[victim_issue]) == 1 and github.comments[attacker_issue] == []
    assert_all_filed_text_is_safe(github)


def test_claimed_by_is_quoted(http, root, github):
    admin = root["adminApiKey"]
    tenant = Tenant(http, admin, "claim")
    tenant.error_log("claim: queue consumer stalled")
    scan(http, admin)
    group = next(i for i in http.get("/api/ops/issues?limit=200", admin).json["items"] if "consumer stalled" in i["title"])
    r = http.post(f"/api/ops/issues/{group['id']}/claim", admin, {"claimedBy": "@acme/everyone <img src=x> Fixes #1"})
    assert r.status == 200, r.json
    comment = github.comments[group["githubNumber"]][-1]["body"]
    assert hostile.problems(comment) == [] and "everyone" in comment
    # not a GitHub login: no assignment attempted
    assert github.issues[group["githubNumber"]]["assignees"] == []


def test_issues_filed_before_keyed_markers_are_closed_only_for_their_own_group(http, root, github):
    """An old issue (unkeyed marker on its last line) still tells the scan its group was closed, because
    the group's stored issue number agrees; an issue anyone else made with that marker does not."""
    admin = root["adminApiKey"]
    tenant = Tenant(http, admin, "legacy")
    tenant.error_log("legacy: replica lag above threshold")
    scan(http, admin)
    group = next(i for i in http.get("/api/ops/issues?limit=200", admin).json["items"] if "replica lag" in i["title"])
    number, fp = group["githubNumber"], group["fingerprint"]
    old_body = f"**Severity:** medium\n\nFiled by the control plane's ops scan.\n<!-- ops-fingerprint: {fp} -->"
    # someone else's issue carrying the same old marker, closed: ignored (the stored number is another)
    client = GitHub(github.token, github.repo_full, github.url)
    impostor = client.create_issue("impostor", old_body, ["ops"])["number"]
    github.close_issue(impostor)
    scan(http, admin)

    def status() -> str:
        return next(i for i in http.get("/api/ops/issues?limit=200", admin).json["items"] if i["id"] == fp)["status"]

    assert status() == "open"
    # the group's own issue, rewritten in the old format (as filed before this change) and closed: learned
    github.issues[number]["body"] = old_body
    github.close_issue(number)
    scan(http, admin)
    assert status() == "closed"
