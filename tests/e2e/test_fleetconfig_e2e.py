"""Fleet configuration on the local stack over real HTTP and WebSocket: a pool write reaches every
agent of the pool as config:changed, a conflicting write is 409, and the stack passes
CONFIG_DRIFT_MINUTES to the functions (a shortened window makes the nightly scan file drift)."""
from __future__ import annotations

import json
import time

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call, ws_connect

pytestmark = pytest.mark.e2e
DRIFT_MINUTES = 0.02  # 1.2 s


@pytest.fixture(scope="module")
def stack():
    with running_devstack(app_module="app", env={"CONFIG_DRIFT_MINUTES": str(DRIFT_MINUTES)}) as s:
        yield s


@pytest.fixture(scope="module")
def fleet(stack):
    org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "fleet e2e"}).json
    op = call(stack.url, "POST", "/keys", org["adminKey"], {"name": "op", "scope": "operator"}).json["apiKey"]
    agents = {}
    for name, pools in (("gw-1", ["site"]), ("gw-2", ["site"]), ("gw-3", ["elsewhere"])):
        r = call(stack.url, "POST", "/agents", op, {"name": name, "pools": pools})
        assert r.status == 201, r.json
        agents[name] = (r.json["agentId"], r.json["apiKey"])
    return {"op": op, "agents": agents}


def next_event(socket, name: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["event"] == name:
            return frame["data"]


def test_a_pool_write_reaches_each_gateway_of_the_pool_and_a_stale_one_is_409(stack, fleet):
    (a, a_key), (b, b_key), (c, c_key) = (fleet["agents"][n] for n in ("gw-1", "gw-2", "gw-3"))
    sockets = {name: ws_connect(stack.url, key) for name, key in (("a", a_key), ("b", b_key), ("c", c_key))}
    try:
        for s in sockets.values():
            next_event(s, "system:connected")
        desired = {"logLevel": "DEBUG", "adapters": [{"name": "syslog", "type": "tail", "table": "logs",
                                                     "path": "/var/log/*.log"}]}
        r = call(stack.url, "PUT", "/config/pools/site", fleet["op"], {"desired": desired, "expectedVersion": 0})
        assert r.status == 200 and r.json == {"version": 1, "desired": desired}
        assert next_event(sockets["a"], "config:changed") == {"agentId": a, "version": 1}
        assert next_event(sockets["b"], "config:changed") == {"agentId": b, "version": 1}
        for agent_id, key in ((a, a_key), (b, b_key)):  # the hint's fetch, with the agent's own key
            view = call(stack.url, "GET", f"/agents/{agent_id}/config", key).json
            assert view["version"] == 1 and view["desired"] == desired
        sockets["c"].send(json.dumps({"action": "ping"}))
        assert next_event(sockets["c"], "system:pong") is not None  # gw-3 got nothing before its pong
        stale = call(stack.url, "PUT", "/config/pools/site", fleet["op"], {"desired": {}, "expectedVersion": 0})
        assert stale.status == 409 and stale.json["error"]["code"] == "CONFLICT"
        bad = call(stack.url, "PUT", "/config/pools/site", fleet["op"],
                   {"desired": {"logLevel": "LOUD"}, "expectedVersion": 1})
        assert bad.status == 400 and bad.json["error"]["details"][0]["field"] == "desired.logLevel"
    finally:
        for s in sockets.values():
            s.close()


def test_the_stack_passes_config_drift_minutes_to_the_scan(stack, fleet):
    a, a_key = fleet["agents"]["gw-1"]
    assert call(stack.url, "POST", f"/agents/{a}/config/reported", a_key, {"version": 1, "status": "applied"}).status == 200
    written = time.monotonic()
    r = call(stack.url, "PUT", "/config/pools/elsewhere", fleet["op"], {"desired": {"logLevel": "WARN"}, "expectedVersion": 0})
    assert r.status == 200
    deadline = written + 30
    while True:  # scan until the window (1.2 s, as set in the stack's environment) has passed for gw-3
        scan = call(stack.url, "POST", "/api/ops/scan", stack.admin_api_key, {"scope": "incremental"})
        assert scan.status == 200, scan.json
        issues = call(stack.url, "GET", "/api/ops/issues", stack.admin_api_key).json["items"]
        drift = [i for i in issues if "config-drift" in i["title"]]
        if any("elsewhere" in i["title"] for i in drift) or time.monotonic() > deadline:
            break
    assert time.monotonic() - written >= DRIFT_MINUTES * 60
    titles = " ".join(i["title"] for i in drift)
    assert "elsewhere" in titles and "site" in titles  # gw-2 never reported site's version either
