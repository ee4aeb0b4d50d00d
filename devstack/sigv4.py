"""SigV4 verification for the local management API (/@connections), as API Gateway does.

The stack's own credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the
ones its app signs with) are the only ones accepted: a request must carry an
`AWS4-HMAC-SHA256` Authorization header whose signature botocore's own signer
recomputes from the request as received (method, path, query, the signed
headers, the body's SHA-256), dated within 5 minutes. Anything else is 403,
so nothing on the public port can post a forged event to a socket.
"""
from __future__ import annotations

import hmac
import re
from datetime import datetime, timezone

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_SKEW_SECONDS = 300
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})$")


class SigV4Verifier:
    def __init__(self, access_key: str, secret_key: str) -> None:
        self._credentials = Credentials(access_key, secret_key)

    def verify(self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes) -> str | None:
        """None when the request is signed with the stack's credentials, else why not."""
        match = _AUTH.match(headers.get("authorization", ""))
        if match is None:
            return "Missing Authentication Token"
        access_key, date, region, service, signed, signature = match.groups()
        if not hmac.compare_digest(access_key, self._credentials.access_key):
            return "The security token included in the request is invalid."
        timestamp = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return "the request has no valid X-Amz-Date"
        if timestamp[:8] != date or abs((datetime.now(timezone.utc) - when).total_seconds()) > MAX_SKEW_SECONDS:
            return "Signature expired"
        names = signed.split(";")
        if "host" not in names or any(name not in headers for name in names):
            return "a signed header is missing"
        url = f"http://{headers['host']}{raw_path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in names})
        request.context["timestamp"] = timestamp
        signer = SigV4Auth(self._credentials, service, region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signature):
            return "The request signature we calculated does not match the signature you provided."
        return None
