"""Test issuers for people's tokens: our own RSA keys behind a real local JWKS endpoint, and
hostile tokens of every kind the issue names (wrong signature, alg none, HS256 with the public key, ...).

Tokens from moto's Cognito (real InitiateAuth answers) are made in the tests themselves.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

ISSUER = "https://issuer.test/pool-1"
AUDIENCE = "console-client-1"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """Signs tokens with its keys and serves their public halves at `jwks_url` over real HTTP."""

    def __init__(self, issuer: str = ISSUER, audience: str = AUDIENCE):
        self.issuer, self.audience = issuer, audience
        self.key = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})
        self.published = [self.key]
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                owner.requests += 1
                body = json.dumps({"keys": [k.as_dict(private=False) for k in owner.published]}).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def claims(self, sub: str, groups: list[str] | None, token_use: str = "access", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer, "sub": sub, "token_use": token_use, "iat": now,
                                  "exp": now + 3600, "jti": f"j-{now}-{sub}"}
        claims["client_id" if token_use == "access" else "aud"] = self.audience
        if groups is not None:
            claims["cognito:groups"] = groups
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, sub: str, groups: list[str] | None, key: RSAKey | None = None, kid: str = "key-1",
              **claims: Any) -> str:
        return jwt.encode({"alg": "RS256", "kid": kid}, self.claims(sub, groups, **claims), key or self.key)

    # --- hostile tokens -------------------------------------------------------------------------

    def unsigned(self, sub: str, groups: list[str]) -> str:
        """alg none, no signature."""
        header = b64(json.dumps({"alg": "none", "kid": "key-1"}).encode())
        return f"{header}.{b64(json.dumps(self.claims(sub, groups)).encode())}."

    def hs256_with_public_key(self, sub: str, groups: list[str]) -> str:
        """HS256 "signed" with the issuer's public key (PEM) as the HMAC secret: the classic confusion."""
        header = b64(json.dumps({"alg": "HS256", "kid": "key-1"}).encode())
        payload = b64(json.dumps(self.claims(sub, groups)).encode())
        secret = self.key.as_pem(private=False)
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64(signature)}"

    def wrong_signature(self, sub: str, groups: list[str]) -> str:
        """Signed by another key under the published kid."""
        other = RSAKey.generate_key(2048)
        return self.token(sub, groups, key=other)
