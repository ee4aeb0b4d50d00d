"""The console's one use case: where the page finds the API (GET /console/config.json, and the
WebSocket origin every console answer's CSP names). Nothing about the caller matters: no key."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.console import rules
from chalicelib.console.models import ConsoleConfig, OidcConfig
from chalicelib.core.config import on_lambda, settings


@dataclass(frozen=True)
class Where:
    """The request as the client saw it (routes.py reads it from the headers, checked)."""

    scheme: str
    host: str
    path: str


def config(where: Where) -> ConsoleConfig:
    """The REST base URL, the WebSocket URL (no token in it), and the pool people sign in against (null
    when the app takes no OIDC tokens)."""
    s = settings()
    rest_url = rules.rest_url(where.scheme, where.host, where.path)
    oidc = None
    if s.oidc_issuer and s.oidc_audience:
        oidc = OidcConfig(issuer=s.oidc_issuer, client_id=s.oidc_audience, region=s.region,
                          endpoint=rules.cognito_endpoint(s.oidc_endpoint, s.region, where.scheme, where.host))
    return ConsoleConfig(
        rest_url=rest_url,
        ws_url=rules.websocket_url(s.console_websocket_url, on_lambda(), where.host, where.scheme),
        oidc=oidc)
