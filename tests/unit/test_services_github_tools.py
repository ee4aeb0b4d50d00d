"""chalicelib/github_tools/service.py on fakes (no moto)."""
from __future__ import annotations

from chalicelib.core.auth import Scope
from chalicelib.github_tools import models, service, store
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
