"""Shared fixtures: one moto account per test session, the stack deployed from
infra/template.yaml, the Chalice app imported after that (it names its queues
and stream at import). Tests isolate themselves by creating their own
organization, exactly as tenants are isolated in production."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ["STACK_NAME"] = "cp-test"
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture(scope="session")
def aws():
    from moto import mock_aws

    from chalicelib.aws import clients
    from chalicelib.core import config, idempotency
    from infra.stack import deploy, environment

    with mock_aws():
        outputs = deploy("cp-test")
        os.environ.update(environment(outputs))
        config.settings.cache_clear()
        clients.reset()
        idempotency.reset()
        yield outputs


@pytest.fixture(scope="session")
def app_module(aws):
    import app as module

    return module


@pytest.fixture(scope="session")
def root(app_module) -> dict:
    return app_module.local_seed()


@pytest.fixture
def http(app_module):
    from chalice.test import Client

    with Client(app_module.app) as client:
        yield Http(client.http)


@dataclass
class Result:
    status: int
    headers: dict
    json: object


class Http:
    """Chalice's test client with JSON in and out and a bearer key."""

    def __init__(self, raw):
        self.raw = raw

    def call(self, method: str, path: str, key: str | None = None, body=None, headers: dict | None = None,
             raw_body: bytes | None = None) -> Result:
        h = {"content-type": "application/json", **(headers or {})}
        if key:
            h["authorization"] = f"Bearer {key}"
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
        response = getattr(self.raw, method.lower())(path, headers=h, body=data)
        text = response.body.decode() if response.body else ""
        return Result(response.status_code, dict(response.headers), json.loads(text) if text else None)

    def get(self, path, key=None, **kw):
        return self.call("GET", path, key, **kw)

    def post(self, path, key=None, body=None, **kw):
        return self.call("POST", path, key, body, **kw)

    def put(self, path, key=None, body=None, **kw):
        return self.call("PUT", path, key, body, **kw)

    def delete(self, path, key=None, **kw):
        return self.call("DELETE", path, key, **kw)


@pytest.fixture
def org(http, root):
    """A fresh organization: its id and admin key."""
    r = http.post("/orgs", root["adminApiKey"], {"name": "test org"})
    assert r.status == 201, r.json
    return r.json
