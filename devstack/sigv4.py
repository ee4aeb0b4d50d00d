"""SigV4 verification for the local management API (/@connections), as API Gateway does.

The stack's own credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the
ones its app signs with) are the only ones accepted: a request must carry an
`AWS4-HMAC-SHA256` Authorization header whose signature is recomputed from the
request as received (method, path, query, the signed headers, the body's
SHA-256), dated within 5 minutes. Anything else is 403, so nothing on the
public port can post a forged event to a socket.

The recomputation is botocore's SigV4 canonicalisation written out for a
request that is already on the wire, from the pieces the app's signer uses too
(chalicelib/aws/sigv4.py; tests/unit/test_sigv4_lean.py holds both equal to
botocore's `SigV4Auth` on many requests), because a fan-out
verifies one signature per post: building a botocore `AWSRequest` and running
`SigV4Auth.canonical_request` cost ~350 us per post, most of a post's CPU.
The signing key (4 HMACs) is derived once per date, region and service, and each
path's canonical form once (both cached in chalicelib/aws/sigv4.py).
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time

from chalicelib.aws import sigv4

MAX_SKEW_SECONDS = 300
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})$")
_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


class SigV4Verifier:
    def __init__(self, access_key: str, secret_key: str) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._last_date: tuple[str, int] = ("", 0)

    def verify(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> str | None:
        """None when the request is signed with the stack's credentials, else why not.

        `headers` are the request's, names lower-case; `raw_path` and `query` as on the wire.
        """
        match = _AUTH.match(headers.get("authorization", ""))
        if match is None:
            return "Missing Authentication Token"
        access_key, date, region, service, signed, signature = match.groups()
        if not hmac.compare_digest(access_key, self._access_key):
            return "The security token included in the request is invalid."
        timestamp = headers.get("x-amz-date", "")
        last_timestamp, last_epoch = self._last_date
        when = last_epoch if last_timestamp == timestamp else _epoch(timestamp)
        if when is None:
            return "the request has no valid X-Amz-Date"
        self._last_date = (timestamp, when)  # a fan-out's posts share the second they were signed in
        if timestamp[:8] != date or abs(time.time() - when) > MAX_SKEW_SECONDS:
            return "Signature expired"
        names = signed.split(";")
        if "host" not in names or any(name not in headers for name in names):
            return "a signed header is missing"
        canonical = "\n".join((
            method.upper(),
            sigv4.canonical_uri(raw_path),
            sigv4.canonical_query(query),
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in sorted(set(names))),
            ";".join(sorted(set(names))),
            headers["x-amz-content-sha256"] if "x-amz-content-sha256" in names else hashlib.sha256(body).hexdigest(),
        ))
        expected = sigv4.signature(sigv4.signing_key(self._secret_key, date, region, service), timestamp,
                                   f"{date}/{region}/{service}/aws4_request", canonical)
        if not hmac.compare_digest(expected, signature):
            return "The request signature we calculated does not match the signature you provided."
        return None


def _epoch(timestamp: str) -> int | None:
    """Seconds since the epoch of an X-Amz-Date (YYYYMMDDTHHMMSSZ), None if it is not one."""
    match = _AMZ_DATE.match(timestamp)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 62):
        return None
    try:
        return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (OverflowError, ValueError):
        return None

