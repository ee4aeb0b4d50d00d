"""POST /ingest and GET /ingest/records on moto through the Chalice test client."""
from __future__ import annotations

import logging
import threading
from urllib.parse import urlencode

import pytest

from tests.handlers.test_instances import operator_key, register_agent


@pytest.fixture(scope="module", autouse=True)
def fast_moto(aws):
    """moto's transactions deep-copy the whole table (devstack/fast_moto.py); the local stack patches that,
    and so does this module (its requests are serialized: atomic_aws where threads run)."""
    from devstack import fast_moto as patch

    patch.patch_transactions()
    patch.patch_index_queries()
    yield
    patch.unpatch()


@pytest.fixture
def setup(http, org):
    ops = operator_key(http, org)
    a, b = register_agent(http, org, "edge-a"), register_agent(http, org, "edge-b")
    return {"ops": ops, "a": a, "b": b, "org": org}


def rec(i: int, table: str = "metrics", second: int | None = None, **data) -> dict:
    s = i if second is None else second
    return {"recordId": f"r{i:05d}", "table": table, "data": {"i": i, **data},
            "ts": f"2026-12-01T10:{s // 60 % 60:02d}:{s % 60:02d}.000Z"}


def ingest(http, key, records, batch_id="b1"):
    return http.post("/ingest", key, {"batchId": batch_id, "records": records})


def records(http, key, **params):
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return http.get("/ingest/records" + (f"?{query}" if query else ""), key)


def test_a_retried_batch_is_never_stored_twice(http, setup):
    key = setup["a"]["apiKey"]
    batch = [rec(i) for i in range(150)]  # two transactions (99 + 51)
    r = ingest(http, key, batch)
    assert r.status == 200 and r.json == {"accepted": 150, "duplicates": 0, "agentId": setup["a"]["agentId"]}
    assert ingest(http, key, batch).json["accepted"] == 0
    assert ingest(http, key, batch).json["duplicates"] == 150
    mixed = batch[140:] + [rec(i) for i in range(150, 160)]
    assert ingest(http, key, mixed).json == {"accepted": 10, "duplicates": 10, "agentId": setup["a"]["agentId"]}
    # repeats inside one batch count as duplicates too
    assert ingest(http, key, [rec(500), rec(500), rec(501)]).json["accepted"] == 2
    got = records(http, setup["ops"], agentId=setup["a"]["agentId"], limit=500).json["items"]
    assert len(got) == 162 == len({g["recordId"] for g in got})


def test_the_same_record_id_from_two_agents_is_two_records(http, setup):
    assert ingest(http, setup["a"]["apiKey"], [rec(1)]).json["accepted"] == 1
    assert ingest(http, setup["b"]["apiKey"], [rec(1)]).json["accepted"] == 1


def test_concurrent_uploads_of_the_same_batch_store_each_record_once(http, setup, atomic_aws):
    key = setup["a"]["apiKey"]
    batch = [rec(i, table="race") for i in range(40)]
    results = []

    def upload():
        results.append(ingest(http, key, batch))

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r.json for r in results if r.status == 200]
    assert all(r.status in (200, 503) for r in results), [r.json for r in results]
    assert sum(r["accepted"] for r in ok) <= 40
    # whatever was refused with 503 is retried by the gateway; in the end every record is there once
    ingest(http, key, batch)
    got = records(http, setup["ops"], table="race", limit=500).json["items"]
    assert sorted(g["recordId"] for g in got) == sorted(r["recordId"] for r in batch)


def test_ingest_takes_an_agent_key_of_an_active_agent(http, setup):
    assert ingest(http, setup["ops"], [rec(1)]).status == 403
    assert http.post(f"/agents/{setup['b']['agentId']}/deactivate", setup["ops"]).status == 200
    r = ingest(http, setup["b"]["apiKey"], [rec(1)])
    assert r.status == 403
    assert http.post("/ingest", None, {"records": []}).status == 401


def test_an_empty_batch_names_the_agent(http, setup):
    assert ingest(http, setup["a"]["apiKey"], []).json == {"accepted": 0, "duplicates": 0,
                                                           "agentId": setup["a"]["agentId"]}


@pytest.mark.parametrize("bad, field", [
    ({"recordId": "a;b"}, "records.0.recordId"),
    ({"recordId": ""}, "records.0.recordId"),
    ({"table": "t'x"}, "records.0.table"),
    ({"table": "t;drop"}, "records.0.table"),
    ({"ts": "yesterday"}, "records.0.ts"),
    ({"extra": 1}, "records.0.extra"),
])
def test_bad_records_are_400_naming_the_field(http, setup, bad, field):
    r = ingest(http, setup["a"]["apiKey"], [{**rec(1), **bad}])
    assert r.status == 400, r.json
    assert r.json["error"]["details"][0]["field"] == field
    assert records(http, setup["ops"], agentId=setup["a"]["agentId"]).json["items"] == []


def test_too_many_records_is_400(http, setup):
    r = http.post("/ingest", setup["a"]["apiKey"], {"records": [rec(i) for i in range(501)]})
    assert r.status in (400, 413)


def test_list_filters_since_and_pages(http, setup):
    a, b = setup["a"], setup["b"]
    ingest(http, a["apiKey"], [rec(i, table="cpu") for i in range(10)] + [rec(i, table="mem") for i in range(10, 15)])
    ingest(http, b["apiKey"], [rec(i, table="cpu", second=100 + i) for i in range(5)])
    ops = setup["ops"]
    assert len(records(http, ops, limit=100).json["items"]) == 20
    cpu = records(http, ops, table="cpu", limit=100).json["items"]
    assert len(cpu) == 15 and [c["ts"] for c in cpu] == sorted(c["ts"] for c in cpu)  # oldest first
    assert len(records(http, ops, table="cpu", agentId=a["agentId"]).json["items"]) == 10
    assert len(records(http, ops, agentId=b["agentId"]).json["items"]) == 5
    since = records(http, ops, table="cpu", agentId=a["agentId"], since="2026-12-01T10:00:04.000Z").json["items"]
    assert [s["recordId"] for s in since] == [f"r{i:05d}" for i in range(5, 10)]  # strictly after
    assert since[0]["data"] == {"i": 5} and since[0]["agentId"] == a["agentId"] and since[0]["receivedAt"]
    # paging: limit plus nextToken walks every record once
    seen, token = [], None
    while True:
        page = records(http, ops, table="cpu", limit=4, nextToken=token).json
        assert len(page["items"]) <= 4
        seen += [(p["agentId"], p["recordId"]) for p in page["items"]]
        token = page["nextToken"]
        if not token:
            break
    assert len(seen) == 15 == len(set(seen))
    assert records(http, ops, nextToken="forged").status == 400
    assert records(http, ops, since="not a time").status == 400
    assert records(http, ops, table="a;b").status == 400


def test_records_are_org_isolated_and_operator_only(http, setup, root):
    ingest(http, setup["a"]["apiKey"], [rec(1)])
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    other_ops = operator_key(http, other)
    assert records(http, other_ops).json["items"] == []
    assert records(http, other_ops, agentId=setup["a"]["agentId"]).json["items"] == []
    assert records(http, setup["a"]["apiKey"]).status == 403


def test_unicode_is_stored_as_sent_and_a_lone_surrogate_is_400(http, setup):
    # A lone surrogate is not Unicode text: no strict JSON reader downstream could read it
    # back, so it is refused like everywhere else (issue 9), and nothing of the batch is stored.
    bad = b'{"records": [{"recordId": "u0", "table": "t", "data": {"s": "\\ud800"}, "ts": "2026-12-01T10:00:00Z"}]}'
    r = http.call("POST", "/ingest", setup["a"]["apiKey"], raw_body=bad)
    assert r.status == 400 and r.json["error"]["code"] == "VALIDATION_ERROR", r.json
    raw = b'{"records": [{"recordId": "u1", "table": "t", "data": {"s": "h\xc3\xa9 \\u00e9"}, "ts": "2026-12-01T10:00:00Z"}]}'
    r = http.call("POST", "/ingest", setup["a"]["apiKey"], raw_body=raw)
    assert r.status == 200 and r.json["accepted"] == 1, r.json
    got = records(http, setup["ops"], agentId=setup["a"]["agentId"]).json["items"]
    assert [g["recordId"] for g in got] == ["u1"]
    assert got[0]["data"] == {"s": "h\u00e9 \u00e9"}


def test_concurrent_first_uploads_after_a_cold_start_all_succeed(http, setup, atomic_aws, monkeypatch):
    """Issue 14: after the local stack restarted, an edge gateway's upload, command poll and WebSocket $connect
    were the process's first requests and ran in parallel; each built the lazily made Powertools Logger, and the
    one kept took Chalice's plain handler (same logger name as the app) as its own: every later request was
    500 (AttributeError: 'Formatter' object has no attribute 'append_keys'). Here: a cold copy of the
    observability module (nothing built yet; a service name of its own, with Chalice's plain handler on it as
    the app had before app.py turned that handler off), the Logger's construction slowed as the cold import of
    Powertools slows it, 8 first uploads at once: still one Logger, whatever handler it finds."""
    import importlib.util
    import time

    from aws_lambda_powertools.logging.logger import Logger
    from chalice import Chalice

    from chalicelib.core import observability

    # The cold copy's set-up takes over the shared "chalicelib" logger (core/observability.py: one
    # handler for every module's lines): give it back to the real set-up when this test ends.
    modules = logging.getLogger("chalicelib")
    monkeypatch.setattr(modules, "handlers", list(modules.handlers))
    monkeypatch.setattr(modules, "propagate", modules.propagate)
    spec = importlib.util.find_spec(observability.__name__)
    cold = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cold)
    cold.SERVICE = "control-plane-cold-start"
    # Chalice puts its plain handler on the logger named after the app (configure_logs defaults to on)
    Chalice(app_name=cold.SERVICE, env={})  # env={}: leaves os.environ alone
    monkeypatch.setattr(observability, "_logger", cold._logger)

    built = []
    real_init = Logger.__init__

    def slow_init(self, *args, **kwargs):
        built.append(kwargs.get("service"))
        time.sleep(0.2)  # stands in for importing Powertools in a cold process: the window the race needs
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(Logger, "__init__", slow_init)
    key = setup["a"]["apiKey"]
    start = threading.Barrier(8)
    results: dict[int, object] = {}

    def upload(n: int) -> None:
        start.wait()
        results[n] = ingest(http, key, [rec(9000 + n, table="cold")], batch_id=f"cold{n}")

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[n].status for n in range(8)] == [200] * 8, [results[n].json for n in range(8)]
    assert built == [cold.SERVICE]  # one Logger per process, however many first requests race for it
    assert ingest(http, key, [rec(9100, table="cold")], batch_id="after").status == 200
