"""The console's pure delivery rules: asset names, types, headers and the URLs config.json gives."""
from __future__ import annotations

import pytest

from chalicelib.console import rules


@pytest.mark.parametrize("name,expected", [
    ("app.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8"),
    ("index.html", "text/html; charset=utf-8"), ("uplot-1.6.32.LICENSE.txt", "text/plain; charset=utf-8"),
    ("..", None), ("..js", None), (".hidden.js", None), ("a/b.js", None), ("a%2Fb.js", None), ("app.py", None),
    ("x" * 200 + ".js", None), ("", None), ("app", None),
])
def test_only_plain_names_of_known_types_are_served(name, expected):
    assert rules.content_type(name) == expected


def test_the_policy_allows_nothing_inline_and_names_the_websocket_origin():
    csp = rules.content_security_policy("wss://abc.execute-api.eu-west-1.amazonaws.com/ws")
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self' wss://abc.execute-api.eu-west-1.amazonaws.com"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe" not in csp
    assert rules.content_security_policy(None).split("; ")[3] == "connect-src 'self'"
    assert rules.websocket_origin("javascript:alert(1)") is None
    headers = rules.security_headers(None)
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "no-referrer"


def test_urls_locally_and_on_api_gateway():
    assert rules.base_path("/console") == "" and rules.base_path("/console/") == ""
    assert rules.base_path("/api/console/config.json") == "/api"
    assert rules.rest_url("https", "abc.execute-api.eu-west-1.amazonaws.com", "/api/console/config.json") == \
        "https://abc.execute-api.eu-west-1.amazonaws.com/api"
    assert rules.rest_url("http", "127.0.0.1:8000", "/console/config.json") == "http://127.0.0.1:8000"
    assert rules.websocket_url(None, False, "127.0.0.1:8000", "http") == "ws://127.0.0.1:8000/ws"
    assert rules.websocket_url(None, False, "example.test", "https") == "wss://example.test/ws"
    assert rules.websocket_url("wss://w.execute-api.eu-west-1.amazonaws.com/ws/", True, "x", "https") == \
        "wss://w.execute-api.eu-west-1.amazonaws.com/ws"
    assert rules.websocket_url(None, True, "x", "https") is None     # on AWS without the stack's URL: no guess


def test_the_cognito_endpoint_and_its_origin_in_the_csp():
    assert rules.cognito_endpoint(None, "eu-west-1", "https", "r1.example") == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert rules.cognito_endpoint("/_cognito/", "us-east-1", "http", "127.0.0.1:8000") == "http://127.0.0.1:8000/_cognito/"
    assert rules.http_origin("https://cognito-idp.eu-west-1.amazonaws.com/") == "https://cognito-idp.eu-west-1.amazonaws.com"
    assert rules.http_origin("javascript:alert(1)") is None and rules.http_origin(None) is None
    csp = rules.content_security_policy("wss://w.example/ws", "https://cognito-idp.eu-west-1.amazonaws.com/")
    assert "connect-src 'self' wss://w.example https://cognito-idp.eu-west-1.amazonaws.com;" in csp
