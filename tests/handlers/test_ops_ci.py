"""The ops scan's CI source against the fake GitHub (tests/fakes/github_actions.py): failed Actions runs of an
organization's allow-listed repositories, grouped per workflow, one failing job and log tail per group; calls
that grow with new runs and groups, not with history; 404, primary and secondary rate limits, a limit longer
than the time left; huge, gone and hostile logs; the token never sent to the log's pre-signed URL."""
from __future__ import annotations

import time

import pytest

from chalicelib.core.context import Ctx
from chalicelib.ops import ci, scan, store
from chalicelib.ops.github import GitHub
from tests.fakes.github_server import FakeGitHub
from tests.support.hostile import HOSTILE, SECRETS, problems

RUNS = "GET /repos/{owner}/{repo}/actions/runs"
JOBS = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
LOGS = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs"


@pytest.fixture
def fake():
    with FakeGitHub(token="ci-token") as gh:
        yield gh
    assert gh.violations == []


@pytest.fixture
def tenant(http, org):
    """An organization with two allow-listed repositories of an owner of its own (groups are platform-wide:
    each test's repositories are its own)."""
    owner = f"t{org['orgId'][-8:].lower()}"
    org["api"], org["web"] = f"{owner}/api", f"{owner}/web"
    r = http.put("/github/repos", org["adminKey"], {"repos": [{"repo": org["api"]}, {"repo": org["web"]}]})
    assert r.status == 200, r.json
    return org


def client(fake, seconds_left=60.0, slept=None):
    """A client whose waits move its own clock instead of sleeping (the waits it takes are in `slept`)."""
    now = [time.time()]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if slept is not None:
            slept.append(seconds)

    return GitHub(fake.token, fake.repo_full, fake.url, seconds_left=lambda: seconds_left, sleep=sleep,
                  clock=lambda: now[0])


def scan_org(org, fake, seconds=60, gh=None, scope="incremental"):
    return scan.run(Ctx.system(org["orgId"]), scope, time.time() + seconds, org_ids=[org["orgId"]],
                    gh=gh or client(fake)).model_dump(by_alias=True)


def ci_groups(org_id):
    return sorted((g for g in store.all_groups() if g["kind"] == "ci" and
                   any(s.get("orgId") == org_id for s in g["samples"])), key=lambda g: g["title"])



def calls(fake, route):
    return len(fake.calls(route))


def test_failed_runs_group_per_workflow_with_one_job_and_log_per_group(tenant, fake):
    log_text = "\n".join(f"2026-12-01T10:00:{i:02d}.0000000Z step output line {i}" for i in range(200))
    for _ in range(3):
        fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml",
                             jobs=[("build", "success", None), ("test", "failure", log_text + "\nError: 3 tests failed")])
    for _ in range(2):
        fake.actions.add_run(tenant["api"], "Deploy", ".github/workflows/deploy.yml",
                             jobs=[("deploy", "failure", "\x1b[31mError:\x1b[0m deploy to staging timed out")])
    fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", conclusion="success",
                         jobs=[("test", "success", None)])
    result = scan_org(tenant, fake)
    groups = ci_groups(tenant["orgId"])
    assert [(g["count"], g["severity"]) for g in groups] == [(3, "medium"), (2, "medium")]
    ci_group, deploy = groups
    assert ci_group["title"].startswith(f"[ops] ci {tenant['api']} .github/workflows/ci.yml: workflow CI failed")
    where = ci_group["samples"][-1]["where"]
    assert where["repository"] == tenant["api"] and where["job"] == "test" and where["step"] == "Run tests"
    assert where["run"].startswith(f"https://github.com/{tenant['api']}/actions/runs/")
    assert "Error: <n> tests failed" not in ci_group["key"]  # the log is not part of the fingerprint
    assert ci_group["traceback"].endswith("Error: 3 tests failed")
    assert "line 199" in ci_group["traceback"] and "line 100" not in ci_group["traceback"]  # the tail only
    assert "\x1b" not in deploy["traceback"] and "Error: deploy to staging timed out" in deploy["traceback"]
    # Calls: one page of runs per repository, then a jobs list and a log per group (not per run).
    assert (calls(fake, RUNS), calls(fake, JOBS), calls(fake, LOGS)) == (2, 2, 2)
    assert result["githubCalls"] >= 6
    requests = fake.actions.log_requests
    assert len(requests) == 2 and all(r[1] == f"bytes=-{ci.LOG_TAIL_BYTES}" and r[2] is None for r in requests)

    # Nothing new: one runs page per repository and nothing else.
    fake.reset_calls()
    scan_org(tenant, fake)
    assert (calls(fake, RUNS), calls(fake, JOBS), calls(fake, LOGS)) == (2, 0, 0)
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [3, 2]

    # Two new failures of CI: counted once each; one jobs list and one log for their group.
    fake.reset_calls()
    for _ in range(2):
        fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", jobs=[("test", "failure", "boom")])
    scan_org(tenant, fake)
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [5, 2]
    assert (calls(fake, RUNS), calls(fake, JOBS), calls(fake, LOGS)) == (2, 1, 1)
    assert ci_groups(tenant["orgId"])[0]["traceback"] == "boom"

    # A full scan re-reads the lookback window and counts nothing twice.
    scan_org(tenant, fake, scope="full")
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [5, 2]

    # Filed on the issues repository with the log tail quoted under its own heading.
    bodies = [i["body"] for i in fake.issues.values() if tenant["api"] in i["title"]]
    assert any("**Log tail of the failing job (latest):**" in b for b in bodies)


def test_many_pages_of_new_runs_are_read_until_the_watermark(tenant, fake):
    for i in range(150):
        fake.actions.add_run(tenant["web"], "Lint", ".github/workflows/lint.yml", jobs=[("lint", "failure", f"E{i}")])
    scan_org(tenant, fake)
    assert calls(fake, RUNS) == 1 + 2   # acme/api (empty), acme/web pages 1 and 2
    (group,) = [g for g in ci_groups(tenant["orgId"]) if "lint" in g["title"]]
    assert group["count"] == 150 and group["traceback"] == "E149"
    fake.reset_calls()
    for _ in range(3):
        fake.actions.add_run(tenant["web"], "Lint", ".github/workflows/lint.yml", jobs=[("lint", "failure", "x")])
    scan_org(tenant, fake)
    assert calls(fake, RUNS) == 2  # the first page reaches the watermark
    assert [g["count"] for g in ci_groups(tenant["orgId"]) if "lint" in g["title"]] == [153]


def test_a_repository_github_does_not_know_is_an_error_of_that_source_only(tenant, fake, http, root):
    fake.actions.missing_repos.add(tenant["api"])
    fake.actions.add_run(tenant["web"], "CI", ".github/workflows/ci.yml", jobs=[("t", "failure", "fail")])
    result = scan_org(tenant, fake)
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [1]
    record = http.get(f"/api/ops/scans/{result['scanId']}", root["adminApiKey"]).json
    (source,) = [s for s in record["sources"] if s["name"] == "ci"]
    assert source["read"] == 1
    assert source["errors"] == [f"{tenant['api']}: GitHub answered 404: Not Found"]
    # The next scan tries again (nothing moved for acme/api) and reads it once it exists.
    fake.actions.missing_repos.clear()
    fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", jobs=[("t", "failure", "fail")])
    scan_org(tenant, fake)
    assert sorted(g["count"] for g in ci_groups(tenant["orgId"])) == [1, 1]


def test_primary_and_secondary_rate_limits_are_waited_out(tenant, fake):
    fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", jobs=[("t", "failure", "fail")])
    fake.rate_limit(RUNS, kind="primary", reset_in=5)
    fake.rate_limit(JOBS, kind="secondary", retry_after=7)
    fake.rate_limit(LOGS, kind="secondary429", retry_after=3)
    slept: list[float] = []
    scan_org(tenant, fake, gh=client(fake, slept=slept))
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [1]
    assert ci_groups(tenant["orgId"])[0]["traceback"] == "fail"
    assert len(slept) == 3 and 5 <= slept[0] <= 7 and slept[1:] == [7.0, 3.0]


def test_a_limit_longer_than_the_time_left_checkpoints_and_the_next_scan_goes_on(tenant, fake):
    fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", jobs=[("t", "failure", "fail")])
    fake.rate_limit(RUNS, kind="secondary", retry_after=600)
    first = scan_org(tenant, fake, gh=client(fake, seconds_left=20))
    assert first["checkpointed"] is True and ci_groups(tenant["orgId"]) == []
    scan_org(tenant, fake)
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [1]


def test_huge_gone_and_hostile_logs_are_bounded_redacted_and_filed_inert(tenant, fake):
    secrets = "\n".join(text for text, _ in SECRETS.values())
    huge = ("x" * 199 + "\n") * 30_000 + secrets + "\n" + HOSTILE + "\n@release-team fix #12 <script>x</script>"
    fake.actions.add_run(tenant["api"], "Hostile <b>@ops</b> #7", ".github/workflows/h.yml",
                         jobs=[("job @admin", "failure", huge)], head_branch="evil/@maintainers", display_title="#1 @x")
    fake.actions.add_run(tenant["web"], "Gone", ".github/workflows/gone.yml", jobs=[("t", "failure", None)])
    scan_org(tenant, fake)
    hostile, gone = [g for g in ci_groups(tenant["orgId"])]
    assert len(hostile["traceback"]) <= 6000 + 100
    for _, fragments in SECRETS.values():
        for fragment in fragments:
            assert fragment not in str(hostile), fragment
    assert gone["samples"][-1]["where"]["log"] == "unavailable (404)"
    filed = [i for i in fake.issues.values() if tenant["api"] in i["title"] or tenant["web"] in i["title"]]
    assert len(filed) == 2
    for issue in filed:
        assert problems(issue["body"], first_line_comment=True) == [], issue["body"][:2000]
        assert problems(issue["title"], limit=256) == []


def test_a_server_that_ignores_the_range_is_read_to_a_cap_keeping_the_tail(tenant, fake, monkeypatch):
    monkeypatch.setattr(ci, "LOG_READ_CAP", 1024 * 1024)
    fake.actions.range_supported = False
    fake.actions.add_run(tenant["api"], "Big", ".github/workflows/big.yml",
                         jobs=[("t", "failure", "a line of log\n" * 200_000 + "the end\n")])
    scan_org(tenant, fake)
    (group,) = ci_groups(tenant["orgId"])
    assert group["traceback"].startswith("[… the last") and "the end" not in group["traceback"]
    assert ci.LOG_TAIL_LINES - 1 <= group["traceback"].count("a line of log") <= ci.LOG_TAIL_LINES


def test_without_a_token_there_is_no_ci_source(tenant, fake):
    fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", jobs=[("t", "failure", "fail")])
    scan.run(Ctx.system(tenant["orgId"]), "incremental", time.time() + 30, org_ids=[tenant["orgId"]],
             use_github=False)
    assert ci_groups(tenant["orgId"]) == [] and fake.requests == []


def test_an_organization_without_repositories_reads_none_and_a_shared_repository_is_read_once(http, root, tenant, fake):
    bare = http.post("/orgs", root["adminApiKey"], {"name": "no repos"}).json
    scan_org(bare, fake)
    assert fake.calls(RUNS) == []
    second = http.post("/orgs", root["adminApiKey"], {"name": "shares a repo"}).json
    assert http.put("/github/repos", second["adminKey"], {"repos": [{"repo": tenant["api"].upper()}]}).status == 200
    fake.actions.add_run(tenant["api"], "CI", ".github/workflows/ci.yml", jobs=[("t", "failure", "fail")])
    scan.run(Ctx.system(root["orgId"]), "incremental", time.time() + 60,
             org_ids=[tenant["orgId"], second["orgId"]], gh=client(fake))
    assert len([c for c in fake.calls(RUNS) if c.path.lower() == f"/repos/{tenant['api']}/actions/runs"]) == 1
    assert [g["count"] for g in ci_groups(tenant["orgId"])] == [1]
