"""The credential a tool call runs with: narrowed to one repository and the tool's permissions.

With a GitHub App configured (GITHUB_APP_ID and its private key), every invocation mints an
installation access token (POST /app/installations/{id}/access_tokens) limited to the one
repository (`repositories: [name]`) and the permissions the tool needs
(rules.PERMISSIONS); it lives an hour at most and is never stored. The app's own JWT (RS256,
ten minutes at most, `iss` the App id) authenticates only that mint. Without an App,
GITHUB_TOKEN is used as it is: whatever it can reach, the allow-list still limits.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Callable

from joserfc import jwt
from joserfc.jwk import RSAKey

from chalicelib.core.config import settings
from chalicelib.github_tools import adapters, rules
from chalicelib.github_tools.client import GitHubClient, GitHubError


class StaticToken:
    """GITHUB_TOKEN: nothing to renew."""

    def __init__(self, token: str):
        self._token = token

    def token(self) -> str:
        return self._token

    def renew(self) -> bool:
        return False


class _JwtTokens:
    def __init__(self, app_jwt: str):
        self._jwt = app_jwt

    def token(self) -> str:
        return self._jwt

    def renew(self) -> bool:
        return False


@lru_cache(maxsize=1)
def _private_key() -> str:
    return adapters.app_private_key()  # once per cold start


@lru_cache(maxsize=4)
def _signing_key(private_key_pem: str) -> RSAKey:
    """The App key parsed once per warm function (parsing a PEM costs more than signing with it)."""
    return RSAKey.import_key(private_key_pem)


def app_jwt(app_id: str, private_key: str, now: float | None = None) -> str:
    """The App's JWT: issued a minute in the past (clock drift, GitHub's advice), valid nine minutes."""
    issued = int(now if now is not None else time.time()) - 60
    # joserfc, the one JOSE library of the app (core/tokens.py verifies people's tokens with it too)
    return jwt.encode({"alg": "RS256"}, {"iat": issued, "exp": issued + 600, "iss": app_id},
                      _signing_key(private_key))


class InstallationToken:
    """An installation token narrowed to one repository and `permissions`, minted on first use and
    again (once per call, by the client) when GitHub says it expired."""

    def __init__(self, api_url: str, app_id: str, private_key: str, repo: str, permissions: dict[str, str],
                 installation_id: str | None, counter: Callable[[int], None] = lambda n: None):
        self.api_url, self.app_id, self.private_key = api_url, app_id, private_key
        self.repo, self.permissions = repo, permissions
        self.installation_id = installation_id
        self.counter = counter  # calls made to GitHub while minting (the bench counts them)
        self._token: str | None = None
        self.minted = 0

    def _app_client(self) -> GitHubClient:
        return GitHubClient(self.api_url, _JwtTokens(app_jwt(self.app_id, self.private_key)))

    def _mint(self) -> str:
        app = self._app_client()
        try:
            installation = self.installation_id or _installation_of(self.api_url, self.repo, app)
            answer: dict[str, Any] = app.request(
                "POST", f"/app/installations/{installation}/access_tokens",
                body={"repositories": [self.repo.split("/", 1)[1]], "permissions": self.permissions})
        finally:
            self.counter(app.calls)
        self.minted += 1
        return str(answer["token"])

    def token(self) -> str:
        if self._token is None:
            self._token = self._mint()
        return self._token

    def renew(self) -> bool:
        self._token = self._mint()
        return True


_INSTALLATIONS: dict[str, str] = {}  # owner -> installation id (stable; asked once per container)


def _installation_of(api_url: str, repo: str, app: GitHubClient) -> str:
    owner = repo.split("/", 1)[0].lower()
    if owner not in _INSTALLATIONS:
        found: dict[str, Any] = app.request("GET", f"/repos/{repo}/installation")
        _INSTALLATIONS[owner] = str(found["id"])
    return _INSTALLATIONS[owner]


def client_for(repo: str, tool: str) -> GitHubClient:
    """A client whose every request carries a credential for `repo` and `tool` only."""
    s = settings()
    if s.github_app_id:
        holder: list[GitHubClient] = []
        source = InstallationToken(s.github_api_url, s.github_app_id, _private_key(), repo,
                                   rules.PERMISSIONS[tool], s.github_app_installation_id,
                                   counter=lambda n: _count(holder, n))
        client = GitHubClient(s.github_api_url, source)
        holder.append(client)
        return client
    if not s.github_token:
        raise GitHubError(0, "no GitHub credential is configured (GITHUB_APP_ID or GITHUB_TOKEN)")
    return GitHubClient(s.github_api_url, StaticToken(s.github_token))


def _count(holder: list[GitHubClient], n: int) -> None:
    if holder:
        holder[0].calls += n
