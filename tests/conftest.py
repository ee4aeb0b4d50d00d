"""Shared fixtures: one moto account per test session, the stack deployed from
infra/template.yaml, the Chalice app imported after that (it names its queues
and stream at import). Tests isolate themselves by creating their own
organization, exactly as tenants are isolated in production."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from tests.support.asyncapi_events import EventNotInContract, check_event, check_message

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_DEV", "false")
os.environ["STACK_NAME"] = "cp-test"
os.environ.pop("AWS_ENDPOINT_URL", None)
# Every response body is checked against the model its route declares (core/response_check.py).
os.environ["CHECK_RESPONSES"] = "1"


@pytest.fixture(scope="session", autouse=True)
def _events_checked_where_they_are_built():
    """Every event the app builds in this process is checked against the WebSocket contract
    (chalicelib/events/catalog.py) at its emit site; see chalicelib/core/outbox.py."""
    from chalicelib.core import outbox
    from chalicelib.events import catalog

    outbox.event_check = catalog.validate
    yield
    outbox.event_check = None


@pytest.fixture(scope="session")
def _moto_account():
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def aws(_moto_account):
    """A fresh AWS account and stack for each test module.

    moto answers a Query by walking the table, so one module's bulk data (the
    10,000-entry log tests) would slow every module after it; a reset per
    module keeps each file as fast alone as in the suite, and isolated.
    """
    from chalicelib.aws import clients
    from chalicelib.core import config, idempotency
    from infra.stack import deploy, environment

    _moto_account.reset()
    outputs = deploy("cp-test")
    os.environ.update(environment(outputs))
    config.settings.cache_clear()
    clients.reset()
    idempotency.reset()
    yield outputs


@pytest.fixture(scope="session")
def _app(_moto_account):
    from infra.stack import deploy, environment

    # app.py wires the outbox stream ARN at import, as a Lambda does: the stack must exist first.
    os.environ.update(environment(deploy("cp-test")))
    from chalicelib.core.config import settings

    settings.cache_clear()  # a unit test in this process may have read settings before the stack existed
    import app as module

    return module


@pytest.fixture(scope="module")
def app_module(aws, _app):
    """The app, imported once per session (as a Lambda container imports it once), on this module's stack."""
    return _app


@pytest.fixture(scope="module")
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


class Outbox:
    """Reads the outbox table's stream as Lambda would and hands records to the real fan-out handler."""

    def __init__(self, app_module, arn: str):
        import boto3

        self.app_module = app_module
        self.streams = boto3.client("dynamodbstreams")
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        self.arn = arn
        self.iterators = {
            s["ShardId"]: self.streams.get_shard_iterator(StreamArn=arn, ShardId=s["ShardId"],
                                                          ShardIteratorType="LATEST")["ShardIterator"]
            for s in shards
        }

    def read(self) -> list[dict]:
        records = []
        for shard, iterator in list(self.iterators.items()):
            response = self.streams.get_records(ShardIterator=iterator)
            self.iterators[shard] = response["NextShardIterator"]
            for r in response["Records"]:
                records.append({**r, "eventSourceARN": self.arn, "awsRegion": "us-east-1",
                                "dynamodb": {**r["dynamodb"], "ApproximateCreationDateTime": 0,
                                             "SizeBytes": r["dynamodb"].get("SizeBytes", 1)}})
        return records

    def drain(self) -> list[dict]:
        """Run the fan-out over every new outbox record; return the events as {event, data, orgId, agentId}."""
        from chalicelib.aws.dynamo import deserialize_item

        records = self.read()
        if records:
            self.app_module.outbox_fanout({"Records": records}, None)
        events = []
        for r in records:
            image = deserialize_item(r["dynamodb"]["NewImage"])
            events.append({"event": image["event"], "data": json.loads(image["data"]),
                           "orgId": image["orgId"], "agentId": image.get("agentId")})
            check_event(image["event"], events[-1]["data"])  # as docs/asyncapi.json says it travels
        return events


@pytest.fixture
def outbox(app_module, aws):
    return Outbox(app_module, aws["OutboxStreamArn"])


class SentMessages:
    """Replaces the WebSocket management API: records posts; connections in `dead` answer 410.

    Every posted message is checked against docs/asyncapi.json; a mismatch is kept in `invalid`
    (a post runs on the fan-out's threads, which log exceptions rather than raise them) and
    fails the test when the fixture ends."""

    def __init__(self):
        self.by_connection: dict[str, list[dict]] = {}
        self.dead: set[str] = set()
        self.invalid: list[str] = []
        self.failed: list[str] = []

    def attempts(self, connection_id: str) -> int:
        """Posts to a dead connection (each answered 410)."""
        return self.failed.count(connection_id)

    def post(self, endpoint: str, connection_id: str, data: bytes) -> bool:
        if connection_id in self.dead:
            self.failed.append(connection_id)
            return False
        message = json.loads(data)
        try:
            check_message(message)
        except EventNotInContract as wrong:
            self.invalid.append(str(wrong))
        self.by_connection.setdefault(connection_id, []).append(message)
        return True


@pytest.fixture
def sent(monkeypatch):
    from chalicelib.aws import websocket

    recorder = SentMessages()
    monkeypatch.setattr(websocket, "post", recorder.post)
    yield recorder
    assert not recorder.invalid, "posted messages that are not events of docs/asyncapi.json:\n" + "\n".join(
        recorder.invalid)


def seed_agent(org_id: str, agent_id: str) -> str:
    """An agent item with a chosen id (an agent key may only name an agent the org has: issue 9)."""
    from chalicelib.agents import store as agents_store
    from chalicelib.agents.models import Agent
    from chalicelib.aws import dynamo as _dynamo

    try:
        _dynamo.put(agents_store.agent_put(org_id, Agent(agent_id=agent_id, name=agent_id, pools=[],
                                                         status=agents_store.ACTIVE,
                                                         created_at="2026-01-01T00:00:00.000Z",
                                                         updated_at="2026-01-01T00:00:00.000Z")))
    except _dynamo.ConditionFailed:
        pass
    return agent_id


def key_of(http, org: dict, scope: str, agent_id: str | None = None) -> str:
    """A new key of `scope` in `org`; an agent key's agent is seeded first (keys name agents the org has)."""
    if agent_id:
        seed_agent(org["orgId"], agent_id)
    body = {"name": scope, "scope": scope, **({"agentId": agent_id} if agent_id else {})}
    r = http.post("/keys", org["adminKey"], body)
    assert r.status == 201, r.json
    return r.json["apiKey"]


@pytest.fixture(autouse=True)
def _caplog_sees_chalicelib(caplog):
    """chalicelib's loggers write through the Powertools handler only, not to the root logger
    (core/observability.py: one set-up for every line); caplog listens on the root, so it is
    handed to the "chalicelib" logger too."""
    import logging

    modules = logging.getLogger("chalicelib")
    modules.addHandler(caplog.handler)
    yield
    modules.removeHandler(caplog.handler)
