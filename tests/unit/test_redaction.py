"""Secret redaction (chalicelib/core/redaction.py, pure): one case per shape, and what must stay readable."""
import pytest

from chalicelib.core.redaction import redact
from tests.support import hostile


@pytest.mark.parametrize("shape", sorted(hostile.SECRETS))
def test_every_shape_is_redacted(shape):
    text, fragments = hostile.SECRETS[shape]
    out = redact(text)
    assert [f for f in fragments if f in out] == [] and "[redacted:" in out
    assert redact(out) == out  # idempotent: redacting twice (store, then GitHub exit) changes nothing


@pytest.mark.parametrize("text, expected", [
    ("key AKIAIOSFODNN7EXAMPLE", "key [redacted:aws-access-key-id]"),
    ("aws_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'", "aws_secret_access_key = '[redacted:aws-secret-key]'"),
    ('"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', '"SecretAccessKey": "[redacted:aws-secret-key]"'),
    ("cpk.01JD8ZQ3K4M5N6P7Q8R9S0T1V2.c2VjcmV0LXBhcnQtb2YtdGhlLWtleQ", "cpk.01JD8ZQ3K4M5N6P7Q8R9S0T1V2.[redacted:api-key]"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz'", "curl -H 'Authorization: Basic [redacted:bearer]'"),
    ("x-api-key: cpk-like-but-not", "x-api-key: [redacted:value]"),
    ("DB_PASSWORD=pw AWS_SESSION_TOKEN=IQoJb3JpZ2lu", "DB_PASSWORD=[redacted:value] AWS_SESSION_TOKEN=[redacted:value]"),
    ("{'client_secret': 'abc', 'user': 'bob'}", "{'client_secret': '[redacted:value]', 'user': 'bob'}"),
    ("-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBYr\\n-----END EC PRIVATE KEY-----", "[redacted:private-key]"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "[redacted:private-key]"),
])
def test_forms(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "commit 3f786850e387550fdab836ed7e6dc881de23001b failed",         # a git SHA: lower-case hex
    "job 01JD8ZQ3K4M5N6P7Q8R9S0T1V2 failed after 3 attempts",          # a ULID
    'File "/var/task/chalicelib/jobs/service.py", line 120, in complete',
    "invalid token provided; Basic authentication failed; the password is too short",
    "KeyError: 'order-8812' at 10.0.3.17:443",
    "public key -----BEGIN PUBLIC KEY----- is fine",
])
def test_ordinary_text_stays(text):
    assert redact(text) == text


def test_a_key_cut_short_by_a_message_limit_is_still_redacted():
    pem = hostile.SECRETS["pem-block"][0]
    for cut in (60, 100, 150):
        assert "MIIEowIBAAKCAQEA" not in redact(pem[:cut])
