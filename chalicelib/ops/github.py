"""A thin GitHub REST client for issues, comments and search (urllib, no dependency).

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
        if "/" not in repo:
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

    # --- transport ------------------------------------------------------------------------

    def _call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
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
            if answer.status < 300:
                return answer.body
            message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
            wait = rate_limit_wait(answer.status, answer.headers, message, self.clock())
            if wait is None or attempt == MAX_ATTEMPTS - 1:
                raise GitHubError(answer.status, message or "no message")
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
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
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
