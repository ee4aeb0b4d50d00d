"""The console's one use case: where the page finds the API (GET /console/config.json, and the
WebSocket origin every console answer's CSP names). Nothing about the caller matters: no key."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.console import rules
from chalicelib.console.models import ConsoleConfig
from chalicelib.core.config import on_lambda, settings


@dataclass(frozen=True)
class Where:
    """The request as the client saw it (routes.py reads it from the headers, checked)."""

    scheme: str
    host: str
    path: str


def config(where: Where) -> ConsoleConfig:
    """The REST base URL and the WebSocket URL (no token in it); oidc null until people sign in with OIDC."""
    return ConsoleConfig(
        rest_url=rules.rest_url(where.scheme, where.host, where.path),
        ws_url=rules.websocket_url(settings().console_websocket_url, on_lambda(), where.host, where.scheme),
        oidc=None)
