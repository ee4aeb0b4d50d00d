"""The gateway's command channel through a compressed day of API Gateway's WebSocket limits.

The local stack runs with WS_IDLE_TIMEOUT_SECONDS and WS_MAX_CONNECTION_SECONDS shortened (what is
10 minutes and 2 hours on AWS is well under a second here). Two real `python -m edge_gateway`
processes, each its own agent, while commands are issued to both the whole time:

- `renewing`: pings inside the idle limit and renews before the cap (overlap: the new connection
  is open before the old one closes); the server never has to close it;
- `capped`: pings, but renews only after the cap, so the server closes every connection at the cap
  and the gateway reconnects (a gap each time, covered by the catch-up poll after each connect).

Each goes through at least 100 reconnections; every command issued meanwhile is acked, and run
exactly once (the gateway's own count of handler runs equals the number issued).
"""
from __future__ import annotations

import threading
import urllib.request

import pytest

from devstack.testing import running_devstack
from tests.e2e.client import call
from tests.e2e.test_edge_gateway_e2e import GatewayProcess, wait_until

pytestmark = pytest.mark.e2e

IDLE = 0.3
CAP = 0.4
RECONNECTIONS = 100


@pytest.fixture(scope="module")
def stack():
    with running_devstack(env={"WS_IDLE_TIMEOUT_SECONDS": str(IDLE), "WS_MAX_CONNECTION_SECONDS": str(CAP)}) as s:
        yield s


def metric(gateway: GatewayProcess, line_start: str) -> float:
    text = urllib.request.urlopen(gateway.url + "/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def channel(gateway: GatewayProcess) -> dict:
    return call(gateway.url, "GET", "/health").json["checks"]["controlChannel"]


def test_the_command_channel_survives_100_forced_reconnections_with_every_command_run_once(stack, tmp_path):
    url = stack.url
    org = call(url, "POST", "/orgs", stack.admin_api_key, {"name": "connection life"}).json
    ops = call(url, "POST", "/keys", org["adminKey"], {"name": "ops", "scope": "operator"}).json["apiKey"]
    gateways: dict[str, tuple[str, GatewayProcess]] = {}
    settings = {"renewing": {"GATEWAY_WS_RENEW_SECONDS": str(CAP * 0.5)},
                "capped": {"GATEWAY_WS_RENEW_SECONDS": "3600"}}
    try:
        for name, extra in settings.items():
            agent = call(url, "POST", "/agents", ops, {"name": name}).json
            gateways[name] = (agent["agentId"], GatewayProcess(
                url, agent["apiKey"], tmp_path / f"{name}.db", GATEWAY_WS_PING_SECONDS=str(IDLE / 3),
                GATEWAY_COMMAND_POLL_SECONDS="1", GATEWAY_CONFIG_POLL_SECONDS="3600", **extra).start())
        for _, gateway in gateways.values():
            wait_until(lambda g=gateway: channel(g)["connected"], 20, "never connected")
        start_connections = {name: channel(g)["connections"] for name, (_, g) in gateways.items()}

        issued: dict[str, list[str]] = {name: [] for name in gateways}
        stop = threading.Event()
        errors: list[BaseException] = []

        def issue() -> None:
            try:
                while not stop.is_set():
                    for name, (agent_id, _) in gateways.items():
                        reply = call(url, "POST", f"/agents/{agent_id}/commands", ops, {"type": "ping"})
                        assert reply.status == 201, reply.json
                        issued[name].append(reply.json["commandId"])
                    stop.wait(0.1)
            except BaseException as e:  # noqa: BLE001 - reported by the test thread
                errors.append(e)

        issuer = threading.Thread(target=issue, daemon=True)
        issuer.start()
        try:
            wait_until(lambda: all(channel(g)["connections"] - start_connections[n] >= RECONNECTIONS
                                   for n, (_, g) in gateways.items()), 240, "100 reconnections each")
        finally:
            stop.set()
            issuer.join(30)
        assert not errors, errors
        renewing, capped = channel(gateways["renewing"][1]), channel(gateways["capped"][1])
        assert renewing["renewals"] >= RECONNECTIONS          # replaced before the cap, with overlap
        assert capped["renewals"] == 0                         # closed by the server at the cap every time
        assert renewing["pings"] > 0 and capped["pings"] > 0   # what keeps the idle limit away

        for name, (agent_id, gateway) in gateways.items():
            ids = issued[name]
            assert len(ids) >= 100, len(ids)

            def all_acked(agent_id: str = agent_id) -> bool:
                pending = call(url, "GET", f"/agents/{agent_id}/commands?status=pending&limit=100", ops).json
                return not pending["items"]

            wait_until(all_acked, 60, f"{name}: commands still pending")
            for command_id in ids:
                done = call(url, "GET", f"/commands/{command_id}", ops).json
                assert done["status"] == "acked", (name, done)
            # each command's handler ran once: a second delivery (both sockets of an overlap, the socket and
            # the catch-up poll) is found in the gateway's done-table and not run or acked again
            assert metric(gateway, "gateway_command_runs_total") == len(ids), name
            assert metric(gateway, 'gateway_commands_total{status="acked"}') == len(ids), name  # one ack each
    finally:
        for _, gateway in gateways.values():
            gateway.stop()
