"""OpenID Connect access and ID tokens (Cognito's): verified here, trusted nowhere else.

Enabled when OIDC_ISSUER and OIDC_AUDIENCE are set (core/config.py). A token is accepted only if:

* its header names an algorithm of the allow-list (RS256), never the token's own choice alone:
  `none`, HS256 (a token "signed" with the issuer's public key as an HMAC secret) and every other
  algorithm are refused before any key is looked at, and the key is passed to joserfc with the same
  allow-list, so the library cannot be talked into another algorithm either;
* its `kid` names a key of the issuer's JWKS, fetched over HTTPS from `{issuer}/.well-known/jwks.json`
  (OIDC_JWKS_URL overrides it: the local stack's pool answers at the embedded AWS's URL, not at
  the issuer's) and cached for the life of the warm function. A `kid` not in the cache refetches the
  set, at most once a minute (JWKS_REFRESH_SECONDS): a flood of made-up kids costs one fetch a minute;
* its signature verifies with that key (RSA, at least 2048 bits);
* `iss` is the issuer; `token_use` is `access` (then `client_id` is the audience) or `id` (then
  `aud` is); `exp` and `nbf` hold with a 60 s skew (`iat` not in the future beyond it).

What comes out is `Claims`: the subject, the email when the token carries it, the groups
(`cognito:groups`) and the expiry. Organization and scope are not decided here (core/auth.py reads
them from the groups). Nothing in this module touches DynamoDB: on a warm function a token costs no
AWS call (bench/people_auth_calls.py).
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

from chalicelib.core.config import settings

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256",)
SKEW_SECONDS = 60
JWKS_REFRESH_SECONDS = 60
TOKEN_USES = ("access", "id")
MAX_TOKEN_LENGTH = 8192
MAX_JWKS_BYTES = 256 * 1024
MIN_RSA_BITS = 2048


class TokenRefused(Exception):
    """Why a token was refused (said in the 401 and the audit; never the token itself)."""

    def __init__(self, reason: str, subject: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.subject = subject


@dataclass(frozen=True)
class Claims:
    subject: str
    email: str | None
    groups: tuple[str, ...]
    expires_at: int
    token_use: str


def enabled() -> bool:
    s = settings()
    return bool(s.oidc_issuer and s.oidc_audience)


def looks_like_jwt(value: str) -> bool:
    """Three base64url parts whose first is a JSON object (an API key never is: `cpk.<id>.<secret>`)."""
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].startswith("eyJ"):
        return False
    try:
        return isinstance(_json_part(parts[0]), dict)
    except ValueError:
        return False


def _json_part(part: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(str(error)) from None


# --- the issuer's keys ------------------------------------------------------------------------

Fetch = Callable[[str], dict[str, Any]]


def _fetch_json(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the configured issuer's URL
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("JWKS document is not an object")
    return document


class KeyCache:
    """The issuer's RSA keys by kid, fetched on first use and again (at most once a minute) for a new kid."""

    def __init__(self, fetch: Fetch = _fetch_json, clock: Callable[[], float] = time.monotonic):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._url: str | None = None
        self._fetched_at: float | None = None
        self.fetches = 0  # how many times the JWKS was fetched (tests and bench read it)

    def key(self, url: str, kid: str) -> Any:
        with self._lock:
            if url != self._url:  # another issuer (a test switched settings): start over
                self._url, self._keys, self._fetched_at = url, {}, None
            if kid in self._keys:
                return self._keys[kid]
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= JWKS_REFRESH_SECONDS:
                self._fetched_at = now
                self._keys = self._load(url)
            if kid in self._keys:
                return self._keys[kid]
        raise TokenRefused("unknown signing key (kid)")

    def _load(self, url: str) -> dict[str, Any]:
        from joserfc import jwk

        self.fetches += 1
        try:
            document = self._fetch(url)
        except Exception as error:  # noqa: BLE001 - an unreachable issuer refuses tokens, it does not 500
            log.warning("JWKS fetch from %s failed: %s", url, error)
            return self._keys
        keys: dict[str, Any] = {}
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not isinstance(entry.get("kid"), str):
                continue
            if entry.get("use") not in (None, "sig"):
                continue
            try:
                key = jwk.RSAKey.import_key(entry)
            except Exception:  # noqa: BLE001 - one bad entry does not spoil the set
                continue
            if key.raw_value.key_size < MIN_RSA_BITS:
                continue
            keys[entry["kid"]] = key
        return keys


_cache = KeyCache()


def key_cache() -> KeyCache:
    return _cache


def reset() -> None:
    """Forget the cached keys (tests that switch issuers)."""
    global _cache
    _cache = KeyCache()


def jwks_url() -> str:
    s = settings()
    return s.oidc_jwks_url or f"{(s.oidc_issuer or '').rstrip('/')}/.well-known/jwks.json"


# --- verification -----------------------------------------------------------------------------

def verify(token: str, now: float | None = None) -> Claims:
    """The token's claims, or TokenRefused saying why (see the module doc for every check)."""
    from joserfc import jwt
    from joserfc.errors import JoseError

    s = settings()
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused("token too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRefused("not a signed JWT")
    try:
        header = _json_part(parts[0])
    except ValueError:
        raise TokenRefused("malformed token header") from None
    if not isinstance(header, dict):
        raise TokenRefused("malformed token header")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise TokenRefused(f"token algorithm not allowed (allowed: {', '.join(ALLOWED_ALGORITHMS)})")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise TokenRefused("token names no signing key (kid)")
    key = key_cache().key(jwks_url(), kid)
    try:
        decoded = jwt.decode(token, key, algorithms=list(ALLOWED_ALGORITHMS))
    except JoseError:
        raise TokenRefused("bad token signature") from None
    except ValueError:
        raise TokenRefused("malformed token") from None
    claims = decoded.claims
    subject = claims.get("sub") if isinstance(claims.get("sub"), str) else None
    at = int(now if now is not None else time.time())
    _check_times(claims, at, subject)
    if claims.get("iss") != s.oidc_issuer:
        raise TokenRefused("token from another issuer", subject)
    use = claims.get("token_use")
    if use not in TOKEN_USES:
        raise TokenRefused("token_use is neither access nor id", subject)
    audience = claims.get("client_id") if use == "access" else claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if s.oidc_audience not in audiences:
        raise TokenRefused("token for another audience", subject)
    if not subject:
        raise TokenRefused("token names no subject")
    groups = claims.get("cognito:groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise TokenRefused("malformed groups claim", subject)
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    return Claims(subject=subject, email=email, groups=tuple(groups), expires_at=int(claims["exp"]),
                  token_use=str(use))


def _check_times(claims: dict[str, Any], now: int, subject: str | None) -> None:
    def number(name: str) -> float | None:
        value = claims.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TokenRefused(f"malformed {name} claim", subject)
        return float(value)

    exp = number("exp")
    if exp is None:
        raise TokenRefused("token has no expiry", subject)
    if exp <= now - SKEW_SECONDS:
        raise TokenRefused("expired token", subject)
    nbf = number("nbf")
    if nbf is not None and nbf > now + SKEW_SECONDS:
        raise TokenRefused("token not yet valid", subject)
    iat = number("iat")
    if iat is not None and iat > now + SKEW_SECONDS:
        raise TokenRefused("token issued in the future", subject)
