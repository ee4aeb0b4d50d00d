"""A thin GitHub REST client for issues, comments and search, and the Actions reads of the ops
scan's CI source (failed workflow runs, their jobs, a job log's tail); urllib, no dependency.

Why not githubkit or PyGithub (docs/OPS.md says more): the scan needs five
routes, and it needs rate-limit waits that know the Lambda's remaining time
(wait when the wait fits, otherwise stop and let the scan checkpoint).
githubkit retries a rate limit once on its own schedule and brings a large
generated schema package into the Lambda bundle; PyGithub's GithubRetry
sleeps without knowing the function's deadline. Fifty lines of urllib do
exactly what is needed and are tested against a fake that validates every
request and answer against GitHub's published description.

The token is sent in the Authorization header and nowhere else: it is never
logged, never put in an exception message, never returned.
"""
from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
SECONDARY_DEFAULT_WAIT = 60.0  # GitHub: without retry-after, wait at least a minute
MAX_ATTEMPTS = 4


class GitHubError(Exception):
    """GitHub answered with an error (or could not be reached): `status` and GitHub's message only."""

    def __init__(self, status: int, message: str):
        super().__init__(f"GitHub answered {status}: {message}")
        self.status = status
        self.message = message


class OutOfTime(Exception):
    """A rate limit asks for a wait longer than the time left: checkpoint and continue next run."""

    def __init__(self, wait_seconds: float):
        super().__init__(f"rate limited for {wait_seconds:.0f} s, more than the time left")
        self.wait_seconds = wait_seconds


def rate_limit_wait(status: int, headers: dict[str, str], message: str, now: float) -> float | None:
    """Seconds to wait before retrying, when the answer is a rate limit; None when it is not.

    Primary limit: 403/429 with x-ratelimit-remaining 0 -> until x-ratelimit-reset.
    Secondary limit: 403/429 with retry-after -> that many seconds; with only a message
    saying so -> at least a minute (GitHub's guidance)."""
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return SECONDARY_DEFAULT_WAIT
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now) + 1.0
        except ValueError:
            return SECONDARY_DEFAULT_WAIT
    if status == 429 or "rate limit" in message.lower():
        return SECONDARY_DEFAULT_WAIT
    return None


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class GitHub:
    def __init__(self, token: str, repo: str, api_url: str = "https://api.github.com",
                 seconds_left: Callable[[], float] = lambda: 600.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, timeout: float = 10.0):
        if repo and "/" not in repo:  # "" : no issues repository (the CI source reads other repositories)
            raise ValueError("GITHUB_REPO must be owner/name")
        self._token = token
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.seconds_left = seconds_left
        self.sleep = sleep
        self.clock = clock
        self.timeout = timeout
        self.calls = 0          # HTTP requests sent (the bench counts these)
        self.waited = 0.0       # seconds spent waiting out rate limits
        self._blocked_until = 0.0

    def __repr__(self) -> str:  # never the token
        return f"GitHub(repo={self.repo!r}, api_url={self.api_url!r})"

    # --- the routes the scan uses --------------------------------------------------------

    def create_issue(self, title: str, body: str, labels: list[str]) -> dict[str, Any]:
        issue: dict[str, Any] = self._call("POST", f"/repos/{self.repo}/issues",
                                           body={"title": title, "body": body, "labels": labels})
        return issue

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        issue: dict[str, Any] = self._call("PATCH", f"/repos/{self.repo}/issues/{int(number)}", body=fields)
        return issue

    def comment(self, number: int, body: str) -> dict[str, Any]:
        issue: dict[str, Any] = self._call("POST", f"/repos/{self.repo}/issues/{int(number)}/comments", body={"body": body})
        return issue

    def find_by_marker(self, marker_text: str, is_ours: Callable[[str | None], bool]) -> dict[str, Any] | None:
        """The oldest issue found by searching `marker_text` whose body `is_ours` accepts (search matches the
        text anywhere in a body; whether it is the scan's own marker, in the scan's place, the caller says)."""
        q = f'repo:{self.repo} is:issue in:body "{marker_text}"'
        found = self._call("GET", "/search/issues", query={"q": q, "per_page": 10})
        items = [i for i in found.get("items", []) if is_ours(i.get("body"))]
        return min(items, key=lambda i: i["number"]) if items else None

    def closed_since(self, label: str, since: str | None, max_pages: int = 10) -> list[dict[str, Any]]:
        """Issues with `label` closed (updated) since `since`: how the scan learns what people closed."""
        out: list[dict[str, Any]] = []
        for page in range(1, max_pages + 1):
            query: dict[str, Any] = {"state": "closed", "labels": label, "per_page": 100, "page": page}
            if since:
                query["since"] = since
            items = self._call("GET", f"/repos/{self.repo}/issues", query=query)
            out.extend(i for i in items if "pull_request" not in i)
            if len(items) < 100:
                break
        return out

    # --- GitHub Actions (the ops scan's CI source, chalicelib/ops/ci.py) ---------------------

    def failed_runs(self, repo: str, page: int, per_page: int = 100, created: str | None = None) -> list[dict[str, Any]]:
        """One page of `repo`'s workflow runs that concluded `failure`, newest first
        (GET /repos/{owner}/{repo}/actions/runs?status=failure; `created` is GitHub's date filter, `>=2026-12-01`)."""
        query: dict[str, Any] = {"status": "failure", "per_page": per_page, "page": page}
        if created:
            query["created"] = created
        found = self._call("GET", f"/repos/{_repo_path(repo)}/actions/runs", query=query)
        runs = found.get("workflow_runs", []) if isinstance(found, dict) else []
        return [r for r in runs if isinstance(r, dict)]

    def run_jobs(self, repo: str, run_id: int) -> list[dict[str, Any]]:
        """The jobs of a run's latest attempt (one page of 100: a workflow has at most 256 jobs, the failing
        one is what the scan wants and GitHub lists jobs in the order they ran)."""
        found = self._call("GET", f"/repos/{_repo_path(repo)}/actions/runs/{int(run_id)}/jobs",
                           query={"filter": "latest", "per_page": 100})
        jobs = found.get("jobs", []) if isinstance(found, dict) else []
        return [j for j in jobs if isinstance(j, dict)]

    def job_log_tail(self, repo: str, job_id: int, max_bytes: int, read_cap: int) -> tuple[str, bool]:
        """The last `max_bytes` of a job's log, and whether it was cut. GitHub answers
        GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs with a 302 to a short-lived pre-signed URL:
        that URL is fetched without the token (a redirect must never carry it to another host), asking
        for the tail only (`Range: bytes=-N`); a server that ignores the range is read to at most
        `read_cap` bytes, keeping the tail. GitHubError(404/410) when the log is gone."""
        answer = self._answer("GET", f"/repos/{_repo_path(repo)}/actions/jobs/{int(job_id)}/logs")
        location = answer.headers.get("location")
        if answer.status not in (301, 302, 303, 307, 308) or not location:
            message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
            raise GitHubError(answer.status, message or "no log location")
        return _download_tail(location, max_bytes, read_cap, self.timeout)

    # --- transport ------------------------------------------------------------------------

    def _call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        answer = self._answer(method, path, query, body)
        if answer.status >= 300:
            message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
            raise GitHubError(answer.status, message or "no message")
        return answer.body

    def _answer(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Answer:
        """The first answer that is not a rate limit (waiting one out when the wait fits); a redirect is
        returned as it is, never followed."""
        for attempt in range(MAX_ATTEMPTS):
            self._wait(self._blocked_until - self.clock())
            answer = self._send(method, path, query, body)
            remaining = answer.headers.get("x-ratelimit-remaining")
            if remaining == "0" and answer.headers.get("x-ratelimit-reset"):
                # The next call would be refused: hold it until the window resets.
                try:
                    self._blocked_until = float(answer.headers["x-ratelimit-reset"])
                except ValueError:
                    pass
            if answer.status < 400:
                return answer
            message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
            wait = rate_limit_wait(answer.status, answer.headers, message, self.clock())
            if wait is None or attempt == MAX_ATTEMPTS - 1:
                return answer
            log.info("github rate limited", extra={"status": answer.status, "waitSeconds": wait, "path": path})
            self._wait(wait)
        raise AssertionError("unreachable")

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if seconds > self.seconds_left():
            raise OutOfTime(seconds)
        self.waited += seconds
        self.sleep(seconds)

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any) -> Answer:
        url = self.api_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": "control-plane-ops-scan", "Authorization": f"Bearer {self._token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        self.calls += 1
        try:
            with _NO_REDIRECTS.open(request, timeout=self.timeout) as response:
                status, raw, rh = response.status, response.read(), response.headers
        except urllib.error.HTTPError as e:
            status, raw, rh = e.code, e.read(), e.headers
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise GitHubError(0, f"unreachable: {type(e).__name__}") from None
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Answer(status, parsed, {k.lower(): v for k, v in rh.items()})


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Answers a redirect as it is: urllib would follow it with every header of the request, the token too."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


def _repo_path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return f"{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"


def _download_tail(url: str, max_bytes: int, read_cap: int, timeout: float) -> tuple[str, bool]:
    """GET `url` (no token) for its last `max_bytes`: (text, cut). Decoded leniently (a log is bytes)."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise GitHubError(0, "the log location is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Range": f"bytes=-{int(max_bytes)}",
                                                   "User-Agent": "control-plane-ops-scan"})
    try:
        with _NO_REDIRECTS.open(request, timeout=timeout) as response:
            status, total = response.status, response.headers.get("content-range", "")
            tail = b""
            read = 0
            while True:
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                read += len(chunk)
                tail = (tail + chunk)[-max_bytes:]
                if read >= read_cap:
                    break
    except urllib.error.HTTPError as e:
        if e.code == 416:  # an empty log has no last bytes
            return "", False
        raise GitHubError(e.code, "the log could not be downloaded") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise GitHubError(0, f"log unreachable: {type(e).__name__}") from None
    size = total.rsplit("/", 1)[-1] if status == 206 else ""
    cut = read >= read_cap or (size.isdigit() and int(size) > len(tail)) or (status == 200 and read > len(tail))
    return tail.decode("utf-8", errors="replace"), bool(cut)
