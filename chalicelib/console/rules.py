"""Pure rules of the console's delivery: which asset names exist, their types, the headers, the URLs.

No I/O here (tests/unit/test_console_rules.py): routes.py reads the files and the request.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

# Asset names are one plain path segment: no dot segments, no separators, no encoded tricks.
ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}


def content_type(name: str) -> str | None:
    """The Content-Type of a servable asset, or None when the name is not one we serve."""
    if not ASSET_NAME.fullmatch(name) or ".." in name:
        return None
    dot = name.rfind(".")
    if dot <= 0:
        return "text/plain; charset=utf-8" if name.upper().startswith("LICENSE") else None
    return CONTENT_TYPES.get(name[dot:].lower())


def websocket_origin(ws_url: str | None) -> str | None:
    """scheme://host[:port] of the WebSocket URL (what CSP's connect-src names), or None."""
    if not ws_url:
        return None
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def http_origin(url: str | None) -> str | None:
    """scheme://host[:port] of an http(s) URL (the Cognito endpoint CSP's connect-src names), or None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def cognito_endpoint(configured: str | None, region: str, scheme: str, host: str) -> str:
    """The Cognito API URL the page signs people in against: OIDC_ENDPOINT (a path is on the console's own
    origin: the local stack's), else Cognito's regional endpoint."""
    if configured and configured.startswith("/"):
        return f"{scheme}://{host}{configured}"
    return configured or f"https://cognito-idp.{region}.amazonaws.com/"


def content_security_policy(ws_url: str | None, oidc_endpoint: str | None = None) -> str:
    """No inline script or style, nothing from another origin but the WebSocket and Cognito, no framing."""
    connect = " ".join(dict.fromkeys(filter(None, ["'self'", websocket_origin(ws_url), http_origin(oidc_endpoint)])))
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        f"connect-src {connect}",
        "img-src 'self' data:",
        "font-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ])


def security_headers(ws_url: str | None, oidc_endpoint: str | None = None) -> dict[str, str]:
    """The headers of every /console* response (the contract's Console section)."""
    return {
        "Content-Security-Policy": content_security_policy(ws_url, oidc_endpoint),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def base_path(request_path: str) -> str:
    """What precedes /console in the path the client used: the stage ("/api") on API Gateway, "" locally."""
    index = request_path.rfind("/console")
    return request_path[:index].rstrip("/") if index > 0 else ""


def rest_url(scheme: str, host: str, request_path: str) -> str:
    return f"{scheme}://{host}{base_path(request_path)}"


def websocket_url(configured: str | None, on_lambda: bool, host: str, scheme: str) -> str | None:
    """The deployed WebSocket API's URL when configured; locally the same port's /ws; None if unknown on AWS."""
    if configured:
        return configured.rstrip("/")
    if on_lambda:
        return None
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}/ws"
