"""The GitHub tools on the local stack against the fake GitHub (real HTTP both ways, a real
WebSocket): an agent in a session reads the tool registry, opens a branch, commits the files of
an applied patch batch, asks for a draft pull request behind an approval; a person approves it
through the API; the pull request appears on the fake GitHub exactly once and github:invoked
announces it. Credentials are a GitHub App's installation tokens, minted per call."""
from __future__ import annotations

import time
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.testing import running_devstack
from tests.e2e.client import call, events_until, ws_connect
from tests.fakes.github_server import FakeGitHub

pytestmark = pytest.mark.e2e

REPO = "acme/platform"


def _keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def github():
    private, public = _keypair()
    with FakeGitHub(token="unused-static-token") as fake:
        fake.git.app("4711", public)
        fake.private_key = private
        yield fake
    assert fake.violations == []


@pytest.fixture(scope="module")
def stack(github):
    env = {"GITHUB_API_URL": github.url, "GITHUB_APP_ID": "4711", "GITHUB_APP_PRIVATE_KEY": github.private_key}
    with running_devstack(app_module="app", env=env) as s:
        yield s
    log = s.log_tail(100000)
    assert github.private_key.splitlines()[1] not in log
    assert not any(token in log for token in github.git.tokens)  # installation tokens never logged


def wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_an_agent_opens_a_draft_pull_request_a_person_approves_it_and_it_opens_once(stack, github):
    url = stack.url
    org = call(url, "POST", "/orgs", stack.admin_api_key, {"name": "github e2e"}).json
    admin = org["adminKey"]
    operator = call(url, "POST", "/keys", admin, {"name": "op", "scope": "operator"}).json["apiKey"]
    agent = call(url, "POST", "/agents", operator, {"name": "coder", "pools": []}).json
    agent_key = agent["apiKey"]
    r = call(url, "PUT", "/github/repos", admin,
             {"repos": [{"repo": REPO, "requireApproval": ["open_pull_request"]}]})
    assert r.status == 200, r.json

    # the agent, in a session, reads the registry (what it would hand its model)
    session = call(url, "POST", "/sessions", agent_key, {"agentRole": "coder"}).json["sessionId"]
    tools = call(url, "GET", "/github/tools", agent_key).json
    assert {t["name"] for t in tools} >= {"create_branch", "commit_files", "open_pull_request"}

    # an applied patch batch in a workspace
    request = urllib.request.Request(f"{url}/api/workspaces/e2e-ws/files?path=src/app.py", data=b"print('a')\n",
                                     method="PUT", headers={"content-type": "text/plain",
                                                            "authorization": f"Bearer {operator}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    batch = call(url, "POST", "/api/patches/apply", agent_key, {
        "workspace": "e2e-ws", "factory": "e2e", "operations": [
            {"op": "append", "file": "src/app.py", "content": "print('b')"},
            {"op": "append", "file": "docs/CHANGES.md", "content": "- b"}]}).json
    wait_for(lambda: call(url, "GET", f"/api/patches/batches/{batch['batchId']}", agent_key).json["status"] == "applied",
             "the batch to apply")

    def invoke(tool, payload):
        return call(url, "POST", f"/github/tools/{tool}/invoke", agent_key, {"input": payload, "sessionId": session})

    branch = f"agent/{session}/feature"
    assert invoke("create_branch", {"repo": REPO, "branch": f"agent/someone/{session}"}).status == 403
    made = invoke("create_branch", {"repo": REPO, "branch": branch})
    assert made.status == 200, made.json
    committed = invoke("commit_files", {"repo": REPO, "branch": branch, "message": "Apply the batch",
                                        "batchId": batch["batchId"]})
    assert committed.status == 200, committed.json
    assert github.git.branch_files(branch) == {"README.md": "# platform\n", "src/app.py": "print('a')\nprint('b')\n",
                                               "docs/CHANGES.md": "- b\n"}

    with ws_connect(url, operator) as socket:
        assert events_until(socket, lambda m: m["event"] == "system:connected")
        waiting = invoke("open_pull_request", {"repo": REPO, "head": branch, "title": "Apply the batch",
                                               "body": "Opened by an agent"})
        assert waiting.status == 202 and waiting.json["status"] == "awaiting_approval", waiting.json
        assert github.git.pulls == {}

        # a person approves it in the API
        pending = call(url, "GET", "/approvals?status=pending", operator).json["items"]
        [approval] = [a for a in pending if a["approvalId"] == waiting.json["approvalId"]]
        assert approval["task"]["payload"]["input"]["head"] == branch
        decided = call(url, "POST", f"/approvals/{approval['approvalId']}/decision", operator,
                       {"decision": "approved", "decidedBy": "alice"})
        assert decided.status == 200, decided.json

        seen = events_until(socket, lambda m: m["event"] == "github:invoked", timeout=60)
    announced = seen[-1]["data"]
    assert announced["invocationId"] == waiting.json["invocationId"] and announced["status"] == "succeeded"
    pr = announced["result"]["pullRequest"]
    assert pr["draft"] is True and pr["head"] == branch and pr["base"] == "main"

    # exactly once on GitHub, a draft, nothing merged, every token narrowed to the one repository
    assert len(github.git.pulls) == 1 and next(iter(github.git.pulls.values()))["draft"] is True
    assert len(github.calls("POST /repos/{owner}/{repo}/pulls")) == 1
    assert not any("merge" in c.path for c in github.calls())
    assert github.git.minted and all(m["repositories"] == ["platform"] for m in github.git.minted)
    audit = call(url, "GET", f"/audit?entityType=github-invocation&entityId={waiting.json['invocationId']}",
                 admin).json["items"]
    assert sorted(e["action"] for e in audit) == ["awaiting_approval", "succeeded"]


def test_a_call_github_rate_limits_is_retried_from_the_queue_and_announced(stack, github):
    url = stack.url
    org = call(url, "POST", "/orgs", stack.admin_api_key, {"name": "github e2e limits"}).json
    operator = call(url, "POST", "/keys", org["adminKey"], {"name": "op", "scope": "operator"}).json["apiKey"]
    agent_key = call(url, "POST", "/agents", operator, {"name": "coder", "pools": []}).json["apiKey"]
    assert call(url, "PUT", "/github/repos", org["adminKey"], {"repos": [{"repo": REPO}]}).status == 200
    github.rate_limit("POST /repos/{owner}/{repo}/issues", kind="secondary", retry_after=1)
    with ws_connect(url, operator) as socket:
        assert events_until(socket, lambda m: m["event"] == "system:connected")
        r = call(url, "POST", "/github/tools/create_issue/invoke", agent_key,
                 {"input": {"repo": REPO, "title": "after the limit"}})
        assert r.status == 202 and r.json["status"] == "queued", r.json
        seen = events_until(socket, lambda m: m["event"] == "github:invoked", timeout=60)
    announced = seen[-1]["data"]
    assert announced["invocationId"] == r.json["invocationId"] and announced["status"] == "succeeded"
    titles = [i["title"] for i in github.issues.values()]
    assert titles.count("after the limit") == 1
    refused = [c for c in github.calls("POST /repos/{owner}/{repo}/issues") if c.status == 403]
    assert len(refused) == 1  # the limited attempt, then one that succeeded from the queue
