"""Ops scan, CI source: GitHub calls per scan as failed CI runs grow, beside the minimum.

Goal: GitHub calls proportional to groups, not to failures. Setup: in-process moto, the fake GitHub
(tests/fakes/github_actions.py) over real HTTP; one organization with 3 allow-listed repositories.
Each scan's new failed runs are spread over the groups (one per repository and workflow file) named
in its row. Calls are counted by route on the fake (the log's pre-signed download is not a GitHub API
call and is counted apart).

Minimum, per scan: the runs pages of each repository up to the one that shows the last run already
seen (new runs // 100 + 1: it cannot know there is nothing new without asking); per group with new runs, its failing job
(jobs list) and that job's log (logs redirect): a group's issue names them; filing: one list of closed
issues, search + create per new group, one comment per recurring group. Baseline: the same reads with
a jobs list and a log per failed run (what a per-failure design costs).
"""
from __future__ import annotations

import json
import os
import time

from common import moto_stack, table

REPOS = ("acme/api", "acme/web", "acme/infra")
RUNS = "GET /repos/{owner}/{repo}/actions/runs"
JOBS = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
LOGS = "GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs"


def add_failures(github, count: int, workflows: list[tuple[str, str]]) -> dict[str, int]:
    """`count` failed runs spread over (repo, workflow) pairs; returns new runs per repository."""
    per_repo: dict[str, int] = {}
    for i in range(count):
        repo, workflow = workflows[i % len(workflows)]
        github.actions.add_run(repo, workflow.title(), f".github/workflows/{workflow}.yml",
                               jobs=[("build", "success", None),
                                     ("test", "failure", f"run {i}: FAILED tests/test_{workflow}.py::test_{i % 7}\n")])
        per_repo[repo] = per_repo.get(repo, 0) + 1
    return per_repo


def main() -> None:
    from devstack import fast_moto
    from tests.fakes.github_server import FakeGitHub

    fast_moto.patch_transactions()
    fast_moto.patch_index_queries()
    with FakeGitHub(token="bench-token") as github:
        os.environ.update(GITHUB_TOKEN=github.token, GITHUB_REPO=github.repo_full, GITHUB_API_URL=github.url)
        with moto_stack() as (app_module, counter, root):
            from chalice.test import Client

            from chalicelib.core import config
            from chalicelib.core.context import Ctx
            from chalicelib.ops import scan

            config.settings.cache_clear()
            with Client(app_module.app) as client:
                def call(method, path, key, body):
                    r = getattr(client.http, method)(path, headers={"authorization": f"Bearer {key}",
                                                                    "content-type": "application/json"},
                                                     body=json.dumps(body))
                    return json.loads(r.body)

                org = call("post", "/orgs", root["adminApiKey"], {"name": "bench-ci"})
                call("put", "/github/repos", org["adminKey"], {"repos": [{"repo": r} for r in REPOS]})

            ctx = Ctx.system(root["orgId"])
            known: set[str] = set()
            rows = []
            scenarios = [
                ("1: 60 failures, 6 groups", 60, [(r, w) for r in REPOS for w in ("ci", "lint")]),
                ("2: nothing new", 0, []),
                ("3: 600 failures, same 6 groups", 600, [(r, w) for r in REPOS for w in ("ci", "lint")]),
                ("4: 2,400 failures, 6 groups (3 new)", 2400, [(r, w) for r in REPOS for w in ("ci", "deploy")]),
                ("5: 6 failures, 6 groups", 6, [(r, w) for r in REPOS for w in ("ci", "deploy")]),
            ]
            for label, count, workflows in scenarios:
                per_repo = add_failures(github, count, workflows)
                groups = {f"{r}|{w}" for r, w in workflows} if count else set()
                new_groups = len(groups - known)
                known |= groups
                github.reset_calls()
                logs_before = len(github.actions.log_requests)
                started = time.perf_counter()
                result = scan.run(ctx, "incremental", time.time() + 600, org_ids=[org["orgId"]])
                elapsed = time.perf_counter() - started
                by_route = {route: len(github.calls(route)) for route in (RUNS, JOBS, LOGS)}
                total = len(github.requests)
                # a repository's pages: every full page of new runs, then the one that shows the watermark
                pages = sum(per_repo.get(r, 0) // 100 + 1 for r in REPOS)
                filing = 1 + 2 * new_groups + (len(groups) - new_groups)
                minimum = pages + 2 * len(groups) + filing
                baseline = pages + 2 * count + filing
                rows.append((label, f"{count:,}", len(groups), by_route[RUNS], by_route[JOBS], by_route[LOGS],
                             len(github.actions.log_requests) - logs_before, total, minimum, f"{baseline:,}",
                             result.issues_opened, result.issues_updated, f"{elapsed:.1f}"))
                print(label, "done", flush=True)
            issues = len(github.issues)

    print(__doc__.split("\n\n")[0] + "\n")
    print(table(rows, ("scan", "new failed runs", "groups", "runs pages", "jobs", "logs", "log downloads",
                       "GitHub calls", "minimum", "per-failure baseline", "opened", "commented", "s (moto)")))
    print(f"\nGitHub issues at the end: {issues} (9 groups; no duplicate).")
    assert github.violations == [], github.violations[:3]


if __name__ == "__main__":
    main()
