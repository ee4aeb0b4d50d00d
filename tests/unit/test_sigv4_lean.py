"""The fan-out's lean SigV4: the app's signer and devstack's verifier, each held equal to botocore's SigV4Auth.

Both sides skip botocore's per-call machinery for speed (one signature and one
verification per post); what they compute must stay byte-for-byte what AWS
(and botocore) compute, or posts on AWS would be refused.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalicelib.aws.websocket import ExecuteApiSigner
from devstack.sigv4 import SigV4Verifier

IDS = ["abc123=", "c=1/x", "Zx9_-.~", "ünï code", "a b+c%2F", "..", "."]
ENDPOINTS = ["https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
             "https://abc123.execute-api.us-east-1.amazonaws.com",
             "http://127.0.0.1:8123", "http://localhost:80/stage"]


def botocore_signed(credentials, region, method, url, body, timestamp, headers=None):
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    signer = SigV4Auth(credentials, "execute-api", region)
    when = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    original = pytest.MonkeyPatch()
    original.setattr("botocore.auth.get_current_datetime", lambda: when)
    try:
        signer.add_auth(request)
    finally:
        original.undo()
    return request


@pytest.mark.parametrize("token", [None, "session  token/with+chars="])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_signer_signs_as_botocore_does(endpoint, token):
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    signer = ExecuteApiSigner(credentials, "eu-west-1")
    now = time.time()
    timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    for connection_id in IDS:
        url = f"{endpoint}/@connections/{quote(connection_id, safe='')}"
        for body in (b"", b'{"event":"job:queued","data":{"jobId":"j"}}', "ü".encode() * 100):
            ours = signer.prepared("POST", url, body, now=now)
            theirs = botocore_signed(credentials, "eu-west-1", "POST", url, body, timestamp)
            assert ours.headers["Authorization"] == theirs.headers["Authorization"], (url, body)
            assert ours.headers["X-Amz-Date"] == theirs.headers["X-Amz-Date"]
            assert ours.headers.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")
            assert ours.url == url and ours.body == body and ours.headers["Content-Length"] == str(len(body))


def test_the_signer_reads_refreshed_credentials_and_a_new_day():
    class Rotating:
        def __init__(self):
            self.current = Credentials("AK1", "secret-1")

        def get_frozen_credentials(self):
            return self.current.get_frozen_credentials()

    rotating = Rotating()
    signer = ExecuteApiSigner(rotating, "us-east-1")
    url = "https://x.execute-api.us-east-1.amazonaws.com/prod/@connections/c"
    day = 1_800_000_000
    for now in (day, day + 86_400):
        for access, secret in (("AK1", "secret-1"), ("AK2", "secret-2")):
            rotating.current = Credentials(access, secret)
            ours = signer.prepared("POST", url, b"x", now=now)
            theirs = botocore_signed(rotating.current, "us-east-1", "POST", url, b"x",
                                     time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
            assert ours.headers["Authorization"] == theirs.headers["Authorization"]


def received(request):
    """What the devstack sees of a botocore-signed request: lower-case headers with host, raw path and query."""
    split = urlsplit(request.url)
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers.setdefault("host", split.netloc)
    return split.path, split.query, headers


def reference_verdict(credentials, method, path, query, headers, body):
    """The pre-lean verifier: botocore's SigV4Auth recomputed on the request as received."""
    import re

    match = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})$", headers.get("authorization", ""))
    if match is None or match.group(1) != credentials.access_key:
        return False
    _, _, region, service, signed, signature = match.groups()
    names = signed.split(";")
    if any(name not in headers for name in names):
        return False
    url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in names})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(credentials, service, region)
    return signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request) == signature


@pytest.mark.parametrize("query", ["", "b=2&a=1", "a=2&a=1&z", "x=%20y"])
def test_the_verifier_accepts_exactly_what_botocore_would(query):
    credentials = Credentials("testing", "testing")
    verifier = SigV4Verifier("testing", "testing")
    timestamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for endpoint in ("http://127.0.0.1:8123", "http://localhost:9/stage"):
        for connection_id in IDS:
            url = f"{endpoint}/@connections/{quote(connection_id, safe='')}" + (f"?{query}" if query else "")
            body = b'{"event":"e"}'
            extra = {"X-Custom": "  spaced   value ", "Content-Type": "application/json"}
            request = botocore_signed(credentials, "us-east-1", "POST", url, body, timestamp, headers=extra)
            path, raw_query, headers = received(request)
            assert verifier.verify("POST", path, raw_query, headers, body) is None, url
            assert reference_verdict(credentials, "POST", path, raw_query, headers, body)
            tampered = [
                ("POST", path, raw_query, headers, body + b" "),
                ("PUT", path, raw_query, headers, body),
                ("POST", path + "x", raw_query, headers, body),
                ("POST", path, raw_query + "&c=3", headers, body),
                ("POST", path, raw_query, {**headers, "x-custom": "other"}, body),
                ("POST", path, raw_query, {**headers, "host": "evil:1"}, body),
            ]
            for case in tampered:
                assert verifier.verify(*case) is not None, case[:3]
                assert not reference_verdict(credentials, *case)


def test_the_verifier_refuses_other_keys_old_dates_and_no_signature():
    verifier = SigV4Verifier("testing", "testing")
    url = "http://127.0.0.1:8123/@connections/c"
    now = time.time()
    fresh = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now - 600))
    cases = {
        "wrong secret": botocore_signed(Credentials("testing", "nope"), "us-east-1", "POST", url, b"x", fresh),
        "other key id": botocore_signed(Credentials("other", "testing"), "us-east-1", "POST", url, b"x", fresh),
        "ten minutes old": botocore_signed(Credentials("testing", "testing"), "us-east-1", "POST", url, b"x", stale),
    }
    for why, request in cases.items():
        path, query, headers = received(request)
        assert verifier.verify("POST", path, query, headers, b"x") is not None, why
    path, query, headers = received(botocore_signed(Credentials("testing", "testing"), "us-east-1", "POST", url,
                                                    b"x", fresh))
    assert verifier.verify("POST", path, query, headers, b"x") is None
    for broken in ({k: v for k, v in headers.items() if k != "authorization"},
                   {**headers, "x-amz-date": "20261302T250000Z"},
                   {**headers, "x-amz-date": fresh[:8] + "T999999Z"},
                   {k: v for k, v in headers.items() if k != "x-amz-date"}):
        assert verifier.verify("POST", path, query, broken, b"x") is not None
    # The body's hash is part of what is signed, not taken from a header the signer did not sign.
    assert verifier.verify("POST", path, query, {**headers, "x-amz-content-sha256": hashlib.sha256(b"y").hexdigest()},
                           b"y") is not None
