"""A thin GitHub REST client over urllib3 for the GitHub tools (docs/GITHUB.md says why).

urllib3 is maintained, already in every Lambda bundle (botocore depends on it), pools
connections per host (a commit is four or five requests to one host) and adds nothing to
package. The client does three things a tool call needs and no more:

- sends a request with the credential its `TokenSource` holds (never logged, never in an error);
- on 401 from a token that can be renewed (a GitHub App installation token that expired
  mid-batch), renews it once and repeats the request; a second 401 is an error;
- never sleeps on a rate limit: a primary limit (403/429 with x-ratelimit-remaining 0) or a
  secondary one (403/429 with retry-after or GitHub's message) raises `RateLimited` with the
  wait GitHub asked for, and the caller queues the work (chalicelib/github_tools/service.py).
  After an answer with x-ratelimit-remaining 0 the next request is not even sent.

Rate-limit arithmetic is the ops scan's (`chalicelib.ops.github.rate_limit_wait`): one reading
of GitHub's headers in the code base.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol
from urllib.parse import urlencode

import urllib3

from chalicelib.ops.github import API_VERSION, rate_limit_wait

USER_AGENT = "control-plane-github-tools"
_POOL = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)


class RateLimited(Exception):
    """GitHub rate-limited the call: try again in `wait_seconds` (nothing more was sent)."""

    def __init__(self, wait_seconds: float, kind: str):
        super().__init__(f"GitHub {kind} rate limit: retry in {wait_seconds:.0f} s")
        self.wait_seconds = wait_seconds
        self.kind = kind


class GitHubError(Exception):
    """GitHub answered an error (or could not be reached): its status and its message only."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(f"GitHub answered {status}: {message}")
        self.status = status
        self.message = message
        self.errors = errors or []


class TokenSource(Protocol):
    def token(self) -> str: ...

    def renew(self) -> bool:
        """Mint a fresh token; False when this kind of token cannot be renewed."""
        ...


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class GitHubClient:
    def __init__(self, api_url: str, tokens: TokenSource, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time):
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.clock = clock
        self.calls = 0            # requests sent (bench/github_tools_calls.py counts these)
        self.renewed = 0          # tokens re-minted after a 401
        self._blocked_until = 0.0

    def __repr__(self) -> str:  # never the token
        return f"GitHubClient(api_url={self.api_url!r})"

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        wait = self._blocked_until - self.clock()
        if wait > 0:
            raise RateLimited(wait, "primary")
        answer = self._send(method, path, query, body)
        if answer.status == 401 and self.tokens.renew():
            self.renewed += 1
            answer = self._send(method, path, query, body)
        if answer.headers.get("x-ratelimit-remaining") == "0" and answer.headers.get("x-ratelimit-reset"):
            try:
                self._blocked_until = float(answer.headers["x-ratelimit-reset"])
            except ValueError:
                pass
        if answer.status < 300:
            return answer.body
        message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
        limited = rate_limit_wait(answer.status, answer.headers, message, self.clock())
        if limited is not None:
            primary = answer.headers.get("x-ratelimit-remaining") == "0" and "retry-after" not in answer.headers
            raise RateLimited(limited, "primary" if primary else "secondary")
        errors = answer.body.get("errors") if isinstance(answer.body, dict) else None
        raise GitHubError(answer.status, str(message or "no message")[:500],
                          [e for e in errors if isinstance(e, dict)][:10] if isinstance(errors, list) else None)

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any) -> Answer:
        url = self.api_url + path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": USER_AGENT, "Authorization": f"Bearer {self.tokens.token()}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.calls += 1
        try:
            response = _POOL.request(method, url, body=data, headers=headers,
                                     timeout=urllib3.Timeout(total=self.timeout), redirect=False)
        except urllib3.exceptions.HTTPError as e:
            raise GitHubError(0, f"unreachable: {type(e).__name__}") from None
        try:
            parsed = json.loads(response.data) if response.data else None
        except ValueError:
            parsed = None
        return Answer(response.status, parsed, {k.lower(): v for k, v in response.headers.items()})
