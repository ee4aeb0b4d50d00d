"""The pieces of AWS Signature Version 4 (AWS4-HMAC-SHA256) as botocore's `SigV4Auth` computes them.

One definition for both ends of the fan-out's posts: the app's lean signer
(`websocket.ExecuteApiSigner`) and the local stack's verifier
(`devstack/sigv4.py`), each of which skips botocore's per-call machinery and
uses the caches here for what repeats post after post (the same connections'
paths, the day's signing key). tests/unit/test_sigv4_lean.py holds both equal
to botocore's `SigV4Auth`, byte for byte.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
from urllib.parse import quote

from botocore.utils import normalize_url_path


@functools.lru_cache(maxsize=20_000)  # every event goes to the same connections' paths
def canonical_uri(path: str) -> str:
    """The canonical URI of a request path: normalised, then quoted except '/' and '~'."""
    return quote(normalize_url_path(path), safe="/~")


def canonical_query(query: str) -> str:
    """The canonical query string of a URL's query, as botocore builds it: pairs split on '&'
    and '=', sorted, values as sent."""
    if not query:
        return ""
    return "&".join(f"{key}={value}" for key, value in sorted(pair.partition("=")[::2] for pair in query.split("&")))


@functools.lru_cache(maxsize=16)  # a key per day, region and service: a day rolls over, the old ones go
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The day's signing key (four HMACs), derived once."""
    key = f"AWS4{secret_key}".encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(key: bytes, timestamp: str, scope: str, canonical_request: str) -> str:
    """The hex signature of a canonical request; `scope` is date/region/service/aws4_request."""
    string_to_sign = (f"AWS4-HMAC-SHA256\n{timestamp}\n{scope}\n"
                      f"{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}")
    return hmac.digest(key, string_to_sign.encode("utf-8"), "sha256").hex()
