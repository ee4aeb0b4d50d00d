"""AWS calls a request pays to authenticate: a person's JWT beside an API key (issue 21).

Run: .venv/bin/python bench/people_auth_calls.py   (in-process moto; a local JWKS endpoint over real HTTP)

Goal: a JWT adds no AWS call on a warm function. Both identities read one item (the key's, the
person's: how a revoked key or a disabled person is refused on the next call); the JWKS is
fetched once per cold start (HTTP to the issuer, not an AWS call) and an unknown kid refetches at
most once a minute. A key's lastUsedAt is one UpdateItem on the first use of a minute, none after.
Also the CPU of each check (median of 200), beside the key's HMAC as the baseline.
"""
from __future__ import annotations

import json
import os
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import moto_stack, table


def jwks_server(keys: list) -> tuple[ThreadingHTTPServer, str, dict]:
    hits = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits["n"] += 1
            body = json.dumps({"keys": [k.as_dict(private=False) for k in keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/jwks.json", hits


def main() -> None:
    from chalice.test import Client
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "bench-1", "use": "sig"})
    server, url, hits = jwks_server([key])
    issuer, audience = "https://issuer.bench/pool", "bench-client"
    with moto_stack() as (app_module, counter, root):
        from chalicelib.core import auth, config, tokens

        os.environ.update(OIDC_ISSUER=issuer, OIDC_AUDIENCE=audience, OIDC_JWKS_URL=url)
        config.settings.cache_clear()
        tokens.reset()
        with Client(app_module.app) as client:
            def call(path, credential, method="get", body=None):
                headers = {"authorization": f"Bearer {credential}", "content-type": "application/json"}
                with counter.counting():
                    response = getattr(client.http, method)(path, headers=headers,
                                                            body=json.dumps(body) if body is not None else b"")
                assert response.status_code in (200, 201), (path, response.status_code, response.body)
                return json.loads(response.body), len(counter.calls), counter.summary()

            org = call("/orgs", root["adminApiKey"], "post", {"name": "bench"})[0]
            person = call("/users", org["adminKey"], "post", {"email": "bench@example.com", "scope": "admin"})[0]
            operator = call("/keys", org["adminKey"], "post", {"name": "op", "scope": "operator"})[0]["apiKey"]
            now = int(time.time())
            claims = {"iss": issuer, "sub": person["userId"], "client_id": audience, "token_use": "access",
                      "iat": now, "exp": now + 3600, "cognito:groups": [f"org:{org['orgId']}:admin"]}
            token = jwt.encode({"alg": "RS256", "kid": "bench-1"}, claims, key)

            rows = []
            baseline = call("/agents", operator)  # first use of the minute: lastUsedAt written
            rows.append(("API key, first use in a minute", baseline[1], "-", baseline[2]))
            warm_key = call("/agents", operator)
            rows.append(("API key, again (baseline)", warm_key[1], "-", warm_key[2]))
            fetched = hits["n"]
            cold = call("/agents", token)
            rows.append(("JWT, cold (JWKS fetched)", cold[1], hits["n"] - fetched, cold[2]))
            fetched = hits["n"]
            warm = call("/agents", token)
            rows.append(("JWT, warm", warm[1], hits["n"] - fetched, warm[2]))
            print(table(rows, ("request GET /agents", "AWS calls", "JWKS fetches", "calls")))
            extra = warm[1] - warm_key[1]
            print(f"\nAWS calls a warm JWT adds beside an API key: {extra} (goal 0)")

            def median_us(fn, n=200):
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    fn()
                    samples.append((time.perf_counter() - started) * 1e6)
                return statistics.median(samples)

            hmac_us = median_us(lambda: auth.secret_matches(None, operator))
            verify_us = median_us(lambda: tokens.verify(token))
            print(table([("API key: HMAC + compare (baseline)", f"{hmac_us:.1f}"),
                         ("JWT: header, cached key, RS256 verify, claims", f"{verify_us:.1f}")],
                        ("CPU per check", "median µs")))
            assert extra == 0, "a warm JWT must add no AWS call"
    server.shutdown()


if __name__ == "__main__":
    main()
