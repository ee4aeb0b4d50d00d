"""10,000 entries on one instance: every filter combination against a reference filter.

The entries go in once per module through the real push endpoint (20 batches of
500). The reference is computed independently: all stored items are read raw
from the table (checked against what was pushed), sorted by (timestamp, id) and
filtered in Python with datetime arithmetic. Each GET must return exactly the
reference's ids, with one DynamoDB Query whose ScannedCount (items read) equals
the page it returned: cost follows the page, not the 10,000.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tests.conftest import Http

N = 10_000
LEVELS = ["INFO", "WARN", "ERROR", "DEBUG", "TRACE"]
WEIGHTS = [60, 12, 6, 20, 2]  # TRACE is rare: ~200 entries
BASE = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)


def parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Stored:
    id: str
    timestamp: str
    level: str
    message: str

    @property
    def moment(self) -> datetime:
        return parse(self.timestamp)


class QueryMeter:
    """Counts DynamoDB Query calls and the items each read (ScannedCount), via botocore events."""

    def __init__(self):
        self.queries: list[tuple[int, int]] = []

    def __call__(self, parsed, **kwargs):
        self.queries.append((parsed.get("ScannedCount", 0), parsed.get("Count", 0)))


@pytest.fixture(scope="module")
def log10k(app_module, root):
    from chalice.test import Client

    rng = random.Random(20261122)
    # ~2,500 distinct milliseconds over one day: many entries share a timestamp.
    stamps = sorted(BASE + timedelta(milliseconds=rng.randrange(86_400_000)) for _ in range(2_500))
    pushed = []
    for i in range(N):
        entry = {"timestamp": iso(rng.choice(stamps)), "level": rng.choices(LEVELS, WEIGHTS)[0].lower(),
                 "message": f"e{i:05d}"}
        if i % 7 == 0:
            entry["fields"] = {"i": i}
        pushed.append(entry)
    with Client(app_module.app) as client:
        http = Http(client.http)
        org = http.post("/orgs", root["adminApiKey"], {"name": "logs 10k"}).json
        agent = http.post("/agents", org["adminKey"], {"name": "agent-10k"}).json
        iid = http.post("/instances", org["adminKey"], {"agentId": agent["agentId"], "name": "big"}).json["instanceId"]
        for start in range(0, N, 500):
            r = http.post(f"/instances/{iid}/logs", agent["apiKey"], {"entries": pushed[start:start + 500]})
            assert r.status == 202 and r.json == {"accepted": 500}, r.json
        from chalicelib.core.config import settings as cfg
        from chalicelib.logs.store import partition

        table = boto3.resource("dynamodb").Table(cfg().main_table)
        raw, kwargs = [], {"KeyConditionExpression": "PK = :pk",
                           "ExpressionAttributeValues": {":pk": partition(org["orgId"], iid)}}
        while True:
            page = table.query(**kwargs)
            raw += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        stored = sorted((Stored(i["id"], i["timestamp"], i["level"], i["message"]) for i in raw),
                        key=lambda e: (e.moment, e.id))
        # What is stored is exactly what was pushed (levels upper-cased, times normalized).
        by_message = {e.message: e for e in stored}
        assert len(stored) == N == len(by_message)
        for p in pushed:
            s = by_message[p["message"]]
            assert s.level == p["level"].upper() and s.moment == parse(p["timestamp"])
        meter = QueryMeter()
        from chalicelib.aws import clients
        events = clients.client("dynamodb").meta.events
        events.register("after-call.dynamodb.Query", meter)
        try:
            yield {"http": http, "key": agent["apiKey"], "iid": iid, "stored": stored, "meter": meter}
        finally:
            events.unregister("after-call.dynamodb.Query", meter)


def reference(stored: list[Stored], limit: int, since: str | None, level: str | None) -> list[str]:
    chosen = [e for e in stored if level is None or e.level == level.upper()]
    if since is None:
        return [e.id for e in chosen[-limit:]]
    if since.startswith("id:"):
        anchor = next(e for e in stored if e.id == since[3:])
        chosen = [e for e in chosen if (e.moment, e.id) > (anchor.moment, anchor.id)]
    else:
        bound = parse(since)
        chosen = [e for e in chosen if e.moment > bound]
    return [e.id for e in chosen[:limit]]


@st.composite
def sinces(draw, stored: list[Stored]):
    kind = draw(st.sampled_from(["none", "none", "existing", "nudged", "sub-ms", "offset", "id", "before", "after"]))
    if kind == "none":
        return None
    if kind == "before":
        return "2000-01-01T00:00:00Z"
    if kind == "after":
        return iso(BASE + timedelta(days=3))
    # Bias towards the end of the log, where short pages are interesting too.
    e = stored[draw(st.one_of(st.integers(0, N - 1), st.integers(N - 300, N - 1)))]
    if kind == "existing":
        return e.timestamp  # ties: several entries may share it
    if kind == "nudged":
        return iso(e.moment + timedelta(milliseconds=draw(st.sampled_from([-1, 1]))))
    if kind == "sub-ms":
        return iso(e.moment + timedelta(microseconds=draw(st.sampled_from([-500, 1, 999]))))
    if kind == "offset":
        return (e.moment + timedelta(hours=2)).astimezone(timezone(timedelta(hours=2))).isoformat()
    return "id:" + e.id


def run(log10k, limit: int, since: str | None, level: str | None) -> None:
    params = {"limit": limit}
    if since is not None:
        params["since"] = since[3:] if since.startswith("id:") else since
    if level is not None:
        params["level"] = level
    meter = log10k["meter"]
    meter.queries.clear()
    r = log10k["http"].get(f"/instances/{log10k['iid']}/logs?{urlencode(params)}", log10k["key"])
    assert r.status == 200, r.json
    got = [e["id"] for e in r.json]
    assert got == reference(log10k["stored"], limit, since, level), params
    assert all(e["instanceId"] == log10k["iid"] for e in r.json)
    # One Query, and it read exactly the items it returned.
    assert len(meter.queries) == 1, meter.queries
    scanned, count = meter.queries[0]
    assert scanned == count == len(got), (params, meter.queries)


@settings(max_examples=45, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
@example(data=None)
def test_every_filter_combination_matches_the_reference(log10k, data):
    if data is None:  # the corners, always run: biggest pages, rarest level, empty results
        for limit, since, level in [(1000, None, None), (1000, "2000-01-01T00:00:00Z", "info"), (1000, None, "TRACE"),
                                    (1, None, None), (1, "2000-01-01T00:00:00Z", None),
                                    (5, iso(BASE + timedelta(days=3)), "error"), (1000, "2000-01-01T00:00:00Z", "Trace")]:
            run(log10k, limit, since, level)
        return
    limit = data.draw(st.one_of(st.integers(1, 25), st.integers(1, 250)), label="limit")
    level = data.draw(st.one_of(st.none(), st.sampled_from(LEVELS).flatmap(
        lambda lv: st.sampled_from([lv, lv.lower(), lv.capitalize()]))), label="level")
    since = data.draw(sinces(log10k["stored"]), label="since")
    run(log10k, limit, since, level)


def test_reference_is_strict(log10k):
    """The reference itself can tell a wrong answer: an off-by-one on `since` changes the result."""
    stored = log10k["stored"]
    tie = next(e for a, e in itertools.pairwise(stored) if a.timestamp == e.timestamp)
    strictly_after = reference(stored, 5, tie.timestamp, None)
    assert tie.id not in strictly_after
    at_or_after = [e.id for e in stored if e.moment >= tie.moment][:5]
    assert strictly_after != at_or_after
