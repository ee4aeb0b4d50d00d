"""Ops services on the fake unit of work (no AWS): list, summary, claim (ops/service.py) and the scan's
lock and group writes (ops/scan.py). Reads are faked by replacing the store's functions."""
from __future__ import annotations

import pytest

from chalicelib.aws import dynamo
from chalicelib.core.auth import Scope
from chalicelib.core.errors import Conflict, Forbidden, InvalidTransition, NotFound
from chalicelib.ops import rules, scan, service, sources, store
from chalicelib.ops.models import OpsIssue, OpsIssuePage, ScanResult, Summary
from tests.unit.fakes import fake_ctx, principal

FP = "0123456789abcdef"


def group_item(fp: str = FP, **fields: object) -> dict:
    return {**store.group_key(fp), "type": "opsGroup", "id": fp, "fingerprint": fp, "kind": "job",
            "key": "job|build|boom at <n>", "title": "build failed: boom", "baseSeverity": "medium",
            "severity": "medium", "status": "open", "count": 3, "reportedCount": 0, "filed": False,
            "firstSeen": "2026-01-01T00:00:00Z", "lastSeen": "2026-01-02T00:00:00Z", "samples": [], **fields}


@pytest.fixture
def root_ctx():
    return fake_ctx(principal(Scope.ADMIN, root=True))


def test_issues_are_listed_as_the_entity_with_unset_github_fields_shown_null(root_ctx, monkeypatch):
    ctx, _ = root_ctx
    monkeypatch.setattr(store, "list_groups", lambda status, severity, limit, start:
                        dynamo.Page([group_item(), group_item("fedcba9876543210", githubNumber=7, filed=True)], None))
    page = service.list_issues(ctx, None, None, 50, None)
    assert isinstance(page, OpsIssuePage) and page.next_token is None
    first, second = (i.model_dump(mode="json", by_alias=True, exclude_none=True) for i in page.items)
    assert first["normalized"] == "boom at <n>" and first["githubNumber"] is None and first["claimedBy"] is None
    assert (second["githubNumber"], second["filed"]) == (7, True)


def test_only_the_root_organization_sees_ops_issues(monkeypatch):
    ctx, _ = fake_ctx(principal(Scope.ADMIN, root=False))
    with pytest.raises(Forbidden):
        service.summary(ctx)


def test_summary_counts_every_status_and_severity(root_ctx, monkeypatch):
    ctx, _ = root_ctx
    monkeypatch.setattr(store, "all_groups", lambda: [group_item(), group_item(status="closed", severity="high",
                                                                               filed=True)])
    result = service.summary(ctx)
    assert isinstance(result, Summary)
    assert (result.total, result.not_filed) == (2, 1)
    assert result.by_status == {"open": 1, "in_progress": 0, "closed": 1}
    assert result.by_severity["high"] == 1 and result.by_severity["medium"] == 1


def test_claim_commits_the_group_its_audit_and_the_event_together(root_ctx, monkeypatch):
    ctx, ledger = root_ctx
    monkeypatch.setattr(store, "get_group", lambda fp: group_item())
    issue = service.claim(ctx, FP, "alice")
    assert isinstance(issue, OpsIssue) and (issue.status, issue.claimed_by) == ("in_progress", "alice")
    assert ledger.names()[0] == "group" and len(ledger.audits()) == 1
    assert ledger.events() == [("ops:issue", {"id": FP, "action": "claimed", "title": "build failed: boom",
                                              "severity": "medium", "status": "in_progress", "count": 3,
                                              "githubNumber": None, "githubUrl": None})]


def test_claiming_a_closed_issue_is_an_invalid_transition(root_ctx, monkeypatch):
    ctx, ledger = root_ctx
    monkeypatch.setattr(store, "get_group", lambda fp: group_item(status="closed"))
    ledger.fail["group"] = 1
    with pytest.raises(InvalidTransition):
        service.claim(ctx, FP, "alice")
    assert ledger.committed == []


def test_an_id_that_is_no_fingerprint_is_not_found_without_a_read(root_ctx, monkeypatch):
    ctx, _ = root_ctx
    monkeypatch.setattr(store, "get_group", lambda fp: pytest.fail("read"))
    with pytest.raises(NotFound):
        service.claim(ctx, "nope", "alice")


# --- the scan ---------------------------------------------------------------------------

def failure(n: int) -> rules.Failure:
    return rules.Failure("job", f"job{n}", f"2026-01-01T00:00:0{n}Z", "boom", subject="build", cursor=f"c{n}")


@pytest.fixture
def one_source(monkeypatch):
    page = sources.Page([failure(1), failure(2)], "c2", 2, False)
    monkeypatch.setattr(sources, "all_sources",
                        lambda ctx, orgs, prefix, github=None: [sources.Source("jobs", lambda a, n: page)])
    monkeypatch.setattr(store, "watermarks", lambda: {})
    monkeypatch.setattr(store, "get_groups", lambda fps: {})
    monkeypatch.setattr(store, "groups_to_sync", lambda: [])


def test_a_scan_takes_the_lock_writes_groups_with_the_watermark_and_gives_the_lock_back(one_source):
    ctx, ledger = fake_ctx()
    result = scan.run(ctx, "incremental", 1e12, org_ids=[], use_github=False)
    assert isinstance(result, ScanResult) and (result.ingested, result.groups_touched) == (2, 1)
    fp = rules.fingerprint(failure(1))
    # the lock, the scan kept as started, the page's groups with the watermark, the lock back, the scan kept as ended
    assert [list(c) for c in ledger.committed] == [["lock"], ["scan"], [f"group:{fp}", "watermark"], ["lock"], ["scan"]]


def test_a_scan_while_another_holds_the_lock_is_a_conflict_and_writes_nothing(one_source):
    ctx, ledger = fake_ctx()
    ledger.fail["lock"] = 1
    with pytest.raises(Conflict):
        scan.run(ctx, "incremental", 1e12, org_ids=[], use_github=False)
    assert ledger.committed == []


def test_group_writes_that_meet_another_writer_are_read_and_merged_again(one_source, monkeypatch):
    ctx, ledger = fake_ctx()
    reads = []
    monkeypatch.setattr(store, "get_groups", lambda fps: reads.append(fps) or {})
    ledger.conflicts = 1  # the first commit meets another transaction (a claim of the same group)
    stats = scan.ScanStats.start("s1", "incremental")
    scan._fold(ctx, [(failure(1), True)], "jobs", "c1", stats)
    assert len(reads) == 2 and stats.groups_touched == 1
    assert list(ledger.committed[-1])[-1] == "watermark"
