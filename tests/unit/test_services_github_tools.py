"""chalicelib/github_tools/service.py on fakes (no moto)."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import Forbidden, RateLimited, ValidationError
from chalicelib.github_tools import credentials, models, service, store
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal


def test_put_repos_writes_one_item_and_its_audit_event():
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    out = service.put_repos(ctx, models.RepoListPut.model_validate(
        {"repos": [{"repo": "acme/app", "requireApproval": ["commit_files"]}]}))
    body = assert_declared("PUT", "/github/repos", out)
    assert body["repos"][0]["requireApproval"] == ["commit_files"]
    assert set(ledger.names()) == {"repos", f"audit:github-repos:{ORG}:replaced"}
    assert store._listing(ledger.committed[-1]["repos"].item).repos == out.repos


def test_allowed_repository_is_case_insensitive(monkeypatch):
    listing = models.RepoList(repos=[models.AllowedRepo(repo="Acme/App", tools=["list_issues"], require_approval=[])])
    monkeypatch.setattr(store, "repos", lambda org: listing)
    assert service.allowed_repository(ORG, "acme/app") == listing.repos[0]
    assert service.allowed_repository(ORG, "acme/other") is None


# --- invoke: refusals are audited and reach no client; approvals become a task; the org's limit ---


def _listing(**entry):
    return models.RepoList(repos=[models.AllowedRepo(repo="acme/app", tools=entry.get("tools", list(service.rules.TOOLS)),
                                                     require_approval=entry.get("require_approval", []))])


@pytest.fixture
def no_github(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("GitHub must not be called")

    monkeypatch.setattr(credentials, "client_for", refuse)


def test_a_repository_off_the_list_is_refused_audited_and_never_sent(monkeypatch, no_github):
    monkeypatch.setattr(store, "repos", lambda org: _listing())
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "ag"))
    with pytest.raises(Forbidden) as refused:
        service.invoke(ctx, service.Invoke("create_issue", {"repo": "acme/other", "title": "t"}))
    assert refused.value.details[0]["field"] == "input.repo"
    [audit] = ledger.audits()
    assert audit["action"] == "denied" and audit["entityType"] == "github-invocation"
    assert len(ledger.attempts) == 1 and ledger.attempts[0][0].startswith("audit:")  # no rate counter taken


def test_a_branch_outside_the_prefix_is_refused(monkeypatch, no_github):
    monkeypatch.setattr(store, "repos", lambda org: _listing())
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "ag"))
    with pytest.raises(Forbidden):
        service.invoke(ctx, service.Invoke("create_branch", {"repo": "acme/app", "branch": "agent/other/x"}))
    with pytest.raises(ValidationError) as bad:
        service.invoke(ctx, service.Invoke("create_branch", {"repo": "acme/app"}))
    assert bad.value.details[0]["field"] == "input.branch"
    assert [a["action"] for a in (w.item for c in ledger.committed for n, w in c.items() if n.startswith("audit:"))] \
        == ["denied"]


def test_an_approval_holds_the_call_in_a_task(monkeypatch, no_github):
    monkeypatch.setattr(store, "repos", lambda org: _listing(require_approval=["open_pull_request"]))
    created = []

    def create(ctx, command):
        created.append(command)
        from chalicelib.tasks.models import Task
        return Task(task_id="T1", idempotency_key=command.idempotency_key, to_role=command.to_role, type=command.type,
                    payload=command.payload, status="awaiting_approval", trace_id="tr", requires_approval=True,
                    created_at="t", updated_at="t", approval_id="A1"), True

    monkeypatch.setattr(service.tasks, "create", create)
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "ag"))
    done = service.invoke(ctx, service.Invoke("open_pull_request", {"repo": "acme/app", "head": "agent/ag/x",
                                                                    "title": "t"}))
    assert done.status == 202 and done.body.approval_id == "A1" and done.body.status == "awaiting_approval"
    [command] = created
    assert command.requires_approval and command.type == "github:invoke"
    assert command.payload["tool"] == "open_pull_request" and command.payload["prefix"] == "agent/ag/"
    assert "rate" in ledger.attempts[0] and ledger.audits()[0]["action"] == "awaiting_approval"


def test_the_organizations_limit_is_a_429_with_retry_after(monkeypatch, no_github):
    monkeypatch.setattr(store, "repos", lambda org: _listing())
    ctx, ledger = fake_ctx(principal(Scope.AGENT, "ag"))
    ledger.fail["rate"] = 1
    with pytest.raises(RateLimited) as limited:
        service.invoke(ctx, service.Invoke("list_issues", {"repo": "acme/app"}))
    assert 1 <= int(limited.value.headers["Retry-After"]) <= 60


def test_a_deferred_run_delivered_twice_runs_once(monkeypatch):
    ran = []
    monkeypatch.setattr(service, "_execute", lambda ctx, spec, files=None: (ran.append(1) or {"ok": True}, 1))
    spec = {"invocationId": "I1", "orgId": ORG, "tool": "create_issue", "repo": "acme/app", "input": {},
            "prefix": "agent/ag/", "actor": "agent:ag", "agentId": "ag", "attempt": 1}
    ctx, ledger = fake_ctx(None)
    monkeypatch.setattr(service.Ctx, "system", classmethod(lambda cls, org=None, trace_id=None: ctx))
    assert service.run_deferred(spec) == "succeeded"
    assert ledger.events()[0] == ("github:invoked", {"invocationId": "I1", "tool": "create_issue", "repo": "acme/app",
                                                     "status": "succeeded", "result": {"ok": True}})
    ledger.fail["claim"] = 1  # the item exists, its outcome recorded: delivered again
    ledger.returned["claim"] = {"status": "succeeded", "attempt": 1}
    assert service.run_deferred(spec) == "duplicate" and ran == [1]


def _deferred(monkeypatch, invocation_id):
    ran = []
    monkeypatch.setattr(service, "_execute", lambda ctx, spec, files=None: (ran.append(1) or {"ok": True}, 1))
    spec = {"invocationId": invocation_id, "orgId": ORG, "tool": "create_issue", "repo": "acme/app", "input": {},
            "prefix": "agent/ag/", "actor": "agent:ag", "agentId": "ag", "attempt": 1}
    ctx, ledger = fake_ctx(None)
    monkeypatch.setattr(service.Ctx, "system", classmethod(lambda cls, org=None, trace_id=None: ctx))
    return spec, ctx, ledger, ran


def test_a_claim_held_under_a_live_lease_is_not_run_and_says_until_when(monkeypatch):
    spec, ctx, ledger, ran = _deferred(monkeypatch, "I4")
    ledger.fail["claim"] = 1
    ledger.returned["claim"] = {"status": "running", "attempt": 1, "leaseId": "L0", "leaseUntil": ctx.now() + 20}
    with pytest.raises(service.LeaseHeld) as held:
        service.run_deferred(spec)
    assert held.value.until == ledger.returned["claim"]["leaseUntil"] and ran == [] and ledger.committed == []


def test_an_expired_lease_is_taken_over_on_that_same_lease_and_audited(monkeypatch):
    spec, ctx, ledger, ran = _deferred(monkeypatch, "I5")
    ledger.fail["claim"] = 1
    ledger.returned["claim"] = {"status": "running", "attempt": 1, "leaseId": "L0", "leaseUntil": ctx.now() - 1,
                                "updatedAt": "then"}
    assert service.run_deferred(spec) == "succeeded" and ran == [1]
    take = ledger.committed[0]["claim"]
    assert take.values[":seen_lease"] == "L0" and "#l = :seen_lease" in take.condition
    assert take.item["leaseId"] != "L0" and take.item["takenOver"] == 1
    assert [a["action"] for a in ledger.audits(0)] == ["taken_over"]
    finish = ledger.committed[1]["invocation"]
    assert finish.values[":lease"] == take.item["leaseId"]  # the outcome is recorded under the new lease only


def test_a_run_whose_lease_was_taken_over_records_and_announces_nothing(monkeypatch):
    spec, ctx, ledger, ran = _deferred(monkeypatch, "I6")
    closed = []
    monkeypatch.setattr(service, "_close_task", lambda *a: closed.append(a))
    ledger.fail["invocation"] = 1  # its lease is no longer the item's
    assert service.run_deferred({**spec, "taskId": "T1"}) == "superseded" and ran == [1]
    assert [list(c) for c in ledger.committed] == [["claim"]] and closed == []


def test_a_deferred_run_that_fails_for_a_reason_of_ours_gives_its_claim_back(monkeypatch):
    def broken(ctx, spec, files=None):
        raise OSError("S3 unavailable")

    monkeypatch.setattr(service, "_execute", broken)
    spec = {"invocationId": "I2", "orgId": ORG, "tool": "create_issue", "repo": "acme/app", "input": {},
            "prefix": "agent/ag/", "actor": "agent:ag", "agentId": "ag", "attempt": 1}
    ctx, ledger = fake_ctx(None)
    monkeypatch.setattr(service.Ctx, "system", classmethod(lambda cls, org=None, trace_id=None: ctx))
    with pytest.raises(OSError):
        service.run_deferred(spec)
    assert [list(c) for c in ledger.committed] == [["claim"], ["claim"]]  # claimed, then released (a delete)
    assert type(ledger.committed[1]["claim"]).__name__ == "Delete"


def test_a_wait_longer_than_one_sqs_delay_hops_through_the_queue_without_github(monkeypatch):
    sent = []
    monkeypatch.setattr(service.adapters, "send_retry", lambda message, delay: sent.append((message, delay)))
    monkeypatch.setattr(service, "_execute", lambda *a, **k: (_ for _ in ()).throw(AssertionError("GitHub asked")))
    ctx, ledger = fake_ctx(None)
    monkeypatch.setattr(service.Ctx, "system", classmethod(lambda cls, org=None, trace_id=None: ctx))
    spec = {"invocationId": "I3", "orgId": ORG, "tool": "list_issues", "repo": "acme/app", "input": {},
            "attempt": 2, "notBefore": ctx.now() + 3000}
    assert service.run_deferred(spec) == "waiting"
    [(message, delay)] = sent
    assert delay == 900 and message == spec and ledger.committed == []
