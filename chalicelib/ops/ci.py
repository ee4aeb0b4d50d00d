"""The ops scan's CI source: failed GitHub Actions workflow runs of each organization's allow-listed
repositories (github_tools.service.allowed_repositories), grouped by the same fingerprints as every
other failure (docs/OPS.md, "CI failures").

One Source per repository, key `ci#{owner/name}` (read once even when several organizations list it;
the first one names the samples); its watermark is the last run id seen (zero-padded: cursors sort
as strings). A read lists the repository's runs with
conclusion `failure`, newest first (GET /repos/{o}/{r}/actions/runs?status=failure, 100 a page), and
stops at the first page that reaches the watermark: a scan with nothing new costs one call per
repository. Without a watermark (the first scan, or `full`) it reads the runs created in the last
LOOKBACK_DAYS.

The fingerprint is (ci, repository and workflow file, "workflow {name} failed"): what a run's list
entry says, so grouping costs no call per run. For the newest run of each group in a read, and only
for it, the scan asks which job failed (GET .../runs/{id}/jobs) and fetches the tail of that job's
log (GET .../jobs/{id}/logs: a 302 to a pre-signed URL, downloaded without the token, only its last
LOG_TAIL_BYTES). GitHub calls per scan = repositories + new runs / 100 + 3 per group with new runs:
proportional to groups, not to failures (bench/ops_scan.py).

Everything GitHub returns is untrusted (workflow, job and step names, branch, the log): a Failure
redacts it when it is made (core/redaction.py) and bounds each value; the issue body quotes it
(ops/quoting.py); the log's terminal escapes and control characters are dropped first.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import re
from typing import TYPE_CHECKING, Any

from chalicelib.ops import rules
from chalicelib.ops.github import GitHub, GitHubError
from chalicelib.ops.rules import Failure
from chalicelib.ops.sources import Page, Source, SourceUnavailable

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx

log = logging.getLogger(__name__)

RUN_PAGE = 100                  # GitHub's largest page
MAX_PAGES = 10                  # at most 1,000 new failed runs per repository and scan; older ones are skipped
LOOKBACK_DAYS = 7               # a repository's first read (and a full scan): runs created this recently
LOG_TAIL_BYTES = 16 * 1024      # asked of the log download (Range: bytes=-N)
LOG_READ_CAP = 8 * 1024 * 1024  # a download that ignores the range is read this far at most
LOG_TAIL_LINES = 60             # what the group keeps of the tail
FAILED_JOB = ("failure", "timed_out", "startup_failure", "cancelled")
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def repositories(org_id: str) -> list[str]:
    """The organization's allow-listed repositories (one GetItem); none when GitHub tools are not set up."""
    from chalicelib.github_tools import service as github_tools

    return [entry.repo for entry in github_tools.allowed_repositories(org_id)]


def sources(org_ctxs: list["Ctx"], gh: GitHub | None, now: float) -> list[Source]:
    """A source per allow-listed repository, each read once however many organizations list it (the
    first one that does names it in the samples); none without a GitHub token."""
    if gh is None:
        return []
    seen: dict[str, Source] = {}
    for ctx in org_ctxs:
        for repo in repositories(ctx.org_id):
            if repo.lower() not in seen:
                seen[repo.lower()] = repository_source(ctx, gh, repo, now)
    return list(seen.values())


def _cursor(run_id: int) -> str:
    return f"{int(run_id):020d}"


def repository_source(ctx: "Ctx", gh: GitHub, repo: str, now: float) -> Source:
    since = datetime.datetime.fromtimestamp(now - LOOKBACK_DAYS * 86400, datetime.timezone.utc).strftime("%Y-%m-%d")

    def read(after: str | None, limit: int) -> Page:
        after_id = int(after) if after else None
        runs = _new_failed_runs(gh, repo, after_id, None if after_id is not None else f">={since}")
        failures = [_failure(ctx, repo, run) for run in runs]
        newest: dict[str, int] = {}
        for index, failure in enumerate(failures):
            newest[rules.fingerprint(failure)] = index   # runs are oldest first: the last one wins
        for index in newest.values():
            failures[index] = _with_failing_job(gh, repo, runs[index], failures[index])
        return Page(failures, failures[-1].cursor if failures else None, len(failures), False)

    return Source(f"{rules.CI}#{repo.lower()}", read)


def _new_failed_runs(gh: GitHub, repo: str, after_id: int | None, created: str | None) -> list[dict[str, Any]]:
    """Failed runs newer than `after_id`, oldest first; pages stop at the first run already seen."""
    found: dict[int, dict[str, Any]] = {}
    for page in range(1, MAX_PAGES + 1):
        try:
            runs = gh.failed_runs(repo, page, RUN_PAGE, created)
        except GitHubError as error:
            raise SourceUnavailable(f"{repo}: {error}") from None
        fresh = [r for r in runs if isinstance(r.get("id"), int) and (after_id is None or r["id"] > after_id)]
        for run in fresh:
            if run.get("conclusion") == "failure":
                found[run["id"]] = run
        if len(runs) < RUN_PAGE or len(fresh) < len(runs):
            break
    return [found[k] for k in sorted(found)]


def _text(value: Any, limit: int = 200) -> str:
    return _CONTROL.sub("", str(value or ""))[:limit]


def _failure(ctx: "Ctx", repo: str, run: dict[str, Any]) -> Failure:
    name = _text(run.get("name") or run.get("path") or "workflow")
    path = _text(run.get("path"))
    where = (("repository", repo), ("workflow", path or name), ("run", _text(run.get("html_url"), 300)),
             ("branch", _text(run.get("head_branch"))), ("commit", _text(run.get("head_sha"), 12)),
             ("event", _text(run.get("event"))))
    return Failure(rules.CI, str(run["id"]), _text(run.get("created_at"), 40), f"workflow {name} failed",
                   ctx.org_id, f"{repo} {path}".strip(), None, _cursor(run["id"]), where)


def _with_failing_job(gh: GitHub, repo: str, run: dict[str, Any], failure: Failure) -> Failure:
    """The failure with its failing job and step in `where` and the tail of the job's log; what GitHub
    cannot give (a run without jobs, a log that is gone) is said in `where` instead."""
    try:
        jobs = gh.run_jobs(repo, run["id"])
    except GitHubError as error:
        return dataclasses.replace(failure, where=(*failure.where, ("job", f"unavailable ({error.status})")))
    job = next((j for j in jobs if j.get("conclusion") in FAILED_JOB), None)
    if job is None:
        return failure
    step = next((s for s in job.get("steps") or [] if s.get("conclusion") in FAILED_JOB), None)
    where = (*failure.where, ("job", _text(job.get("name"))), ("step", _text((step or {}).get("name"))))
    try:
        text, cut = gh.job_log_tail(repo, int(job["id"]), LOG_TAIL_BYTES, LOG_READ_CAP)
    except GitHubError as error:
        return dataclasses.replace(failure, where=(*where, ("log", f"unavailable ({error.status})")))
    return dataclasses.replace(failure, where=where, log=log_tail(text, cut))


def log_tail(text: str, cut: bool) -> str:
    """The last LOG_TAIL_LINES lines, without terminal escapes or control characters; says when cut."""
    lines = _CONTROL.sub("", text.replace("\r\n", "\n")).split("\n")
    if lines and not lines[-1]:
        lines.pop()
    if cut and len(lines) > 1:
        lines = lines[1:]  # the download began inside a line
    head = []
    if cut or len(lines) > LOG_TAIL_LINES:
        lines = lines[-LOG_TAIL_LINES:]
        head = [f"[… the last {len(lines)} lines of the job's log]"]
    return "\n".join(head + [line[:1000] for line in lines])
