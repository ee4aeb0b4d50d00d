"""GitHub Actions on the fake GitHub: the operations the ops scan's CI source uses, as GitHub's REST
description has them (tests/fakes/github-actions-openapi.json, a trimmed copy):

  GET /repos/{owner}/{repo}/actions/runs              workflow runs, newest first; status, created, per_page, page
  GET /repos/{owner}/{repo}/actions/runs/{id}/jobs    the jobs of a run (filter=latest)
  GET /repos/{owner}/{repo}/actions/jobs/{id}/logs    302 to a pre-signed URL of the job's plain-text log

Registered through github_server.EXTENSION_MODULES (`extension(fake)`). The pre-signed URL
(`/_blobs/job-logs/{id}?sig=...`) is served by the same fake, as GitHub's blob
store serves it: no GitHub authentication, `Range: bytes=-N` answered 206 with the last N bytes.
A request to it that carries an Authorization header is recorded as a violation (a client that
follows GitHub's redirect with its token hands the token to another host).

    with FakeGitHub() as gh:
        run = gh.actions.add_run("acme/api", "CI", ".github/workflows/ci.yml",
                                 jobs=[("build", "success", None), ("test", "failure", "log text ...")])
        gh.actions.missing_repos.add("acme/gone")     # 404 for every route of that repository
        gh.actions.log_requests                        # (job id, Range header, Authorization header)
"""
from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

DESCRIPTION = Path(__file__).with_name("github-actions-openapi.json")
DOCS = "https://docs.github.com/rest/actions"
BLOB_PREFIX = "/_blobs/job-logs/"


def load_description() -> dict:
    return json.loads(DESCRIPTION.read_text())


@dataclass
class FakeJob:
    id: int
    name: str
    conclusion: str | None
    log: bytes | None               # None: the log is gone (GitHub answers 404)
    steps: list[tuple[str, str]] = field(default_factory=list)   # (name, conclusion)


@dataclass
class FakeRun:
    id: int
    repo: str
    name: str
    path: str
    conclusion: str
    created_at: str
    head_branch: str = "main"
    head_sha: str = "0" * 40
    event: str = "push"
    display_title: str = "a commit"
    jobs: list[FakeJob] = field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Actions:
    """The Actions state of a FakeGitHub (`fake.actions`) and its routes."""

    def __init__(self, fake: Any):
        doc = load_description()
        # merged into the fake's description (github_server.EXTENSION_MODULES); basic-error is the issues' own
        self.paths = doc["paths"]
        self.components = {kind: {k: v for k, v in items.items() if k != "basic-error"}
                           for kind, items in doc["components"].items()}
        self.fake = fake
        self.runs: dict[int, FakeRun] = {}
        self.jobs: dict[int, tuple[FakeRun, FakeJob]] = {}
        self.missing_repos: set[str] = set()
        self.log_requests: list[tuple[int, str | None, str | None]] = []
        self.range_supported = True
        self._ids = itertools.count(30_000_000_000)   # run and job ids are int64 and grow over time
        self._clock = datetime(2026, 12, 1, tzinfo=timezone.utc)
        self._lock = threading.RLock()

    # --- scripting ---------------------------------------------------------------------

    def add_run(self, repo: str, name: str, path: str, jobs: list[tuple[str, str | None, str | bytes | None]],
                conclusion: str = "failure", created_at: str | None = None, **extra: Any) -> FakeRun:
        """A finished run of `repo`; `jobs` are (name, conclusion, log): a failed job's log text, None
        for a log that is gone. A failed job's last step failed."""
        with self._lock:
            self._clock += timedelta(minutes=1)
            run = FakeRun(next(self._ids), repo, name, path, conclusion, created_at or _iso(self._clock), **extra)
            for job_name, job_conclusion, log in jobs:
                data = log.encode() if isinstance(log, str) else log
                steps = [("Set up job", "success"), ("Run tests", job_conclusion or "success")]
                job = FakeJob(next(self._ids), job_name, job_conclusion, data, steps)
                run.jobs.append(job)
                self.jobs[job.id] = (run, job)
            self.runs[run.id] = run
            return run

    # --- routes (called by FakeGitHub under its lock) --------------------------------------

    def auth(self, method: str, path: str, authorization: str) -> None:
        return None  # the fake's own token, as for issues

    def serve(self, method: str, template: str, path: str, query: dict[str, list[str]], body: Any
              ) -> tuple[int, Any, dict] | None:
        """The answer to an Actions route, None when `path` is not one."""
        parts = path.strip("/").split("/")
        if method != "GET" or len(parts) < 5 or parts[0] != "repos" or parts[3] != "actions":
            return None
        repo = f"{parts[1]}/{parts[2]}"
        if repo in self.missing_repos:
            return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, {}
        if parts[4:] == ["runs"]:
            return self._list_runs(repo, query)
        if len(parts) == 7 and parts[4] == "runs" and parts[6] == "jobs":
            run = self.runs.get(int(parts[5])) if parts[5].isdigit() else None
            if run is None or run.repo != repo:
                return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, {}
            return 200, {"total_count": len(run.jobs), "jobs": [self._job(run, j) for j in run.jobs]}, {}
        if len(parts) == 7 and parts[4] == "jobs" and parts[6] == "logs":
            found = self.jobs.get(int(parts[5])) if parts[5].isdigit() else None
            if found is None or found[0].repo != repo or found[1].log is None:
                return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}, {}
            location = f"{self.fake.url}{BLOB_PREFIX}{found[1].id}?sig=fake-signature&expires=60"
            return 302, None, {"location": location}
        return None

    def serve_blob(self, path: str, headers: Any) -> tuple[int, bytes, dict[str, str]] | None:
        """The pre-signed log download (no GitHub auth, no rate-limit headers), None for another path."""
        if not path.startswith(BLOB_PREFIX):
            return None
        job_id = path[len(BLOB_PREFIX):]
        authorization = headers.get("authorization")
        range_header = headers.get("range")
        with self._lock:
            self.log_requests.append((int(job_id) if job_id.isdigit() else -1, range_header, authorization))
            if authorization:
                self.fake.violations.append(f"GET {path}: the token was sent to the log's pre-signed URL")
            found = self.jobs.get(int(job_id)) if job_id.isdigit() else None
        if found is None or found[1].log is None:
            return 404, b"BlobNotFound", {"content-type": "application/xml"}
        data = found[1].log
        if self.range_supported and range_header and range_header.startswith("bytes=-"):
            wanted = int(range_header[len("bytes=-"):])
            if not data:
                return 416, b"", {"content-range": "bytes */0"}
            start = max(0, len(data) - wanted)
            return 206, data[start:], {"content-type": "text/plain; charset=utf-8",
                                       "content-range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
        return 200, data, {"content-type": "text/plain; charset=utf-8"}

    # --- resources ---------------------------------------------------------------------

    def _list_runs(self, repo: str, query: dict[str, list[str]]) -> tuple[int, Any, dict]:
        status = query.get("status", [None])[0]
        created = query.get("created", [None])[0]
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        runs = [r for r in self.runs.values() if r.repo == repo
                and (status is None or status in (r.conclusion, "completed"))
                and (created is None or _created_matches(r.created_at, created))]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        chunk = runs[(page - 1) * per_page: page * per_page]
        return 200, {"total_count": len(runs), "workflow_runs": [self._run(r) for r in chunk]}, {}

    def _run(self, run: FakeRun) -> dict[str, Any]:
        api = f"https://api.github.com/repos/{run.repo}/actions/runs/{run.id}"
        repository = {"id": 1, "full_name": run.repo, "name": run.repo.split("/")[1]}
        return {"id": run.id, "name": run.name, "node_id": f"WFR_{run.id}", "check_suite_id": run.id + 7,
                "head_branch": run.head_branch, "head_sha": run.head_sha, "path": run.path,
                "display_title": run.display_title, "run_number": run.id % 1000, "run_attempt": 1,
                "event": run.event, "status": "completed", "conclusion": run.conclusion,
                "workflow_id": abs(hash(run.path)) % 10**8, "url": api,
                "html_url": f"https://github.com/{run.repo}/actions/runs/{run.id}", "pull_requests": [],
                "created_at": run.created_at, "updated_at": run.created_at, "run_started_at": run.created_at,
                "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs", "check_suite_url": f"{api}/check-suite",
                "artifacts_url": f"{api}/artifacts", "cancel_url": f"{api}/cancel", "rerun_url": f"{api}/rerun",
                "previous_attempt_url": None, "workflow_url": f"https://api.github.com/repos/{run.repo}/actions/workflows/1",
                "head_commit": {"id": run.head_sha, "message": run.display_title}, "repository": repository,
                "head_repository": repository}

    def _job(self, run: FakeRun, job: FakeJob) -> dict[str, Any]:
        api = f"https://api.github.com/repos/{run.repo}/actions/jobs/{job.id}"
        return {"id": job.id, "run_id": run.id, "run_url": f"https://api.github.com/repos/{run.repo}/actions/runs/{run.id}",
                "run_attempt": 1, "node_id": f"CR_{job.id}", "head_sha": run.head_sha, "url": api,
                "html_url": f"https://github.com/{run.repo}/actions/runs/{run.id}/job/{job.id}",
                "status": "completed", "conclusion": job.conclusion, "created_at": run.created_at,
                "started_at": run.created_at, "completed_at": run.created_at, "name": job.name,
                "steps": [{"name": n, "status": "completed", "conclusion": c, "number": i + 1,
                           "started_at": run.created_at, "completed_at": run.created_at}
                          for i, (n, c) in enumerate(job.steps)],
                "check_run_url": f"https://api.github.com/repos/{run.repo}/check-runs/{job.id}",
                "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
                "runner_group_id": 2, "runner_group_name": "GitHub Actions", "workflow_name": run.name,
                "head_branch": run.head_branch}


def _created_matches(created_at: str, qualifier: str) -> bool:
    """GitHub's date qualifiers as the CI source sends them: `>=YYYY-MM-DD[THH:MM:SSZ]`, `>...`, or a date."""
    for op in (">=", ">", "<=", "<"):
        if qualifier.startswith(op):
            bound = qualifier[len(op):]
            value = created_at[:len(bound)]
            return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]
    return created_at.startswith(qualifier)


def extension(fake: Any) -> Actions:
    """The registration hook (tests/fakes/github_server.py EXTENSION_MODULES): `fake.actions`."""
    ext = Actions(fake)
    fake.actions = ext
    return ext
