"""The edge gateway end to end: a real `python -m edge_gateway` process against the local stack.

- durability: 5,000 records stored through the gateway's HTTP API while the
  control plane is stopped and started twice (a real stop: the stack process
  exits and reloads its saved state) and the gateway is killed with -9 twice
  while uploading; afterwards GET /ingest/records holds each of the 5,000
  exactly once;
- commands: acked within 1 s while connected; one issued while the gateway is
  down is acked once it is back; a second delivery of the same command:issued
  is not run or acked again.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from devstack.testing import REPO_ROOT, running_devstack
from tests.e2e.client import call

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayProcess:
    def __init__(self, control_plane_url: str, api_key: str, db: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "CONTROL_PLANE_URL": control_plane_url,
                    "GATEWAY_API_KEY": api_key, "GATEWAY_DB": str(db), "GATEWAY_PORT": str(self.port),
                    "GATEWAY_BACKOFF_BASE_SECONDS": "0.1", "GATEWAY_BACKOFF_CAP_SECONDS": "1",
                    "GATEWAY_LINGER_SECONDS": "0.05", "GATEWAY_REQUEST_TIMEOUT_SECONDS": "20", **env}
        self.log = db.with_suffix(".log")
        self.process: subprocess.Popen | None = None

    def start(self) -> "GatewayProcess":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "edge_gateway"], cwd=REPO_ROOT, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                call(self.url, "GET", "/buffer/stats", timeout=2)
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(self.log.read_text()[-3000:])

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(30)
        return self.process.returncode if self.process else 0

    def stats(self) -> dict:
        return call(self.url, "GET", "/buffer/stats").json


def store_many(gateway: GatewayProcess, first: int, count: int, clients: int = 8) -> None:
    """Stores of 100 records (data {"n": k}), from concurrent clients; each must answer 201."""
    starts = list(range(first, first + count, 100))

    def store(start: int) -> None:
        r = call(gateway.url, "POST", "/buffer/store",
                 body={"table": "e2e", "records": [{"n": k} for k in range(start, min(start + 100, first + count))]})
        assert r.status == 201, r.json

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(store, starts))


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def uploading(gateway: GatewayProcess, after: int) -> bool:
    """The uplink has acknowledged batches since `after` and still has a backlog: uploads are under way."""
    s = gateway.stats()
    return s["counters"]["uplinked"] + s["counters"]["duplicates"] > after and s["backlog"] > 0


def enrolled_identity(stack, ops: str, agent_id: str, directory: Path) -> Path:
    """A gateway for the agent, enrolled with `python -m edge_gateway enroll` (issue 21): its identity directory."""
    gateway = call(stack.url, "POST", "/gateways", ops, {"agentId": agent_id, "name": "edge"}).json
    done = subprocess.run([sys.executable, "-m", "edge_gateway", "enroll", "--url", stack.url,
                           "--gateway-id", gateway["gatewayId"], "--token", gateway["enrollmentToken"],
                           "--dir", str(directory), "--tls-url", stack.tls_url, "--server-ca", stack.server_ca_path],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return directory


# "certificate": the same run with the gateway holding an enrolled certificate (mutual TLS on the stack's
# TLS port, kept across restarts with its server CA under the state directory) instead of an API key.
@pytest.mark.parametrize("identity", ["api-key", "certificate"])
def test_5000_records_exactly_once_through_outages_and_kill_9(tmp_path, identity):
    state = tmp_path / "state"
    port = free_port()
    tls = {"TLS_PORT": str(free_port())}  # the same mutual-TLS port across the restarts
    stack_log = tmp_path / "devstack.log"  # every run of the stack appends here: a 500's traceback survives restarts
    with ExitStack() as outer:
        first = outer.enter_context(running_devstack(state_dir=state, fresh=True, port=port, log_file=stack_log,
                                                     env=tls))
        url = first.url
        org = call(url, "POST", "/orgs", first.admin_api_key, {"name": "edge e2e"}).json
        ops = call(url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
        agent = call(url, "POST", "/agents", ops, {"name": "edge"}).json
        if identity == "certificate":
            certified = enrolled_identity(first, ops, agent["agentId"], tmp_path / "identity")
            gateway = GatewayProcess(url, "", tmp_path / "gw.db", GATEWAY_BATCH_RECORDS="200",
                                     GATEWAY_CERT_DIR=str(certified)).start()
        else:
            gateway = GatewayProcess(url, agent["apiKey"], tmp_path / "gw.db", GATEWAY_BATCH_RECORDS="200").start()
        outer.callback(gateway.stop)

        store_many(gateway, 0, 1000)                                   # control plane up
        first.stop()                                                   # outage 1: the process exits
        store_many(gateway, 1000, 1500)                                # buffered while it is down
        wait_until(lambda: call(gateway.url, "GET", "/health").json["checks"]["uplink"]["consecutiveFailures"] > 0,
                   30, "the uplink never noticed the control plane was gone")
        with running_devstack(state_dir=state, port=port, log_file=stack_log, env=tls):  # back, with its saved state
            done = gateway.stats()["counters"]
            wait_until(lambda: uploading(gateway, done["uplinked"] + done["duplicates"]), 60, "no upload")
            gateway.kill9()                                            # kill -9 #1, mid-upload
            gateway.start()
            store_many(gateway, 2500, 1000)
            done = gateway.stats()["counters"]
            wait_until(lambda: uploading(gateway, done["uplinked"] + done["duplicates"]), 60, "no upload")
            gateway.kill9()                                            # kill -9 #2, mid-upload
        gateway.start()                                                # outage 2: control plane stopped
        store_many(gateway, 3500, 1500)
        assert gateway.stats()["backlog"] >= 1500
        with running_devstack(state_dir=state, port=port, log_file=stack_log, env=tls):
            wait_until(lambda: gateway.stats()["backlog"] == 0, 600, "the backlog never drained")
            stats = gateway.stats()
            seen: list[int] = []
            ids: set[str] = set()
            token = None
            while True:
                q = f"/ingest/records?agentId={agent['agentId']}&limit=500" + (f"&nextToken={token}" if token else "")
                page = call(url, "GET", q, ops).json
                seen += [item["data"]["n"] for item in page["items"]]
                ids |= {item["recordId"] for item in page["items"]}
                token = page["nextToken"]
                if not token:
                    break
        print(f"gateway counters after the run: {stats['counters']}")
        assert len(seen) == 5000 and sorted(seen) == list(range(5000))  # each exactly once
        assert len(ids) == 5000
        assert stats["counters"]["stored"] == 5000
        # records the control plane had stored but the killed gateway had not yet deleted came back as duplicates
        assert stats["counters"]["uplinked"] <= 5000
        assert stats["counters"]["dropped"] == 0 and stats["counters"]["quarantined"] == 0
        assert gateway.stop() == 0


# --- commands --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    with running_devstack() as s:
        yield s


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    url = stack.url
    org = call(url, "POST", "/orgs", stack.admin_api_key, {"name": "edge commands"}).json
    ops = call(url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
    agent = call(url, "POST", "/agents", ops, {"name": "edge"}).json
    gateway = GatewayProcess(url, agent["apiKey"], tmp_path_factory.mktemp("gw") / "gw.db",
                             GATEWAY_COMMAND_POLL_SECONDS="1").start()
    yield {"ops": ops, "agent": agent, "gateway": gateway, "url": url}
    gateway.stop()


def connected(gateway: GatewayProcess) -> bool:
    return call(gateway.url, "GET", "/health").json["checks"]["controlChannel"]["connected"]


def command(fleet, command_id: str) -> dict:
    return call(fleet["url"], "GET", f"/commands/{command_id}", fleet["ops"]).json


def test_a_command_issued_while_connected_is_acked_within_1_s(fleet):
    wait_until(lambda: connected(fleet["gateway"]), 20, "control channel never connected")
    started = time.monotonic()
    issued = call(fleet["url"], "POST", f"/agents/{fleet['agent']['agentId']}/commands", fleet["ops"],
                  {"type": "ping"}).json
    wait_until(lambda: command(fleet, issued["commandId"])["status"] != "pending", 5, "never acked")
    elapsed = time.monotonic() - started
    done = command(fleet, issued["commandId"])
    assert done["status"] == "acked" and done["result"]["pong"] is True
    assert elapsed < 1.0, elapsed


def test_set_log_level_and_flush_handlers(fleet):
    for body, check in (({"type": "set-log-level", "payload": {"level": "DEBUG"}}, lambda r: r["level"] == "DEBUG"),
                        ({"type": "set-log-level", "payload": {"level": "LOUD"}}, None),
                        ({"type": "flush"}, lambda r: r["ok"] is True),
                        ({"type": "no-such-handler"}, None)):
        issued = call(fleet["url"], "POST", f"/agents/{fleet['agent']['agentId']}/commands", fleet["ops"], body).json
        wait_until(lambda issued=issued: command(fleet, issued["commandId"])["status"] != "pending", 5, "never acked")
        done = command(fleet, issued["commandId"])
        if check is None:
            assert done["status"] == "failed" and "error" in done["result"]
        else:
            assert done["status"] == "acked" and check(done["result"]), done


def test_a_command_issued_while_disconnected_is_acked_after_reconnect(fleet):
    gateway = fleet["gateway"]
    assert gateway.stop() == 0
    issued = call(fleet["url"], "POST", f"/agents/{fleet['agent']['agentId']}/commands", fleet["ops"],
                  {"type": "ping"}).json
    assert command(fleet, issued["commandId"])["status"] == "pending"
    gateway.start()
    wait_until(lambda: command(fleet, issued["commandId"])["status"] == "acked", 15, "not acked after restart")


def test_a_duplicate_delivery_is_acked_once(fleet, stack):
    gateway = fleet["gateway"]
    wait_until(lambda: connected(gateway), 20, "control channel never connected")
    issued = call(fleet["url"], "POST", f"/agents/{fleet['agent']['agentId']}/commands", fleet["ops"],
                  {"type": "ping"}).json
    wait_until(lambda: command(fleet, issued["commandId"])["status"] == "acked", 5, "never acked")
    first = command(fleet, issued["commandId"])
    before = _duplicates(gateway)
    # deliver the same command:issued again: a second outbox item, as a replayed stream record would be
    ddb = stack.aws("dynamodb")
    ddb.put_item(TableName=stack.environment["OUTBOX_TABLE"], Item={
        "id": {"S": "01DUPLICATE" + issued["commandId"][11:]}, "orgId": {"S": _org_of(stack, issued["commandId"])},
        "event": {"S": "command:issued"},
        "data": {"S": json.dumps({k: v for k, v in issued.items()})}, "agentId": {"S": fleet["agent"]["agentId"]},
        "at": {"S": issued["createdAt"]}, "ttl": {"N": str(int(time.time()) + 3600)}})
    wait_until(lambda: _duplicates(gateway) > before, 5, "the second delivery never arrived")
    again = command(fleet, issued["commandId"])
    assert again["ackedAt"] == first["ackedAt"] and again["result"] == first["result"]  # not run or acked again


def _duplicates(gateway: GatewayProcess) -> float:
    text = urllib.request.urlopen(gateway.url + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith('gateway_commands_total{status="duplicate"}'):
            return float(line.split()[-1])
    return 0.0


def _org_of(stack, command_id: str) -> str:
    ddb = stack.aws("dynamodb")
    items = ddb.scan(TableName=stack.environment["MAIN_TABLE"], FilterExpression="commandId = :c",
                     ExpressionAttributeValues={":c": {"S": command_id}})["Items"]
    return items[0]["orgId"]["S"]


def test_the_control_channel_renews_its_connection_and_keeps_working(fleet, tmp_path):
    """GATEWAY_WS_RENEW_SECONDS (6600 s by default, under API Gateway's 2 h) made short: it reconnects by itself."""
    gateway = GatewayProcess(fleet["url"], fleet["agent"]["apiKey"], tmp_path / "renew.db",
                             GATEWAY_WS_RENEW_SECONDS="1").start()
    try:
        status = lambda: call(gateway.url, "GET", "/health").json["checks"]["controlChannel"]  # noqa: E731
        wait_until(lambda: status()["connections"] >= 3, 20, "never renewed")
        wait_until(lambda: status()["connected"], 10, "not connected after renewing")
        issued = call(fleet["url"], "POST", f"/agents/{fleet['agent']['agentId']}/commands", fleet["ops"],
                      {"type": "ping"}).json
        wait_until(lambda: command(fleet, issued["commandId"])["status"] == "acked", 10, "never acked")
    finally:
        assert gateway.stop() == 0
