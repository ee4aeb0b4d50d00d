"""CORS for every route: one Chalice CORSConfig, from CORS_ALLOW_ORIGINS.

Chalice turns a route's CORSConfig into the Access-Control-* headers of its
responses and, in the packaged API, into an OPTIONS method that API Gateway
answers itself (a mock integration: no Lambda runs for a preflight; our
package step makes it 204, infra/package.py). The local stack answers the
same preflight with the same headers (devstack/asgi.py).

API Gateway's preflight is static, so one origin or `*` (the default): a
comma-separated list cannot be echoed per request and is refused at import
with a message naming the variable.
"""
from __future__ import annotations

from functools import lru_cache

from chalice import CORSConfig

from chalicelib.core.config import settings

# What browsers may send and read beyond the CORS-safelisted headers.
ALLOW_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
EXPOSE_HEADERS = ("Idempotent-Replayed", "Retry-After")
MAX_AGE_SECONDS = 600


@lru_cache(maxsize=1)
def route_config() -> CORSConfig | None:
    origin = settings().cors_allow_origins.strip()
    if not origin:
        return None  # CORS_ALLOW_ORIGINS="" turns CORS off
    if "," in origin or " " in origin:
        raise ValueError(f"CORS_ALLOW_ORIGINS must be one origin or '*' (API Gateway's preflight is static), "
                         f"got {origin!r}")
    return CORSConfig(allow_origin=origin, allow_headers=list(ALLOW_HEADERS), expose_headers=list(EXPOSE_HEADERS),
                      max_age=MAX_AGE_SECONDS)
