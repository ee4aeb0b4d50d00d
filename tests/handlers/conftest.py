"""Fixtures and helpers shared by the agents and jobs handler tests (no tests here).

`fleet`: a fresh org with an operator key and helpers to register agents, queue,
poll, progress and complete jobs through the app (Chalice test client on moto).
`clock`: moves the app's clock (chalicelib.core.clock.now) so lease tests do not sleep.
`events`: the outbox events of an org, read straight from the outbox table.
`atomic_aws`: in-process moto checks a condition and then writes without a lock, so two threads
can both pass the same condition; real DynamoDB is atomic per request. This restores that (one
AWS request at a time, as the local stack does for DynamoDB); the threads still interleave
between requests (read, decide, conditional write), which is where the races under test live.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass, field

import pytest

from tests.support.asyncapi_events import check_event

GITHUB_SETTINGS = ("GITHUB_TOKEN", "GITHUB_REPO", "GITHUB_API_URL")


@contextlib.contextmanager
def configured_github(token: str):
    """The fake GitHub (tests/fakes/github_server.py) as the app's GitHub for the block: its token,
    repository and URL in the settings, the previous settings back afterwards; it must have seen no
    request GitHub would refuse."""
    from chalicelib.core import config
    from tests.fakes.github_server import FakeGitHub

    with FakeGitHub(token=token) as fake:
        saved = {k: os.environ.get(k) for k in GITHUB_SETTINGS}
        os.environ.update(GITHUB_TOKEN=fake.token, GITHUB_REPO=fake.repo_full, GITHUB_API_URL=fake.url)
        config.settings.cache_clear()
        try:
            yield fake
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            config.settings.cache_clear()
    assert fake.violations == []


@dataclass
class Fleet:
    http: object
    org: dict
    operator: str
    agents: dict = field(default_factory=dict)  # agentId -> apiKey

    def register(self, name: str = "a", pools=(), **extra) -> tuple[str, str]:
        r = self.http.post("/agents", self.operator, {"name": name, "pools": list(pools), **extra})
        assert r.status == 201, r.json
        self.agents[r.json["agentId"]] = r.json["apiKey"]
        return r.json["agentId"], r.json["apiKey"]

    def key(self, agent_id: str) -> str:
        return self.agents[agent_id]

    def create(self, expect: int = 201, **body) -> dict:
        body.setdefault("type", "test")
        body.setdefault("payload", {})
        r = self.http.post("/jobs", self.operator, body)
        assert r.status == expect, r.json
        return r.json

    def poll(self, agent_id: str, max: int = 1, expect: int = 200, key: str | None = None) -> dict:
        r = self.http.get(f"/jobs/poll?agentId={agent_id}&max={max}", key or self.key(agent_id))
        assert r.status == expect, r.json
        return r.json

    def progress(self, agent_id: str, job: dict, percent: float = 50, message: str | None = None,
                 key: str | None = None):
        body = {"jobId": job["jobId"], "runId": job["runId"], "agentId": agent_id, "percent": percent}
        if message is not None:
            body["message"] = message
        return self.http.post("/jobs/progress", key or self.key(agent_id), body)

    def complete(self, agent_id: str, job: dict, status: str = "COMPLETED", key: str | None = None, **extra):
        body = {"jobId": job["jobId"], "runId": job["runId"], "agentId": agent_id, "status": status, **extra}
        return self.http.post("/jobs/complete", key or self.key(agent_id), body)

    def job(self, job_id: str) -> dict:
        r = self.http.get(f"/jobs/{job_id}", self.operator)
        assert r.status == 200, r.json
        return r.json


@pytest.fixture
def fleet(http, org) -> Fleet:
    r = http.post("/keys", org["adminKey"], {"name": "ops", "scope": "operator"})
    assert r.status == 201, r.json
    return Fleet(http, org, r.json["apiKey"])


class Clock:
    """The app's clock, frozen: it moves only by `shift`, so lease arithmetic is exact however slow the run."""

    def __init__(self):
        self.at = time.time()

    def shift(self, seconds: float) -> None:
        self.at += seconds

    def now(self) -> float:
        return self.at


@pytest.fixture
def clock(monkeypatch) -> Clock:
    from chalicelib.core import clock as app_clock

    fake = Clock()
    monkeypatch.setattr(app_clock, "now", fake.now)
    return fake


class Events:
    def __init__(self, org_id: str):
        self.org_id = org_id

    def all(self) -> list[dict]:
        from chalicelib.aws import clients, dynamo
        from chalicelib.core.config import settings

        items, start = [], None
        while True:
            args = {"TableName": settings().outbox_table, "FilterExpression": "orgId = :o",
                    "ExpressionAttributeValues": {":o": {"S": self.org_id}}}
            if start:
                args["ExclusiveStartKey"] = start
            page = clients.client("dynamodb").scan(**args)
            items += [dynamo.deserialize_item(i) for i in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        items.sort(key=lambda i: i["id"])
        events = [{"event": i["event"], "data": json.loads(i["data"]), "agentId": i.get("agentId")} for i in items]
        for event in events:
            check_event(event["event"], event["data"])  # as docs/asyncapi.json says it travels
        return events

    def of(self, job_id: str) -> list[dict]:
        return [e for e in self.all() if e["data"].get("jobId") == job_id]

    def names(self, job_id: str) -> list[str]:
        return [e["event"] for e in self.of(job_id)]


@pytest.fixture
def events(fleet) -> Events:
    return Events(fleet.org["orgId"])


@pytest.fixture
def sent_checks(monkeypatch) -> list:
    """Every lease-check message the app sends: (body, delay_seconds). Still sent to SQS as well."""
    from chalicelib.aws import queues

    sent: list = []
    real = queues.send_many

    def spy(url, bodies):
        sent.extend(bodies)
        return real(url, bodies)

    monkeypatch.setattr(queues, "send_many", spy)
    return sent


class _Locked:
    """An AWS client whose calls take one lock: one request at a time."""

    def __init__(self, client, lock):
        self._client, self._lock = client, lock

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)
        return call


@pytest.fixture
def atomic_aws(monkeypatch):
    """One AWS request at a time, and a failed transaction leaves no stream records behind
    (plain moto rolls items back but keeps their stream records: phantom outbox events;
    the local stack's fast_moto rolls both back, as DynamoDB never writes them)."""
    from chalicelib.aws import clients
    from devstack import fast_moto

    lock = threading.RLock()
    real = clients.client
    monkeypatch.setattr(clients, "client", lambda *a, **kw: _Locked(real(*a, **kw), lock))
    fast_moto.patch_transactions()
    yield
    fast_moto.unpatch()
