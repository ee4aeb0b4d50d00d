"""core/tokens.py without AWS or HTTP: the key cache's refetch rule, which keys it keeps, what looks like a JWT."""
from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey

from chalicelib.core import tokens

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_an_unknown_kid_refetches_at_most_once_a_minute():
    fetched = []
    clock = Clock()
    cache = tokens.KeyCache(fetch=lambda url: fetched.append(url) or {"keys": [KEY.as_dict(private=False)]}, clock=clock)
    assert cache.key("u", "k1") is not None and len(fetched) == 1
    for _ in range(3):
        with pytest.raises(tokens.TokenRefused):
            cache.key("u", "nope")
    assert len(fetched) == 1
    clock.now += tokens.JWKS_REFRESH_SECONDS
    for _ in range(3):
        with pytest.raises(tokens.TokenRefused):
            cache.key("u", "nope")
    assert len(fetched) == 2


def test_small_rsa_keys_other_key_types_and_encryption_keys_are_not_kept():
    small = RSAKey.generate_key(1024, parameters={"kid": "small"}, private=True, auto_kid=False)
    enc = dict(RSAKey.generate_key(2048).as_dict(private=False), kid="enc", use="enc")
    oct_key = {"kty": "oct", "kid": "oct", "k": "c2VjcmV0"}
    document = {"keys": [small.as_dict(private=False), enc, oct_key, "garbage", KEY.as_dict(private=False)]}
    cache = tokens.KeyCache(fetch=lambda url: document, clock=Clock())
    assert cache.key("u", "k1") is not None
    for kid in ("small", "enc", "oct"):
        with pytest.raises(tokens.TokenRefused):
            cache.key("u", kid)


def test_an_unreachable_issuer_refuses_tokens_instead_of_failing():
    def down(url):
        raise OSError("connection refused")

    cache = tokens.KeyCache(fetch=down, clock=Clock())
    with pytest.raises(tokens.TokenRefused):
        cache.key("u", "k1")


@pytest.mark.parametrize("value,expected", [
    ("eyJhbGciOiJSUzI1NiJ9.e30.c2ln", True),
    ("cpk.01ARZ3NDEKTSV4RRFFQ69G5FAV.secret", False),
    ("eyJub3Rqc29u.a.b", False),          # not JSON
    ("eyJhbGciOiJSUzI1NiJ9.e30", False),  # two parts
    ("root-admin-key", False),
])
def test_what_looks_like_a_jwt(value, expected):
    assert tokens.looks_like_jwt(value) is expected
