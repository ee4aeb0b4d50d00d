"""GET /console (the page), GET /console/{asset} and /console/vendor/{asset} (its files), GET /console/config.json.

The page and its files need no key (the page asks for one); config.json goes through the
`endpoint` pipeline (so it is in /openapi.json), the static files do not (they are not API
resources). Every answer carries the console's security headers (rules.security_headers).
"""
from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.console import rules
from chalicelib.core.api import Call, Reply, endpoint
from chalicelib.core.config import on_lambda
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.console import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp = Blueprint(__name__)
TAG = "Console"
STATIC = Path(__file__).resolve().parent / "static"
# The page and its files: served by this blueprint but not API resources, so not in /openapi.json.
STATIC_ROUTES = ("/console", "/console/{asset}", "/console/vendor/{asset}")
# A Host header is the client's to choose: only a plain host[:port] is echoed into URLs and the CSP.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


def _where(request: Any) -> "service.Where":
    """The scheme, host and path as the client saw them."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    host = headers.get("host", "")
    if not _HOST.fullmatch(host):
        host = "localhost"
    forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    scheme = forwarded if forwarded in ("http", "https") else ("https" if on_lambda() else "http")
    path = (request.context or {}).get("path") or request.path
    return service.Where(scheme, host, path)


def _config(request: Any) -> "models.ConsoleConfig":
    return service.config(_where(request))


@functools.lru_cache(maxsize=64)
def _read(relative: str) -> str | None:
    """A file of static/ by its relative name (names already checked by rules.content_type), or None."""
    target = (STATIC / relative).resolve()
    if STATIC not in target.parents or not target.is_file():
        return None
    return target.read_text(encoding="utf-8")


def _security(config: "models.ConsoleConfig") -> dict[str, str]:
    """The security headers; the CSP lets the page reach its WebSocket and the Cognito endpoint it signs in at."""
    return rules.security_headers(config.ws_url, config.oidc.endpoint if config.oidc else None)


def _not_found(headers: dict[str, str]) -> Response:
    body = {"error": {"code": "NOT_FOUND", "message": "no such console file"}}
    return Response(body=json.dumps(body), status_code=404, headers={**headers, "Content-Type": "application/json"})


def _asset(relative: str, name: str) -> Response:
    config = _config(bp.current_request)
    headers = _security(config)
    kind = rules.content_type(name)
    text = _read(relative) if kind else None
    if text is None or kind is None:
        return _not_found(headers)
    return Response(body=text, status_code=200, headers={**headers, "Content-Type": kind})


@bp.route("/console", methods=["GET"])
def console_page() -> Response:
    where = _where(bp.current_request)
    config = service.config(where)
    page = _read("index.html") or ""
    # Absolute asset paths (the stage prefix on API Gateway): right with or without a trailing slash.
    page = page.replace("%BASE%", html.escape(rules.base_path(where.path) + "/console", quote=True))
    return Response(body=page, status_code=200,
                    headers={**_security(config), "Content-Type": rules.CONTENT_TYPES[".html"]})


@bp.route("/console/{asset}", methods=["GET"])
def console_asset(asset: str) -> Response:
    return _asset(asset, asset)


@bp.route("/console/vendor/{asset}", methods=["GET"])
def console_vendor_asset(asset: str) -> Response:
    return _asset(f"vendor/{asset}", asset)


@endpoint(bp, "/console/config.json", "GET", scope=None, response="ConsoleConfig", tag=TAG,
          summary="Where the console finds the API: {restUrl, wsUrl, oidc} (no auth; wsUrl carries no token)")
def console_config(call: Call) -> Reply:
    config = _config(bp.current_request)
    return Reply(config, headers=_security(config))
