"""Fleet configuration and the tail adapter end to end: real `python -m edge_gateway` processes against
the local stack (one stack for the module).

- two gateways in one pool: a pool change reaches both over `config:changed` (their slow poll is an
  hour) and each reports it applied within 5 s; the exec adapter it configures delivers records
  from both; a conflicting write is 409; an invalid document is refused with 400 naming the field;
  a document one gateway cannot apply (an exec program that does not exist) is reported failed
  while its last good document keeps running;
- tail: lines written through a rotation by rename, a rotation by copytruncate and a kill -9 of the
  gateway mid-file arrive at the control plane exactly once (every line's text compared).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call
from tests.e2e.test_edge_gateway_e2e import GatewayProcess, wait_until

pytestmark = pytest.mark.e2e

POOL = "edge-pool"


@pytest.fixture(scope="module")
def stack():
    with running_devstack() as s:
        yield s


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    url = stack.url
    org = call(url, "POST", "/orgs", stack.admin_api_key, {"name": "fleet config"}).json
    ops = call(url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
    agents, gateways = [], []
    for name in ("edge-a", "edge-b"):
        agent = call(url, "POST", "/agents", ops, {"name": name, "pools": [POOL]}).json
        gateway = GatewayProcess(url, agent["apiKey"], tmp_path_factory.mktemp(name) / "gw.db",
                                 GATEWAY_CONFIG_POLL_SECONDS="3600").start()
        agents.append(agent)
        gateways.append(gateway)
    for gateway in gateways:
        wait_until(lambda g=gateway: health(g)["checks"]["controlChannel"]["connected"], 20, "never connected")
    yield {"url": url, "ops": ops, "agents": agents, "gateways": gateways}
    for gateway in gateways:
        gateway.stop()


def health(gateway: GatewayProcess) -> dict:
    return call(gateway.url, "GET", "/health").json


def agent_config(fleet, agent_id: str) -> dict:
    reply = call(fleet["url"], "GET", f"/agents/{agent_id}/config", fleet["ops"])
    assert reply.status == 200, reply.json
    return reply.json


def reported(fleet, agent_id: str, version: int) -> dict | None:
    got = agent_config(fleet, agent_id)["reported"]
    return got if got and got["version"] == version else None


def exec_adapter(name: str, value: str, table: str = "fleetstats") -> dict:
    return {"name": name, "type": "exec", "table": table, "intervalSeconds": 0.2, "timeoutSeconds": 5,
            "command": [sys.executable, "-c", f"print('{{\"v\": \"{value}\"}}')"]}


def ingested(fleet, table: str, agent_id: str) -> list[dict]:
    items, token = [], None
    while True:
        q = f"/ingest/records?table={table}&agentId={agent_id}&limit=500" + (f"&nextToken={token}" if token else "")
        page = call(fleet["url"], "GET", q, fleet["ops"]).json
        items += page["items"]
        token = page["nextToken"]
        if not token:
            return items


def test_a_pool_change_reaches_both_gateways_and_is_reported_applied_within_5_s(fleet):
    url, ops = fleet["url"], fleet["ops"]
    started = time.monotonic()
    reply = call(url, "PUT", f"/config/pools/{POOL}", ops,
                 {"desired": {"logLevel": "INFO", "adapters": [exec_adapter("stats", "pool-1")]}, "expectedVersion": 0})
    assert reply.status == 200, reply.json
    for agent in fleet["agents"]:
        version = agent_config(fleet, agent["agentId"])["version"]
        wait_until(lambda a=agent, v=version: reported(fleet, a["agentId"], v), 5, "not reported within 5 s")
        assert reported(fleet, agent["agentId"], version)["status"] == "applied"
    assert time.monotonic() - started < 5.0
    for agent, gateway in zip(fleet["agents"], fleet["gateways"], strict=True):
        wait_until(lambda a=agent: ingested(fleet, "fleetstats", a["agentId"]), 20, "no records from the adapter")
        assert ingested(fleet, "fleetstats", agent["agentId"])[0]["data"] == {"v": "pool-1"}
        assert health(gateway)["checks"]["adapters"]["stats"]["status"] == "running"


def test_a_conflicting_write_is_409_and_an_invalid_document_is_refused(fleet):
    url, ops = fleet["url"], fleet["ops"]
    current = call(url, "GET", f"/agents/{fleet['agents'][0]['agentId']}/config", ops).json
    stale = call(url, "PUT", f"/config/pools/{POOL}", ops, {"desired": {}, "expectedVersion": 0})
    assert stale.status == 409 and stale.json["error"]["code"] == "CONFLICT"
    unknown = call(url, "PUT", f"/config/pools/{POOL}", ops, {"desired": {"colour": "blue"}, "expectedVersion": 1})
    assert unknown.status == 400 and "colour" in str(unknown.json["error"]["details"])
    bad_type = call(url, "PUT", f"/config/pools/{POOL}", ops,
                    {"desired": {"adapters": [{"name": "x", "type": "modbus", "table": "t"}]}, "expectedVersion": 1})
    assert bad_type.status == 400 and "adapters" in str(bad_type.json["error"]["details"])
    assert call(url, "GET", f"/agents/{fleet['agents'][0]['agentId']}/config", ops).json["version"] == current["version"]


def test_a_document_a_gateway_cannot_apply_is_reported_failed_and_the_last_good_keeps_running(fleet):
    url, ops = fleet["url"], fleet["ops"]
    (a, _), (gateway_a, gateway_b) = fleet["agents"], fleet["gateways"]
    wait_until(lambda: "stats" in health(gateway_a)["checks"]["adapters"], 10, "the pool's adapter first")
    good = health(gateway_a)["checks"]["configuration"]["appliedVersion"]
    reply = call(url, "PUT", f"/agents/{a['agentId']}/config", ops,
                 {"desired": {"adapters": [{**exec_adapter("probe", "x"), "command": ["/no/such/program"]}]},
                  "expectedVersion": 0})
    assert reply.status == 200, reply.json
    version = agent_config(fleet, a["agentId"])["version"]
    wait_until(lambda: reported(fleet, a["agentId"], version), 5, "not reported within 5 s")
    report = reported(fleet, a["agentId"], version)
    assert report["status"] == "failed" and "/no/such/program" in report["error"]
    state = health(gateway_a)["checks"]
    assert state["configuration"]["appliedVersion"] == good and sorted(state["adapters"]) == ["stats"]
    before = state["adapters"]["stats"]["counters"]["records"]
    wait_until(lambda: health(gateway_a)["checks"]["adapters"]["stats"]["counters"]["records"] > before, 10,
               "the last good adapter stopped")
    assert health(gateway_b)["checks"]["configuration"]["failedVersion"] is None  # the pool's peer unaffected


# --- tail ------------------------------------------------------------------------------------------


def write_lines(path: Path, first: int, count: int, mode: str = "a") -> None:
    with path.open(mode) as f:
        f.writelines(f"line {i:06d} {'.' * 30}\n" for i in range(first, first + count))


def tail_state(gateway: GatewayProcess) -> dict:
    return health(gateway)["checks"]["adapters"].get("app") or {}


def caught_up(gateway: GatewayProcess, path: Path) -> bool:
    size = path.stat().st_size
    return any(f["offset"] == size and not f["rotated"] for f in tail_state(gateway).get("files", []))


def test_tail_through_rename_copytruncate_and_kill_9_delivers_every_line_once(fleet, tmp_path):
    url, ops = fleet["url"], fleet["ops"]
    agent = call(url, "POST", "/agents", ops, {"name": "tailer"}).json
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    write_lines(log, 0, 200)
    gateway = GatewayProcess(url, agent["apiKey"], tmp_path / "gw.db", GATEWAY_CONFIG_POLL_SECONDS="3600").start()
    try:
        # a small buffer: reading the big append below waits for the uplink (back-pressure), so the kill -9
        # lands mid-file
        reply = call(url, "PUT", f"/agents/{agent['agentId']}/config", ops, {"desired": {
            "buffer": {"maxDbMb": 0.05, "onFull": "refuse"},
            "adapters": [{"name": "app", "type": "tail", "table": "applog", "path": str(logs / "*.log")}]},
            "expectedVersion": 0})
        assert reply.status == 200, reply.json
        wait_until(lambda: caught_up(gateway, log), 20, "the first 200 lines")

        # rotation by rename: the writer still appends to the renamed file before it reopens
        writer = log.open("a")
        writer.writelines(f"line {i:06d} {'.' * 30}\n" for i in range(200, 300))
        writer.flush()
        os.rename(log, logs / "app.log.1")
        writer.writelines(f"line {i:06d} {'.' * 30}\n" for i in range(300, 400))
        writer.close()
        write_lines(log, 400, 100)
        wait_until(lambda: caught_up(gateway, log) and tail_state(gateway)["counters"]["rotations"] == 1, 20,
                   "after the rename")

        # rotation by copytruncate (once the gateway has read what is there: the copy is not followed)
        shutil.copy(log, logs / "app.log.2")
        os.truncate(log, 0)
        write_lines(log, 500, 100)  # as long as before the truncate: found by its first bytes, not its size
        wait_until(lambda: tail_state(gateway)["counters"]["truncations"] == 1 and caught_up(gateway, log), 20,
                   "after the copytruncate")

        # kill -9 mid-file: a big append, the gateway killed while reading it, then started again
        write_lines(log, 600, 1500)
        size = log.stat().st_size
        wait_until(lambda: any(0 < f["offset"] < size for f in tail_state(gateway).get("files", [])), 30,
                   "reading the big append")
        gateway.kill9()
        gateway.start()  # no control plane call needed: the last good document is on disk
        write_lines(log, 2100, 50)
        total = 2150
        wait_until(lambda: caught_up(gateway, log) and gateway.stats()["backlog"] == 0, 180, "everything uploaded")
        lines = [item["data"]["line"].split()[1] for item in ingested(fleet, "applog", agent["agentId"])]
        assert len(lines) == total, (len(lines), total)
        assert sorted(lines) == [f"{i:06d}" for i in range(total)]
    finally:
        gateway.stop()
