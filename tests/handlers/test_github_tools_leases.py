"""A deferred GitHub tool call's claim is a lease (chalicelib/github_tools: rules.LEASE_SECONDS,
store.claim_invocation / take_over_invocation, service._claim; docs/GITHUB.md, "Approval").

A run that dies after its claim (Lambda's timeout, a crash) is simulated by `LambdaStopped`, a
BaseException raised where the run is about to talk to GitHub: like a stopped process, nothing of the
run after that point happens (no release of the claim, no outcome). Redeliveries are the same SQS
message or the same stream records handed to the app's real handlers again. The app's clock is
frozen (`clock`) and moved past the lease instead of waiting for it.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time

import boto3
import pytest

from devstack.events import sqs_event
from tests.conftest import key_of
from tests.handlers.conftest import configured_github

REPO = "acme/platform"
ISSUES = "POST /repos/{owner}/{repo}/issues"


class LambdaStopped(BaseException):
    """Lambda stopped the function (timeout, crash): no `except Exception` of the app sees it."""


@contextlib.contextmanager
def dies_at_github(monkeypatch):
    """Inside the block, a run dies at its first GitHub request, before it is sent."""
    from chalicelib.github_tools import client

    def stopped(*args, **kwargs):
        raise LambdaStopped()

    with monkeypatch.context() as patch:
        patch.setattr(client._POOL, "request", stopped)
        yield


@pytest.fixture
def gh(app_module, aws):
    with configured_github("lease-token") as fake:
        yield fake


@pytest.fixture
def setup(http, org, gh):
    r = http.put("/github/repos", org["adminKey"], {"repos": [{"repo": REPO}]})
    assert r.status == 200, r.json
    return {"agent": key_of(http, org, "agent", "ag-1"), "operator": key_of(http, org, "operator"),
            "admin": org["adminKey"], "org": org}


class Queue:
    """The GitHub tools' retry queue; a received message can be handed to the consumer again (a redelivery)."""

    def __init__(self, app_module):
        self.app_module = app_module
        self.sqs = boto3.client("sqs")
        self.url = os.environ["GITHUB_TOOLS_QUEUE_URL"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def receive(self, timeout: float = 10.0) -> dict:
        """The next message, once its delay is over (waits on the queue, no fixed sleep)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                           AttributeNames=["All"]).get("Messages", [])
            if got:
                return got[0]
        raise AssertionError("nothing arrived on the GitHub tools queue")

    def deliver(self, message: dict) -> list[str]:
        """Hand the message to the consumer as Lambda does; the ids it reported failed (to be redelivered)."""
        result = self.app_module.github_tools_retry(sqs_event([message], self.arn), None)
        return [f["itemIdentifier"] for f in result["batchItemFailures"]]

    def empty(self) -> bool:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesDelayed"] == "0"


def invoke(http, key, tool, payload):
    return http.post(f"/github/tools/{tool}/invoke", key, {"input": payload})


def invocation(setup, invocation_id):
    from chalicelib.github_tools import store

    return store.get_invocation(setup["org"]["orgId"], invocation_id)


def audit_actions(http, setup, invocation_id):
    r = http.get("/audit?limit=100", setup["admin"])
    assert r.status == 200, r.json
    return sorted(e["action"] for e in r.json["items"]
                  if e["entityType"] == "github-invocation" and e["entityId"] == invocation_id)


def announced(outbox):
    return [e["data"] for e in outbox.drain() if e["event"] == "github:invoked"]


def queued_call(http, setup, gh, queue, tool="create_issue", route=ISSUES, payload=None):
    """A call GitHub rate-limited once: (its invocation id, its message on the retry queue)."""
    gh.rate_limit(route, retry_after=1)
    r = invoke(http, setup["agent"], tool, payload or {"repo": REPO, "title": "exactly once"})
    assert r.status == 202 and r.json["status"] == "queued", r.json
    return r.json["invocationId"], queue.receive()


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("the condition did not come true")


# --- the retry queue -------------------------------------------------------------------------------------

def test_a_queued_run_that_died_holding_its_claim_is_taken_over_once_its_lease_expired(
        http, setup, gh, app_module, outbox, clock, monkeypatch):
    from chalicelib.github_tools import rules

    queue = Queue(app_module)
    invocation_id, message = queued_call(http, setup, gh, queue)
    outbox.drain()
    with dies_at_github(monkeypatch), pytest.raises(LambdaStopped):
        queue.deliver(message)
    dead = invocation(setup, invocation_id)
    assert dead["status"] == "running" and dead["attempt"] == 2
    assert dead["leaseUntil"] >= clock.now() + rules.LEASE_SECONDS  # the claim carries its expiry
    assert gh.issues == {}

    # SQS delivers it again while the lease is live: nothing runs; the record is reported failed, so SQS
    # redelivers it after the visibility timeout (longer than the lease) instead of dropping it.
    assert queue.deliver(message) == [message["MessageId"]]
    assert gh.issues == {} and invocation(setup, invocation_id)["leaseId"] == dead["leaseId"]

    clock.shift(rules.LEASE_SECONDS + 2)  # the visibility timeout later: the lease has expired
    assert queue.deliver(message) == []
    assert len(gh.issues) == 1
    [event] = announced(outbox)
    assert event["invocationId"] == invocation_id and event["status"] == "succeeded"
    done = invocation(setup, invocation_id)
    assert done["status"] == "succeeded" and done["leaseId"] != dead["leaseId"] and done["takenOver"] == 1
    assert audit_actions(http, setup, invocation_id) == ["queued", "succeeded", "taken_over"]

    assert queue.deliver(message) == []  # yet another delivery: it ran, nothing more
    assert len(gh.issues) == 1 and announced(outbox) == []


def test_a_run_past_its_lease_cannot_record_its_outcome_over_the_run_that_took_over(
        http, setup, gh, app_module, outbox, clock, atomic_aws):
    from chalicelib.github_tools import rules

    queue = Queue(app_module)
    invocation_id, message = queued_call(http, setup, gh, queue, tool="list_issues",
                                         route="GET /repos/{owner}/{repo}/issues", payload={"repo": REPO})
    outbox.drain()
    gh.reset_calls()
    results: dict[str, list[str]] = {}

    def deliver(name):
        results[name] = queue.deliver(message)

    with gh._lock:  # GitHub answers nothing until the block ends: the first run hangs past its lease
        slow = threading.Thread(target=deliver, args=("slow",))
        slow.start()
        first_lease = wait_for(lambda: (invocation(setup, invocation_id) or {}).get("leaseId"))
        clock.shift(rules.LEASE_SECONDS + 2)
        taker = threading.Thread(target=deliver, args=("taker",))
        taker.start()
        wait_for(lambda: invocation(setup, invocation_id)["leaseId"] != first_lease)
    slow.join(30)
    taker.join(30)
    assert results == {"slow": [], "taker": []}
    assert len(gh.calls("GET /repos/{owner}/{repo}/issues")) == 2  # a slow run is not a dead one: both read
    done = invocation(setup, invocation_id)
    assert done["status"] == "succeeded" and done["leaseId"] != first_lease  # the taker's outcome
    [event] = announced(outbox)  # announced once, by the run that holds the lease
    assert event["status"] == "succeeded"
    assert audit_actions(http, setup, invocation_id) == ["queued", "succeeded", "taken_over"]


def test_two_redeliveries_racing_for_one_expired_lease_exactly_one_takes_it(
        http, setup, gh, app_module, outbox, clock, monkeypatch, atomic_aws):
    from chalicelib.github_tools import rules, store

    queue = Queue(app_module)
    invocation_id, message = queued_call(http, setup, gh, queue)
    outbox.drain()
    with dies_at_github(monkeypatch), pytest.raises(LambdaStopped):
        queue.deliver(message)
    dead_lease = invocation(setup, invocation_id)["leaseId"]
    clock.shift(rules.LEASE_SECONDS + 2)

    # Both takers read the same expired lease before either writes: each holds its take-over, built from
    # what it saw, until the other has one too; then both send it.
    both_saw_it = threading.Barrier(2, timeout=10)
    seen_leases: list[str] = []
    real_take_over = store.take_over_invocation

    def take_over(*args, **kwargs):
        seen_leases.append(kwargs.get("seen", args[-1])["leaseId"])
        both_saw_it.wait()
        return real_take_over(*args, **kwargs)

    monkeypatch.setattr(store, "take_over_invocation", take_over)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def deliver():
        try:
            results.append(queue.deliver(message))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert seen_leases == [dead_lease, dead_lease]
    assert len(gh.issues) == 1  # one run took it over
    [event] = announced(outbox)
    assert event["status"] == "succeeded"
    assert audit_actions(http, setup, invocation_id).count("taken_over") == 1
    # The other found the winner's live lease (reported failed: SQS comes back later, and then finds it
    # done) or, if the winner had finished already, its outcome.
    assert sorted(results) in ([[], []], [[], [message["MessageId"]]])
    assert queue.deliver(message) == [] and len(gh.issues) == 1


# --- the stream reader (approvals) ----------------------------------------------------------------------------

def approved_pull_request(http, setup, outbox, branch):
    """An open_pull_request held for approval, approved: (its invocation id, its task id, the stream records)."""
    agent, admin, operator = setup["agent"], setup["admin"], setup["operator"]
    r = http.put("/github/repos", admin, {"repos": [{"repo": REPO, "requireApproval": ["open_pull_request"]}]})
    assert r.status == 200
    workspace = "ws-" + branch.rsplit("/", 1)[-1]
    http.call("PUT", f"/api/workspaces/{workspace}/files?path=a.txt", operator, raw_body=b"a\n",
              headers={"content-type": "text/plain"})
    assert invoke(http, agent, "create_branch", {"repo": REPO, "branch": branch}).status == 200
    assert invoke(http, agent, "commit_files", {"repo": REPO, "branch": branch, "message": "m", "workspace": workspace,
                                                "paths": ["a.txt"]}).status == 200
    waiting = invoke(http, agent, "open_pull_request", {"repo": REPO, "head": branch, "title": "Please"})
    assert waiting.status == 202 and waiting.json["status"] == "awaiting_approval", waiting.json
    decided = http.post(f"/approvals/{waiting.json['approvalId']}/decision", operator,
                        {"decision": "approved", "decidedBy": "alice"})
    assert decided.status == 200, decided.json
    records = outbox.read()
    task_id = next(a for a in http.get("/approvals?status=approved", operator).json["items"]
                   if a["approvalId"] == waiting.json["approvalId"])["taskId"]
    return waiting.json["invocationId"], task_id, records


def test_an_approved_run_that_died_is_handed_to_the_queue_when_the_stream_redelivers_it_under_the_lease(
        http, setup, gh, app_module, outbox, clock, monkeypatch):
    from chalicelib.github_tools import rules

    queue = Queue(app_module)
    invocation_id, task_id, records = approved_pull_request(http, setup, outbox, "agent/ag-1/dies")
    with dies_at_github(monkeypatch), pytest.raises(LambdaStopped):
        app_module.github_approvals({"Records": records}, None)  # the function fails: Lambda retries the batch
    assert invocation(setup, invocation_id)["status"] == "running" and gh.git.pulls == {}

    # Lambda's retry of the batch, the lease still live: the stream is not held up; the run goes on the
    # retry queue, due when the lease ends (here: its last second).
    clock.shift(rules.LEASE_SECONDS)
    assert app_module.github_approvals({"Records": records}, None) == {"handed_to_queue": 1}
    assert gh.git.pulls == {}
    message = queue.receive()
    clock.shift(2)
    assert queue.deliver(message) == []
    assert len(gh.git.pulls) == 1 and next(iter(gh.git.pulls.values()))["draft"] is True
    [event] = [e for e in announced(outbox) if e["invocationId"] == invocation_id]
    assert event["status"] == "succeeded" and event["result"]["pullRequest"]["draft"] is True
    task = http.get(f"/tasks/{task_id}", setup["operator"]).json
    assert task["status"] == "completed" and task["result"]["invocationId"] == invocation_id

    assert app_module.github_approvals({"Records": records}, None) == {"duplicate": 1}  # and again: done
    assert len(gh.git.pulls) == 1 and queue.empty()


def test_a_stream_redelivery_after_the_lease_takes_the_dead_approved_run_over_at_once(
        http, setup, gh, app_module, outbox, clock, monkeypatch):
    from chalicelib.github_tools import rules

    invocation_id, _, records = approved_pull_request(http, setup, outbox, "agent/ag-1/late")
    with dies_at_github(monkeypatch), pytest.raises(LambdaStopped):
        app_module.github_approvals({"Records": records}, None)
    clock.shift(rules.LEASE_SECONDS + 2)
    assert app_module.github_approvals({"Records": records}, None) == {"succeeded": 1}
    assert len(gh.git.pulls) == 1
    assert [e["status"] for e in announced(outbox) if e["invocationId"] == invocation_id] == ["succeeded"]
    assert "taken_over" in audit_actions(http, setup, invocation_id)
    assert Queue(app_module).empty()
