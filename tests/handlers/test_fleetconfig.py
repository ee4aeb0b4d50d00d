"""Fleet configuration on moto through the Chalice test client: pool and agent documents with
optimistic locking (a real race for the 409), the merged view, reports, events, the JSON Schema."""
from __future__ import annotations

import threading

import jsonschema
import pytest

TAIL = {"name": "syslog", "type": "tail", "table": "logs", "path": "/var/log/*.log"}
EXEC = {"name": "df", "type": "exec", "table": "disk", "command": ["df", "-k"], "intervalSeconds": 60,
        "timeoutSeconds": 5}


@pytest.fixture
def setup(http, fleet):
    a, a_key = fleet.register("edge-a", pools=["site", "eu"])
    b, b_key = fleet.register("edge-b", pools=["site"])
    c, c_key = fleet.register("edge-c", pools=["other"])
    return {"ops": fleet.operator, "a": a, "a_key": a_key, "b": b, "b_key": b_key, "c": c, "c_key": c_key,
            "fleet": fleet}


def put_pool(http, key, pool, desired, expected):
    return http.put(f"/config/pools/{pool}", key, {"desired": desired, "expectedVersion": expected})


def put_agent(http, key, agent_id, desired, expected):
    return http.put(f"/agents/{agent_id}/config", key, {"desired": desired, "expectedVersion": expected})


def config(http, key, agent_id):
    r = http.get(f"/agents/{agent_id}/config", key)
    assert r.status == 200, r.json
    return r.json


def test_write_read_merge_and_versions(http, setup):
    ops, a, b = setup["ops"], setup["a"], setup["b"]
    assert config(http, ops, a) == {"version": 0, "desired": {}, "reported": None, "delta": {}, "layers": []}

    r = put_pool(http, ops, "site", {"logLevel": "INFO", "adapters": [TAIL, EXEC]}, 0)
    assert r.status == 200 and r.json == {"version": 1, "desired": {"logLevel": "INFO", "adapters": [TAIL, EXEC]}}
    assert put_pool(http, ops, "eu", {"logLevel": "WARN", "uplink": {"batchRecords": 50, "lingerMs": 10}}, 0).status == 200
    r = put_agent(http, ops, a, {"uplink": {"batchRecords": 5, "lingerMs": 0},
                                  "adapters": [{"name": "df", "remove": True}]}, 0)
    assert r.status == 200 and r.json["version"] == 1

    view = config(http, ops, a)
    # pools in the agent's order (site, then eu: eu wins), then the agent's own document
    assert view["desired"] == {"logLevel": "WARN", "uplink": {"batchRecords": 5, "lingerMs": 0}, "adapters": [TAIL]}
    assert view["version"] == 3 and [(x["scope"], x["name"], x["version"]) for x in view["layers"]] == [
        ("pool", "site", 1), ("pool", "eu", 1), ("agent", a, 1)]
    assert view["reported"] is None and view["delta"] == view["desired"]
    assert config(http, ops, b)["desired"] == {"logLevel": "INFO", "adapters": [TAIL, EXEC]}
    assert config(http, ops, b)["version"] == 1

    # every write of any layer raises the merged version by one
    assert put_pool(http, ops, "site", {"logLevel": "DEBUG"}, 1).json["version"] == 2
    assert config(http, ops, a)["version"] == 4
    assert config(http, ops, b) | {"layers": None} == {"version": 2, "desired": {"logLevel": "DEBUG"},
                                                       "reported": None, "delta": {"logLevel": "DEBUG"},
                                                       "layers": None}
    pool = http.get("/config/pools/site", ops).json
    assert pool["version"] == 2 and pool["desired"] == {"logLevel": "DEBUG"} and pool["updatedAt"]
    assert http.get("/config/pools/never", ops).json == {"pool": "never", "version": 0, "desired": {}}


def test_a_stale_or_repeated_first_write_is_409_with_the_current_version(http, setup):
    ops, a = setup["ops"], setup["a"]
    assert put_agent(http, ops, a, {"logLevel": "INFO"}, 0).status == 200
    for expected in (0, 2, 7):
        r = put_agent(http, ops, a, {"logLevel": "ERROR"}, expected)
        assert r.status == 409 and r.json["error"]["code"] == "CONFLICT"
        assert r.json["error"]["details"] == [{"field": "expectedVersion", "message": "the current version is 1"}]
    assert config(http, ops, a)["desired"] == {"logLevel": "INFO"}
    assert put_pool(http, ops, "eu", {}, 3).status == 409  # a pool never written is at version 0


@pytest.mark.parametrize("target", ["pool", "agent"])
def test_two_concurrent_writers_of_the_same_version_one_wins(http, setup, atomic_aws, target):
    ops = setup["ops"]
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def write(level: str) -> None:
        barrier.wait()  # both have read version 0 and send their conditional writes together
        if target == "pool":
            results[level] = put_pool(http, ops, "site", {"logLevel": level}, 0)
        else:
            results[level] = put_agent(http, ops, setup["b"], {"logLevel": level}, 0)

    threads = [threading.Thread(target=write, args=(level,)) for level in ("DEBUG", "ERROR")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results.values())
    assert statuses == [200, 409], {k: (r.status, r.json) for k, r in results.items()}
    [winner] = [level for level, r in results.items() if r.status == 200]
    doc = http.get("/config/pools/site", ops).json if target == "pool" else config(http, ops, setup["b"])
    assert doc["desired"]["logLevel"] == winner and doc["version"] == 1


@pytest.mark.parametrize("desired, field", [
    ({"colour": "red"}, "desired.colour"),
    ({"logLevel": "TRACE"}, "desired.logLevel"),
    ({"uplink": {"batchRecords": 5}}, "desired.uplink.lingerMs"),
    ({"adapters": [{**TAIL, "follow": True}]}, "desired.adapters.0.tail.follow"),
    ({"adapters": [{**EXEC, "command": []}]}, "desired.adapters.0.exec.command"),
    ({"adapters": [{"name": "x", "type": "syslog", "table": "t"}]}, "desired.adapters.0"),
    ({"adapters": [TAIL, {**EXEC, "name": "syslog"}]}, "desired.adapters"),
])
def test_an_invalid_document_is_400_naming_the_field(http, setup, desired, field):
    for r in (put_pool(http, setup["ops"], "site", desired, 0), put_agent(http, setup["ops"], setup["a"], desired, 0)):
        assert r.status == 400 and r.json["error"]["code"] == "VALIDATION_ERROR", r.json
        assert field in [d["field"] for d in r.json["error"]["details"]], r.json
    assert http.get("/config/pools/site", setup["ops"]).json["version"] == 0  # nothing written


def test_bad_requests_around_the_document(http, setup):
    ops, a = setup["ops"], setup["a"]
    assert http.put(f"/agents/{a}/config", ops, {"desired": {}}).json["error"]["details"][0]["field"] == "expectedVersion"
    assert http.put(f"/agents/{a}/config", ops, {"desired": {}, "expectedVersion": -1}).status == 400
    assert http.put(f"/agents/{a}/config", ops, {"desired": [], "expectedVersion": 0}).status == 400
    assert http.put("/config/pools/bad%20pool", ops, {"desired": {}, "expectedVersion": 0}).status == 400
    assert put_agent(http, ops, "01NOSUCHAGENT0000000000000", {}, 0).status == 404


def test_who_may_do_what(http, setup, root):
    ops, a, b = setup["ops"], setup["a"], setup["b"]
    assert put_pool(http, setup["a_key"], "site", {}, 0).status == 403        # agents do not write
    assert put_agent(http, setup["a_key"], a, {}, 0).status == 403
    assert http.get(f"/agents/{a}/config", setup["a_key"]).status == 200      # its own
    assert http.get(f"/agents/{a}/config", setup["b_key"]).status == 403      # not another's
    assert http.post(f"/agents/{a}/config/reported", setup["b_key"], {"version": 0, "status": "applied"}).status == 403
    assert http.post(f"/agents/{a}/config/reported", ops, {"version": 0, "status": "applied"}).status == 403
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    other_ops = http.post("/keys", other["adminKey"], {"name": "o", "scope": "operator"}).json["apiKey"]
    assert http.get(f"/agents/{a}/config", other_ops).status == 404
    assert put_agent(http, other_ops, b, {}, 0).status == 404
    assert http.get("/config/pools/site", None).status == 401


def test_reports_the_delta_and_failures(http, setup):
    ops, a, key = setup["ops"], setup["a"], setup["a_key"]
    put_pool(http, ops, "site", {"logLevel": "INFO", "adapters": [TAIL]}, 0)
    view = config(http, key, a)
    assert view["version"] == 1

    r = http.post(f"/agents/{a}/config/reported", key, {"version": 1, "status": "applied"})
    assert r.status == 200 and r.json["delta"] == {} and r.json["reported"]["status"] == "applied"
    assert r.json["reported"]["error"] is None and r.json["reported"]["at"].endswith("Z")
    assert config(http, ops, a)["reported"]["version"] == 1

    put_pool(http, ops, "site", {"logLevel": "DEBUG", "adapters": [TAIL, EXEC]}, 1)
    view = config(http, ops, a)
    assert view["version"] == 2 and view["delta"] == {"logLevel": "DEBUG", "adapters": [TAIL, EXEC]}

    # the gateway cannot apply it: reported failed, the applied document (and so the delta) stays
    r = http.post(f"/agents/{a}/config/reported", key, {"version": 2, "status": "failed", "error": "exec: df not found"})
    assert r.status == 200 and r.json["reported"] == {"version": 2, "status": "failed", "error": "exec: df not found",
                                                      "at": r.json["reported"]["at"]}
    assert r.json["delta"] == {"logLevel": "DEBUG", "adapters": [TAIL, EXEC]}

    put_agent(http, ops, a, {"adapters": [{"name": "df", "remove": True}], "logLevel": None}, 0)
    assert http.post(f"/agents/{a}/config/reported", key, {"version": 3, "status": "applied"}).json["delta"] == {}
    assert config(http, ops, a)["desired"] == {"adapters": [TAIL]}

    # a version never desired is 409; a late report of an older version does not go back
    r = http.post(f"/agents/{a}/config/reported", key, {"version": 9, "status": "applied"})
    assert r.status == 409 and r.json["error"]["details"][0]["field"] == "version"
    late = http.post(f"/agents/{a}/config/reported", key, {"version": 2, "status": "applied"})
    assert late.status == 200 and late.json["reported"]["version"] == 3
    assert http.post(f"/agents/{a}/config/reported", key, {"version": 3, "status": "done"}).status == 400


def test_a_report_of_a_version_overtaken_before_it_arrived_leaves_the_whole_document_as_delta(http, setup):
    ops, a, key = setup["ops"], setup["a"], setup["a_key"]
    put_pool(http, ops, "site", {"logLevel": "INFO"}, 0)
    put_pool(http, ops, "site", {"logLevel": "WARN"}, 1)  # landed between the gateway's fetch (v1) and its report
    r = http.post(f"/agents/{a}/config/reported", key, {"version": 1, "status": "applied"})
    assert r.json["version"] == 2 and r.json["delta"] == {"logLevel": "WARN"}


def test_config_changed_reaches_each_affected_agent_with_its_own_version(http, setup, outbox, atomic_aws):
    ops, a, b, c = setup["ops"], setup["a"], setup["b"], setup["c"]
    put_agent(http, ops, a, {"logLevel": "ERROR"}, 0)
    outbox.drain()
    put_pool(http, ops, "site", {"logLevel": "INFO"}, 0)
    changed = [e for e in outbox.drain() if e["event"] == "config:changed"]
    assert sorted((e["agentId"], e["data"]["agentId"], e["data"]["version"]) for e in changed) == sorted(
        [(a, a, 2), (b, b, 1)])  # a: its own document (1) + site (1); c is not in the pool
    assert all(e["agentId"] != c for e in changed)
    put_agent(http, ops, b, {"logLevel": "WARN"}, 0)
    [event] = [e for e in outbox.drain() if e["event"] == "config:changed"]
    assert (event["agentId"], event["data"]) == (b, {"agentId": b, "version": 2})
    assert config(http, setup["b_key"], b)["version"] == 2
    put_pool(http, ops, "site", {}, 0)  # a refused write emits nothing
    assert [e for e in outbox.drain() if e["event"] == "config:changed"] == []


def test_a_pool_bigger_than_one_transaction_gets_every_event(http, fleet, outbox, monkeypatch):
    from chalicelib.fleetconfig import rules

    monkeypatch.setattr(rules, "EVENTS_IN_TRANSACTION", 2)  # the rest follow in bulk (90 in production)
    members = [fleet.register(f"edge-{i}", pools=["big"])[0] for i in range(5)]
    outbox.drain()
    r = put_pool(http, fleet.operator, "big", {"logLevel": "INFO"}, 0)
    assert r.status == 200
    changed = [e for e in outbox.drain() if e["event"] == "config:changed"]
    assert sorted(e["agentId"] for e in changed) == sorted(members)
    assert {e["data"]["version"] for e in changed} == {1}


def test_an_inactive_agent_gets_no_event(http, fleet, outbox):
    active, _ = fleet.register("on", pools=["mixed"])
    gone, _ = fleet.register("off", pools=["mixed"])
    assert http.post(f"/agents/{gone}/deactivate", fleet.operator).status == 200
    outbox.drain()
    put_pool(http, fleet.operator, "mixed", {"logLevel": "INFO"}, 0)
    assert [e["agentId"] for e in outbox.drain() if e["event"] == "config:changed"] == [active]


def test_the_json_schema_is_published_without_auth_and_agrees_with_the_api(http, setup):
    r = http.get("/schemas/agent-config.json")
    assert r.status == 200
    schema = r.json
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    good = {"logLevel": "INFO", "buffer": {"maxDbMb": 64, "onFull": "drop-oldest"}, "adapters": [TAIL, EXEC]}
    assert not list(validator.iter_errors(good))
    assert put_pool(http, setup["ops"], "site", good, 0).status == 200
    bad = {"adapters": [{**TAIL, "follow": True}]}
    assert list(validator.iter_errors(bad)) and put_pool(http, setup["ops"], "site", bad, 1).status == 400
    paths = http.get("/openapi.json").json["paths"]
    assert {"/config/pools/{pool}", "/agents/{agentId}/config", "/agents/{agentId}/config/reported",
            "/schemas/agent-config.json"} <= set(paths)


def test_a_write_whose_merge_would_be_invalid_for_an_agent_is_400(http, setup):
    ops, a = setup["ops"], setup["a"]  # a lists site and eu; b only site
    many = [{**TAIL, "name": f"site-{i}"} for i in range(40)]
    assert put_pool(http, ops, "site", {"adapters": many}, 0).status == 200
    more = [{**TAIL, "name": f"eu-{i}"} for i in range(30)]  # valid alone; 70 adapters merged for a
    r = put_pool(http, ops, "eu", {"adapters": more}, 0)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "desired", r.json
    assert a in r.json["error"]["message"]
    assert http.get("/config/pools/eu", ops).json["version"] == 0
    r = put_agent(http, ops, a, {"adapters": more}, 0)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "desired"
    assert put_agent(http, ops, a, {"adapters": more[:20]}, 0).status == 200  # 60 merged: fine
