"""The GitHub tools against the fake GitHub (tests/fakes/github_server.py + github_git.py): every tool,
bad input refused before GitHub hears of it, GitHub's 404/422, primary and secondary rate limits
(queued, retried from the queue, announced by github:invoked), an installation token that expires
mid-batch, the approval path, the organization's rate limit and Idempotency-Key."""
from __future__ import annotations

import os
import time

import boto3
import pytest

from devstack.events import sqs_event
from tests.conftest import key_of
from tests.handlers.conftest import configured_github

REPO = "acme/platform"


@pytest.fixture
def gh(app_module, aws):
    with configured_github("tools-token") as fake:
        yield fake


@pytest.fixture
def setup(http, org, gh):
    agent_key = key_of(http, org, "agent", "ag-1")
    operator = key_of(http, org, "operator")
    r = http.put("/github/repos", org["adminKey"], {"repos": [{"repo": REPO}]})
    assert r.status == 200, r.json
    return {"agent": agent_key, "operator": operator, "admin": org["adminKey"], "org": org}


def invoke(http, key, tool, payload, session_id=None, headers=None):
    body = {"input": payload, **({"sessionId": session_id} if session_id else {})}
    return http.post(f"/github/tools/{tool}/invoke", key, body, headers=headers)


def github_writes(gh):
    return [c for c in gh.calls() if c.method != "GET"]


class Queue:
    """The GitHub tools' retry queue, delivered to the app's consumer as Lambda would."""

    def __init__(self, app_module):
        self.app_module = app_module
        self.sqs = boto3.client("sqs")
        self.url = os.environ["GITHUB_TOOLS_QUEUE_URL"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def deliver_when_due(self, timeout: float = 10.0) -> int:
        """Wait (on the queue, no fixed sleep) until the delayed message is visible, then run it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           AttributeNames=["All"]).get("Messages", [])
            if got:
                result = self.app_module.github_tools_retry(sqs_event(got, self.arn), None)
                assert result["batchItemFailures"] == []
                self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
                return len(got)
        raise AssertionError("no retry arrived on the queue")


def invocation_audit(http, admin):
    """The organization's latest audit events about GitHub invocations (newest 100 of the org)."""
    r = http.get("/audit?limit=100", admin)
    assert r.status == 200, r.json
    return [e for e in r.json["items"] if e["entityType"] == "github-invocation"]


def events_named(events, name):
    return [e["data"] for e in events if e["event"] == name]


# --- the registry ------------------------------------------------------------------------------------

def test_the_registry_lists_every_tool_with_a_description_and_a_json_schema(http, setup):
    r = http.get("/github/tools", setup["agent"])
    assert r.status == 200, r.json
    names = [t["name"] for t in r.json]
    assert names == ["list_issues", "list_pull_requests", "get_pull_request", "create_issue", "comment_on_issue",
                     "update_issue_state", "create_branch", "commit_files", "open_pull_request"]
    for tool in r.json:
        assert len(tool["description"]) > 40
        schema = tool["inputSchema"]
        assert schema["type"] == "object" and "repo" in schema["required"]
    commit = next(t for t in r.json if t["name"] == "commit_files")["inputSchema"]
    assert {"branch", "message", "workspace", "paths", "batchId"} <= set(commit["properties"])


# --- every tool against the fake ------------------------------------------------------------------------

def test_issue_tools_read_and_write_and_clean_what_github_said(http, setup, gh):
    agent = setup["agent"]
    made = invoke(http, agent, "create_issue", {"repo": REPO, "title": "Flaky test @alice",
                                                "body": "see @bob; token ghp_" + "a" * 36, "labels": ["bug"]})
    assert made.status == 200, made.json
    number = made.json["result"]["issue"]["number"]
    sent = gh.issues[number]
    assert "@alice" not in sent["title"] and "@bob" not in sent["body"] and "ghp_" + "a" * 36 not in sent["body"]
    # a stranger's issue with a secret and a mention: what the agent reads is cleaned and bounded
    gh.issues[number]["body"] = "ping @carol " + "x" * 10_000 + " AKIA" + "B" * 16
    listed = invoke(http, agent, "list_issues", {"repo": REPO, "labels": ["bug"]})
    assert listed.status == 200, listed.json
    [issue] = listed.json["result"]["issues"]
    assert issue["number"] == number and "@carol" not in issue["body"] and len(issue["body"]) <= 4000
    assert "AKIA" + "B" * 16 not in issue["body"]
    commented = invoke(http, agent, "comment_on_issue", {"repo": REPO, "number": number, "body": "on it"})
    assert commented.status == 200 and gh.comments[number][0]["body"] == "on it"
    closed = invoke(http, agent, "update_issue_state", {"repo": REPO, "number": number, "state": "closed",
                                                        "stateReason": "completed"})
    assert closed.status == 200 and gh.issues[number]["state"] == "closed"
    audit = http.get(f"/audit?entityType=github-invocation&entityId={made.json['invocationId']}", setup["admin"])
    [entry] = audit.json["items"]
    assert entry["action"] == "succeeded" and entry["details"]["tool"] == "create_issue"
    assert entry["details"]["repo"] == REPO and entry["details"]["actor"] == "agent:ag-1"


def test_branch_commit_and_draft_pull_request_from_a_workspace(http, setup, gh):
    agent = setup["agent"]
    for path, text in (("src/app.py", "print('hi')\n"), ("docs/x.md", "# x\n")):
        assert http.call("PUT", f"/api/workspaces/ws1/files?path={path}", setup["operator"],
                         raw_body=text.encode(), headers={"content-type": "text/plain"}).status in (200, 201)
    branch = "agent/ag-1/fix"
    created = invoke(http, agent, "create_branch", {"repo": REPO, "branch": branch})
    assert created.status == 200, created.json
    assert created.json["result"]["from"] == "main" and gh.git.refs[f"heads/{branch}"] == gh.git.refs["heads/main"]
    gh.reset_calls()
    committed = invoke(http, agent, "commit_files", {"repo": REPO, "branch": branch, "message": "fix",
                                                     "workspace": "ws1", "paths": ["src/app.py", "docs/x.md"]})
    assert committed.status == 200, committed.json
    assert gh.git.branch_files(branch) == {"README.md": "# platform\n", "src/app.py": "print('hi')\n",
                                           "docs/x.md": "# x\n"}
    assert len(gh.calls()) == 5  # repository, branch, tree, commit, ref (bench/github_tools_calls.py)
    opened = invoke(http, agent, "open_pull_request", {"repo": REPO, "head": branch, "title": "Fix", "body": "b"})
    assert opened.status == 200, opened.json
    pr = opened.json["result"]["pullRequest"]
    assert pr["draft"] is True and pr["base"] == "main" and gh.git.pulls[pr["number"]]["draft"] is True
    listed = invoke(http, agent, "list_pull_requests", {"repo": REPO})
    assert [p["number"] for p in listed.json["result"]["pullRequests"]] == [pr["number"]]
    got = invoke(http, agent, "get_pull_request", {"repo": REPO, "number": pr["number"]})
    assert got.status == 200 and got.json["result"]["pullRequest"]["merged"] is False
    # opening it again (a retry): GitHub's 422 "already exists" answers the same pull request, not a second
    again = invoke(http, agent, "open_pull_request", {"repo": REPO, "head": branch, "title": "Fix"})
    assert again.status == 200 and again.json["result"]["pullRequest"]["number"] == pr["number"]
    assert len(gh.git.pulls) == 1
    assert not any("merge" in c.path for c in gh.calls())


# --- bad input: 4xx, audited, nothing sent to GitHub ---------------------------------------------------

def test_bad_input_is_refused_before_github_hears_of_it(http, setup, gh):
    agent = setup["agent"]
    http.call("PUT", "/api/workspaces/ws2/files?path=a.txt", setup["operator"], raw_body=b"a",
              headers={"content-type": "text/plain"})
    gh.reset_calls()
    cases = [
        ("create_issue", {"repo": REPO}, 400, "input.title"),
        ("create_issue", {"repo": "nope", "title": "t"}, 400, "input.repo"),
        ("list_issues", {"repo": REPO, "limit": 500}, 400, "input.limit"),
        ("create_issue", {"repo": "acme/other", "title": "t"}, 403, "input.repo"),
        ("create_branch", {"repo": REPO, "branch": "agent/someone-else/x"}, 403, "input.branch"),
        ("create_branch", {"repo": REPO, "branch": "main"}, 403, "input.branch"),
        ("commit_files", {"repo": REPO, "branch": "agent/ag-1/x", "message": "m", "workspace": "ws2",
                          "paths": ["../etc/passwd"]}, 400, "input.paths.0"),
        ("commit_files", {"repo": REPO, "branch": "agent/ag-1/x", "message": "m", "workspace": "ws2",
                          "paths": [f"f{i}" for i in range(101)]}, 400, "input.paths"),
        ("commit_files", {"repo": REPO, "branch": "agent/ag-1/x", "message": "m"}, 400, "input"),
        ("open_pull_request", {"repo": REPO, "head": "feature", "title": "t"}, 403, "input.head"),
    ]
    for tool, payload, status, field in cases:
        r = invoke(http, agent, tool, payload)
        assert r.status == status, (tool, payload, r.json)
        assert field in [d["field"] for d in r.json["error"].get("details", [])], (tool, r.json)
    assert http.post("/github/tools/merge_pr/invoke", agent, {"input": {}}).status == 404
    assert gh.calls() == []
    denied = invocation_audit(http, setup["admin"])
    assert sum(e["action"] == "denied" for e in denied) == 6  # the policy refusals (schema errors are 400 only)


def test_a_commit_over_one_mebibyte_is_refused_before_github(http, setup, gh):
    for i in range(5):  # 5 x 250,000 bytes: each under the request limit, together over 1 MiB
        put = http.call("PUT", f"/api/workspaces/big/files?path=f{i}", setup["operator"], raw_body=b"x" * 250_000,
                        headers={"content-type": "text/plain"})
        assert put.status in (200, 201), put.json
    gh.reset_calls()
    r = invoke(http, setup["agent"], "commit_files", {"repo": REPO, "branch": "agent/ag-1/big", "message": "m",
                                                      "workspace": "big", "paths": [f"f{i}" for i in range(5)]})
    assert r.status == 400 and "1048576" in r.json["error"]["message"] and gh.calls() == []


def test_protected_and_default_branches_are_never_written(http, setup, gh):
    agent = setup["agent"]
    http.call("PUT", "/api/workspaces/ws3/files?path=a.txt", setup["operator"], raw_body=b"a",
              headers={"content-type": "text/plain"})
    branch = "agent/ag-1/locked"
    assert invoke(http, agent, "create_branch", {"repo": REPO, "branch": branch}).status == 200
    gh.git.protected.add(branch)
    before = gh.git.refs[f"heads/{branch}"]
    gh.reset_calls()
    r = invoke(http, agent, "commit_files", {"repo": REPO, "branch": branch, "message": "m", "workspace": "ws3",
                                             "paths": ["a.txt"]})
    assert r.status == 403 and "protected" in r.json["error"]["message"]
    assert github_writes(gh) == [] and gh.git.refs[f"heads/{branch}"] == before
    # a repository whose default branch is under the agent's prefix: still refused, asked of GitHub
    gh.git.default_branch = branch
    gh.git.protected.discard(branch)
    r = invoke(http, agent, "commit_files", {"repo": REPO, "branch": branch, "message": "m", "workspace": "ws3",
                                             "paths": ["a.txt"]})
    assert r.status == 403 and "default branch" in r.json["error"]["message"] and github_writes(gh) == []
    denied = [e for e in invocation_audit(http, setup["admin"]) if e["action"] == "denied"]
    assert [e["details"]["code"] for e in denied] == ["FORBIDDEN", "FORBIDDEN"]
    assert all(e["details"]["tool"] == "commit_files" and e["details"]["repo"] == REPO for e in denied)


def test_an_agent_cannot_write_under_another_agents_session(http, setup, gh):
    other = key_of(http, setup["org"], "agent", "ag-2")
    session = http.post("/sessions", other, {"agentRole": "coder"}).json["sessionId"]
    r = invoke(http, setup["agent"], "create_branch", {"repo": REPO, "branch": f"agent/{session}/x"},
               session_id=session)
    assert r.status == 403 and r.json["error"]["details"][0]["field"] == "sessionId" and gh.calls() == []
    mine = invoke(http, other, "create_branch", {"repo": REPO, "branch": f"agent/{session}/x"}, session_id=session)
    assert mine.status == 200, mine.json


# --- GitHub's own refusals -------------------------------------------------------------------------------

def test_github_404_and_422_come_back_as_contract_errors(http, setup, gh):
    agent = setup["agent"]
    missing = invoke(http, agent, "get_pull_request", {"repo": REPO, "number": 9999})
    assert missing.status == 404 and missing.json["error"]["code"] == "NOT_FOUND"
    assert invoke(http, agent, "comment_on_issue", {"repo": REPO, "number": 777, "body": "x"}).status == 404
    # head branch does not exist on GitHub: 422 from GitHub, 400 naming the field here
    bad = invoke(http, agent, "open_pull_request", {"repo": REPO, "head": "agent/ag-1/ghost", "title": "t"})
    assert bad.status == 400 and "input.head" in [d["field"] for d in bad.json["error"]["details"]]
    assert invoke(http, agent, "create_branch", {"repo": REPO, "branch": "agent/ag-1/dup"}).status == 200
    dup = invoke(http, agent, "create_branch", {"repo": REPO, "branch": "agent/ag-1/dup"})
    assert dup.status == 409
    failed = [e for e in invocation_audit(http, setup["admin"]) if e["action"] == "failed"]
    # 409: GitHub's 422 "Reference already exists", told as the conflict it is
    assert len(failed) == 4 and {e["details"]["githubStatus"] for e in failed} == {404, 409, 422}


# --- GitHub's rate limits: queued, retried later, announced ------------------------------------------------

@pytest.mark.parametrize("kind", ["secondary", "secondary429", "primary"])
def test_a_rate_limited_call_is_queued_and_announced(http, setup, gh, app_module, outbox, kind):
    queue = Queue(app_module)
    gh.rate_limit("POST /repos/{owner}/{repo}/issues", kind=kind, retry_after=1, reset_in=1)
    r = invoke(http, setup["agent"], "create_issue", {"repo": REPO, "title": f"later ({kind})"})
    assert r.status == 202, r.json
    assert r.json["status"] == "queued" and r.json["invocationId"]
    assert gh.issues == {}
    assert queue.deliver_when_due() == 1
    [announced] = events_named(outbox.drain(), "github:invoked")
    assert announced["invocationId"] == r.json["invocationId"] and announced["status"] == "succeeded"
    assert announced["result"]["issue"]["title"] == f"later ({kind})"
    assert [i["title"] for i in gh.issues.values()] == [f"later ({kind})"]
    actions = [e["action"] for e in http.get(
        f"/audit?entityType=github-invocation&entityId={r.json['invocationId']}", setup["admin"]).json["items"]]
    assert sorted(actions) == ["queued", "succeeded"]


def test_after_remaining_zero_the_next_call_is_not_sent(http, setup, gh, app_module, outbox):
    http.call("PUT", "/api/workspaces/ws4/files?path=a.txt", setup["operator"], raw_body=b"a",
              headers={"content-type": "text/plain"})
    assert invoke(http, setup["agent"], "create_branch", {"repo": REPO, "branch": "agent/ag-1/rl"}).status == 200
    gh.remaining = 2  # the branch read answers remaining 0 (x-ratelimit-reset an hour ahead)
    gh.reset_calls()
    r = invoke(http, setup["agent"], "commit_files", {"repo": REPO, "branch": "agent/ag-1/rl", "message": "m",
                                                      "workspace": "ws4", "paths": ["a.txt"]})
    assert r.status == 202 and r.json["status"] == "queued"
    assert [c.method for c in gh.calls()] == ["GET", "GET"]  # the tree was never sent


# --- credentials: an App installation token per call, re-minted once when it expires ------------------------

@pytest.fixture
def github_app(gh, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from chalicelib.core import config
    from chalicelib.github_tools import credentials

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    gh.git.app("123", public)
    monkeypatch.setenv("GITHUB_APP_ID", "123")
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", pem)
    monkeypatch.delenv("GITHUB_TOKEN")
    config.settings.cache_clear()
    credentials._private_key.cache_clear()
    credentials._INSTALLATIONS.clear()
    yield gh
    monkeypatch.delenv("GITHUB_APP_ID")
    monkeypatch.delenv("GITHUB_APP_PRIVATE_KEY")
    config.settings.cache_clear()
    credentials._private_key.cache_clear()


def test_each_call_mints_a_token_for_one_repository_and_the_tools_permissions(http, setup, github_app):
    gh = github_app
    assert invoke(http, setup["agent"], "list_issues", {"repo": REPO}).status == 200
    assert invoke(http, setup["agent"], "create_issue", {"repo": REPO, "title": "t"}).status == 200
    assert gh.git.minted == [{"repositories": ["platform"], "permissions": {"issues": "read"}},
                             {"repositories": ["platform"], "permissions": {"issues": "write"}}]
    assert all(c.authorization != "Bearer tools-token" for c in gh.calls())


def test_a_token_that_expires_mid_batch_is_minted_again_once(http, setup, github_app):
    gh = github_app
    http.call("PUT", "/api/workspaces/ws5/files?path=a.txt", setup["operator"], raw_body=b"A\n",
              headers={"content-type": "text/plain"})
    assert invoke(http, setup["agent"], "create_branch", {"repo": REPO, "branch": "agent/ag-1/tok"}).status == 200
    gh.git.minted.clear()
    gh.git.expire_tokens_after(3)  # a token dies in the middle of the commit's five requests
    r = invoke(http, setup["agent"], "commit_files", {"repo": REPO, "branch": "agent/ag-1/tok", "message": "m",
                                                      "workspace": "ws5", "paths": ["a.txt"]})
    assert r.status == 200, r.json
    assert len(gh.git.minted) == 2 and gh.git.branch_files("agent/ag-1/tok")["a.txt"] == "A\n"
    assert [c.status for c in gh.calls() if c.status == 401] == [401]


def test_a_token_refused_twice_is_an_error_not_a_loop(http, setup, github_app):
    gh = github_app
    gh.git.expire_tokens_after(0)
    original = gh.git._mint

    def mint_dead(path, body):  # every token GitHub mints is already dead
        status, answer, headers = original(path, body)
        gh.git.tokens[answer["token"]]["expired"] = True
        return status, answer, headers

    gh.git._mint = mint_dead
    r = invoke(http, setup["agent"], "list_issues", {"repo": REPO})
    assert r.status == 503 and len(gh.git.minted) == 2


# --- approval -----------------------------------------------------------------------------------------------

def test_approval_holds_the_pull_request_until_a_person_approves_and_it_opens_once(http, setup, gh, app_module, outbox):
    agent, admin = setup["agent"], setup["admin"]
    r = http.put("/github/repos", admin, {"repos": [{"repo": REPO, "requireApproval": ["open_pull_request"]}]})
    assert r.status == 200
    branch = "agent/ag-1/ap"
    http.call("PUT", "/api/workspaces/ws6/files?path=a.txt", setup["operator"], raw_body=b"a\n",
              headers={"content-type": "text/plain"})
    assert invoke(http, agent, "create_branch", {"repo": REPO, "branch": branch}).status == 200
    assert invoke(http, agent, "commit_files", {"repo": REPO, "branch": branch, "message": "m", "workspace": "ws6",
                                                "paths": ["a.txt"]}).status == 200
    outbox.read()
    waiting = invoke(http, agent, "open_pull_request", {"repo": REPO, "head": branch, "title": "Please"})
    assert waiting.status == 202 and waiting.json["status"] == "awaiting_approval", waiting.json
    assert gh.git.pulls == {}
    records = outbox.read()
    app_module.github_approvals({"Records": records}, None)  # approval:requested: nothing runs
    assert gh.git.pulls == {}
    pending = http.get("/approvals?status=pending", setup["operator"]).json["items"]
    [approval] = [a for a in pending if a["approvalId"] == waiting.json["approvalId"]]
    assert approval["task"]["payload"]["tool"] == "open_pull_request"
    decided = http.post(f"/approvals/{approval['approvalId']}/decision", setup["operator"],
                        {"decision": "approved", "decidedBy": "alice"})
    assert decided.status == 200, decided.json
    records = outbox.read()
    app_module.github_approvals({"Records": records}, None)
    app_module.github_approvals({"Records": records}, None)  # the stream delivers again: still once
    assert len(gh.git.pulls) == 1 and next(iter(gh.git.pulls.values()))["draft"] is True
    announced = events_named(outbox.drain(), "github:invoked")
    assert [a["status"] for a in announced] == ["succeeded"]
    assert announced[0]["result"]["pullRequest"]["draft"] is True
    task = http.get(f"/tasks/{approval['taskId']}", setup["operator"]).json
    assert task["status"] == "completed" and task["result"]["invocationId"] == waiting.json["invocationId"]
    assert announced[0]["invocationId"] == waiting.json["invocationId"]


def test_a_rejected_approval_is_announced_failed_and_nothing_is_sent(http, setup, gh, app_module, outbox):
    admin = setup["admin"]
    http.put("/github/repos", admin, {"repos": [{"repo": REPO, "requireApproval": ["open_pull_request"]}]})
    outbox.read()
    gh.reset_calls()
    waiting = invoke(http, setup["agent"], "open_pull_request", {"repo": REPO, "head": "agent/ag-1/r", "title": "t"})
    assert waiting.status == 202
    http.post(f"/approvals/{waiting.json['approvalId']}/decision", setup["operator"],
              {"decision": "rejected", "decidedBy": "bob"})
    records = outbox.read()
    app_module.github_approvals({"Records": records}, None)
    assert gh.calls() == []
    events = [e for e in outbox.drain() if e["event"] == "github:invoked"]
    assert [e["data"]["error"]["code"] for e in events] == ["REJECTED"]


# --- the organization's rate limit and idempotency -------------------------------------------------------

def test_the_organizations_rate_limit_answers_429_in_the_contract_shape(http, setup, gh, monkeypatch):
    from chalicelib.core import clock, config

    minute = (int(time.time()) // 60 + 5) * 60
    monkeypatch.setattr(clock, "now", lambda: minute + 20.5)  # the app's clock, 20.5 s into one minute
    monkeypatch.setenv("GITHUB_TOOLS_PER_MINUTE", "2")
    config.settings.cache_clear()
    try:
        statuses = [invoke(http, setup["agent"], "list_issues", {"repo": REPO}) for _ in range(3)]
        assert [s.status for s in statuses] == [200, 200, 429]
        limited = statuses[2]
        assert limited.json["error"]["code"] == "RATE_LIMITED" and "message" in limited.json["error"]
        headers = {k.lower(): v for k, v in limited.headers.items()}
        assert headers["retry-after"] == "40"  # until the minute turns
        assert len(gh.calls()) == 2
        # the next minute has room again
        monkeypatch.setattr(clock, "now", lambda: minute + 61.0)
        assert invoke(http, setup["agent"], "list_issues", {"repo": REPO}).status == 200
    finally:
        monkeypatch.delenv("GITHUB_TOOLS_PER_MINUTE")
        config.settings.cache_clear()


def test_idempotency_key_replays_the_answer_without_a_second_issue(http, setup, gh):
    headers = {"idempotency-key": "issue-1"}
    first = invoke(http, setup["agent"], "create_issue", {"repo": REPO, "title": "once"}, headers=headers)
    again = invoke(http, setup["agent"], "create_issue", {"repo": REPO, "title": "once"}, headers=headers)
    assert first.status == again.status == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json and len(gh.issues) == 1
    other = invoke(http, setup["agent"], "create_issue", {"repo": REPO, "title": "twice"}, headers=headers)
    assert other.status == 409 and other.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_an_approved_commit_runs_the_bytes_that_were_approved_or_not_at_all(http, setup, gh, app_module, outbox):
    agent, operator = setup["agent"], setup["operator"]
    http.put("/github/repos", setup["admin"], {"repos": [{"repo": REPO, "requireApproval": ["commit_files"]}]})
    http.call("PUT", "/api/workspaces/ws7/files?path=a.txt", operator, raw_body=b"approved\n",
              headers={"content-type": "text/plain"})
    branch = "agent/ag-1/bytes"
    assert invoke(http, agent, "create_branch", {"repo": REPO, "branch": branch}).status == 200
    outbox.read()
    waiting = invoke(http, agent, "commit_files", {"repo": REPO, "branch": branch, "message": "m", "workspace": "ws7",
                                                   "paths": ["a.txt"]})
    assert waiting.status == 202 and waiting.json["status"] == "awaiting_approval"
    http.call("PUT", "/api/workspaces/ws7/files?path=a.txt", operator, raw_body=b"changed later\n",
              headers={"content-type": "text/plain"})
    head = gh.git.refs[f"heads/{branch}"]
    http.post(f"/approvals/{waiting.json['approvalId']}/decision", operator, {"decision": "approved", "decidedBy": "al"})
    app_module.github_approvals({"Records": outbox.read()}, None)
    assert gh.git.refs[f"heads/{branch}"] == head  # nothing committed
    [announced] = events_named(outbox.drain(), "github:invoked")
    assert announced["status"] == "failed" and announced["error"]["code"] == "CONFLICT"
    approval = http.get("/approvals?status=approved", operator).json["items"][0]
    assert http.get(f"/tasks/{approval['taskId']}", operator).json["status"] == "failed"


def test_an_unknown_batch_or_session_is_404_before_github(http, setup, gh):
    from chalicelib.core import ids

    agent = setup["agent"]
    gh.reset_calls()
    unknown = invoke(http, agent, "commit_files", {"repo": REPO, "branch": "agent/ag-1/x", "message": "m",
                                                   "batchId": ids.new_id()})
    assert unknown.status == 404
    no_session = invoke(http, agent, "list_issues", {"repo": REPO}, session_id=ids.new_id())
    assert no_session.status == 404 and gh.calls() == []
