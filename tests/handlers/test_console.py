"""GET /console, its files and /console/config.json through the app (Chalice test client): headers,
URLs, refusals; and what the shipped files promise: vendored libraries as pinned, a page weight
within budget, no markup built from strings in the console's own code."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "chalicelib" / "console" / "static"
PAGE_BUDGET_BYTES = 350 * 1024


def _get(http, path: str, headers: dict | None = None):
    response = http.raw.get(path, headers=headers or {})
    return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.body


def _assert_security_headers(headers: dict) -> None:
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"


def test_the_page_needs_no_key_and_names_its_files_absolutely(http):
    status, headers, body = _get(http, "/console", {"host": "127.0.0.1:8000"})
    assert status == 200 and headers["content-type"].startswith("text/html")
    _assert_security_headers(headers)
    page = body.decode()
    assert "%BASE%" not in page and 'src="/console/app.js"' in page
    assert "<script>" not in page and "style=" not in page           # nothing inline for the CSP to refuse


def test_config_gives_the_rest_and_websocket_urls_of_the_request(http):
    status, headers, body = _get(http, "/console/config.json", {"host": "127.0.0.1:8123"})
    import json

    from chalicelib.core.config import settings

    assert status == 200
    pool = {"issuer": settings().oidc_issuer, "clientId": settings().oidc_audience, "region": "us-east-1",
            "endpoint": "https://cognito-idp.us-east-1.amazonaws.com/"}  # the stack's pool (infra/template.yaml)
    assert json.loads(body) == {"restUrl": "http://127.0.0.1:8123", "wsUrl": "ws://127.0.0.1:8123/ws", "oidc": pool}
    assert ("connect-src 'self' ws://127.0.0.1:8123 https://cognito-idp.us-east-1.amazonaws.com"
            in headers["content-security-policy"])
    # Behind TLS; and a Host that is not a plain host[:port] is never echoed into URLs or the policy.
    _, _, body = _get(http, "/console/config.json", {"host": "console.example", "x-forwarded-proto": "https"})
    assert json.loads(body)["wsUrl"] == "wss://console.example/ws"
    _, headers, body = _get(http, "/console/config.json", {"host": "evil; script-src *"})
    assert "evil" not in body.decode() and "evil" not in headers["content-security-policy"]


def test_config_oidc_is_null_without_oidc_and_a_path_endpoint_is_on_the_consoles_origin(http, monkeypatch):
    import dataclasses
    import json

    from chalicelib.console import service
    from chalicelib.core import config

    off = dataclasses.replace(config.settings(), oidc_issuer=None, oidc_audience=None)
    monkeypatch.setattr(service, "settings", lambda: off)
    _, headers, body = _get(http, "/console/config.json", {"host": "127.0.0.1:8123"})
    assert json.loads(body)["oidc"] is None and "cognito" not in headers["content-security-policy"]
    local = dataclasses.replace(config.settings(), oidc_endpoint="/_cognito/")
    monkeypatch.setattr(service, "settings", lambda: local)
    _, headers, body = _get(http, "/console/config.json", {"host": "127.0.0.1:8123"})
    assert json.loads(body)["oidc"]["endpoint"] == "http://127.0.0.1:8123/_cognito/"


def test_config_names_the_deployed_websocket_api_when_the_stack_set_it(http, monkeypatch):
    import dataclasses

    from chalicelib.console import service
    from chalicelib.core import config

    configured = dataclasses.replace(config.settings(), console_websocket_url="wss://w1.execute-api.eu-west-1.amazonaws.com/ws")
    monkeypatch.setattr(service, "settings", lambda: configured)
    _, headers, body = _get(http, "/console/config.json", {"host": "r1.execute-api.eu-west-1.amazonaws.com"})
    assert b'"wsUrl":"wss://w1.execute-api.eu-west-1.amazonaws.com/ws"' in body
    assert "connect-src 'self' wss://w1.execute-api.eu-west-1.amazonaws.com" in headers["content-security-policy"]


@pytest.mark.parametrize("path", ["/console/nope.js", "/console/app.py", "/console/..%2Frules.py",
                                  "/console/vendor/VERSIONS", "/console/vendor/..%2F..%2Froutes.py"])
def test_anything_but_a_shipped_file_is_404_in_the_contract_shape(http, path):
    status, headers, body = _get(http, path)
    assert status == 404 and b'"NOT_FOUND"' in body
    _assert_security_headers(headers)


def test_every_file_is_served_with_its_type_and_the_headers(http):
    for file in sorted(STATIC.rglob("*")):
        if not file.is_file():
            continue
        status, headers, body = _get(http, "/console/" + file.relative_to(STATIC).as_posix())
        assert status == 200, file
        _assert_security_headers(headers)
        assert body == file.read_bytes()


def test_vendored_libraries_are_the_pinned_files_with_their_licences():
    versions = (STATIC / "vendor" / "VERSIONS.txt").read_text()
    pinned = dict((name, digest) for digest, name in re.findall(r"^\s+([0-9a-f]{64})\s+(\S+)$", versions, re.MULTILINE))
    shipped = {f.name for f in (STATIC / "vendor").iterdir() if f.suffix in (".js", ".css")}
    assert set(pinned) == shipped
    for name, digest in pinned.items():
        assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest, name
        library = name.split("-")[0]
        assert list((STATIC / "vendor").glob(f"{library}-*.LICENSE.txt")), f"{name} has no licence beside it"


def test_the_page_weight_is_within_budget():
    loaded = [f for f in STATIC.rglob("*") if f.suffix in (".js", ".css", ".html")]
    assert sum(f.stat().st_size for f in loaded) <= PAGE_BUDGET_BYTES


def test_the_console_s_own_code_builds_no_markup_from_strings():
    forbidden = re.compile(r"\.innerHTML\s*=|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|"
                           r"setAttribute\(\s*['\"]style|\.style\.")
    for file in STATIC.glob("*.js"):
        for number, line in enumerate(file.read_text().splitlines(), 1):
            assert not forbidden.search(line), f"{file.name}:{number}: {line.strip()}"
