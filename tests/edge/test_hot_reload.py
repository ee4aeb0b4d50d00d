"""The configuration document applied without a restart, against a real tiny HTTP control plane: adapters
started, reconfigured and stopped; limits and log level changed; a document that cannot be applied reported
failed while the last good one keeps running; the last good one on disk starts the gateway without the
control plane; `.env`; GET /buffer/records."""
from __future__ import annotations

import json
import logging
import sys
import urllib.request

import pytest

from edge_gateway.config import Config
from tests.edge.fake_control_plane import FakeControlPlane
from tests.edge.test_adapters import wait_for
from tests.edge.test_gateway import make_gateway, url


@pytest.fixture
def cp():
    fake = FakeControlPlane()
    yield fake
    fake.close()


def exec_adapter(name: str, value: int, interval: float = 0.1) -> dict:
    return {"name": name, "type": "exec", "table": "stats", "intervalSeconds": interval, "timeoutSeconds": 5,
            "command": [sys.executable, "-c", f"print('{{\"v\": {value}}}')"]}


def values(gateway, table: str = "stats") -> set:
    return {r["data"]["v"] for r in gateway.buffer.waiting(table, 100_000)}


def test_documents_apply_in_place_and_one_that_cannot_apply_leaves_the_last_good_running(tmp_path, cp):
    cp.config = {"version": 1, "desired": {
        "logLevel": "WARN", "uplink": {"batchRecords": 50, "lingerMs": 3_600_000 // 1000},
        "buffer": {"maxDbMb": 64, "onFull": "drop-oldest"}, "adapters": [exec_adapter("a", 1)]}}
    gateway = make_gateway(tmp_path, cp.url, linger_seconds=3600)
    try:
        wait_for(lambda: cp.reports == [{"version": 1, "status": "applied"}], what="version 1 reported applied")
        wait_for(lambda: 1 in values(gateway), what="adapter a's records")
        assert logging.getLogger("edge_gateway").level == logging.WARNING
        assert gateway.uplink.batch_records == 50 and gateway.uplink.idle_interval == 3.6
        assert gateway.buffer.max_bytes == 64 * 1024 * 1024 and gateway.buffer.drop_oldest
        saved = json.loads((tmp_path / "gw.db.config.json").read_text())
        assert saved["version"] == 1 and saved["desired"] == cp.config["desired"]
        adapter_a = gateway.adapters.adapters["a"]

        # version 2: a reconfigured, b added: hot, no restart
        cp.config = {"version": 2, "desired": {"adapters": [exec_adapter("a", 2), exec_adapter("b", 3)]}}
        gateway.control._on_message(json.dumps({"event": "config:changed", "data": {"agentId": "agent-1",
                                                                                     "version": 2}}))
        wait_for(lambda: cp.reports[-1] == {"version": 2, "status": "applied"}, what="version 2 applied")
        wait_for(lambda: {2, 3} <= values(gateway), what="a's new output and b's")
        assert gateway.adapters.adapters["a"] is adapter_a  # reconfigured, not replaced
        assert logging.getLogger("edge_gateway").level == logging.INFO  # back to the gateway's own default
        assert gateway.uplink.batch_records == gateway.config.batch_records
        assert not gateway.buffer.drop_oldest

        # version 3 cannot run here (no such program): failed, version 2 stays in force
        cp.config = {"version": 3, "desired": {"adapters": [{**exec_adapter("a", 4), "command": ["no-such-program"]}]}}
        assert gateway.remote_config.fetch() == "failed"
        assert cp.reports[-1]["version"] == 3 and cp.reports[-1]["status"] == "failed"
        assert "no-such-program" in cp.reports[-1]["error"]
        before = gateway.adapters.states()["b"]["counters"]["records"]
        wait_for(lambda: gateway.adapters.states()["b"]["counters"]["records"] > before, what="b still running")
        assert sorted(gateway.adapters.adapters) == ["a", "b"] and gateway.remote_config.applied_version == 2
        assert json.loads((tmp_path / "gw.db.config.json").read_text())["version"] == 2
        assert gateway.remote_config.fetch() == "unchanged" and len(cp.reports) == 3  # reported once

        # version 4 is invalid (an unknown key): failed, named
        cp.config = {"version": 4, "desired": {"adapters": [], "colour": "blue"}}
        assert gateway.remote_config.fetch() == "failed"
        assert "colour" in cp.reports[-1]["error"]
        health = json.load(urllib.request.urlopen(url(gateway) + "/health"))
        assert health["checks"]["configuration"]["appliedVersion"] == 2
        assert health["checks"]["configuration"]["failedVersion"] == 4
        assert set(health["checks"]["adapters"]) == {"a", "b"}
        metrics = urllib.request.urlopen(url(gateway) + "/metrics").read().decode()
        assert 'gateway_adapter_events_total{adapter="b",event="records",type="exec"}' in metrics
        assert 'gateway_config_documents_total{status="failed"} 2.0' in metrics
    finally:
        gateway.stop()

    # the control plane is gone: the gateway starts from the last good document on disk
    cp.close()
    again = make_gateway(tmp_path, cp.url)
    try:
        assert again.remote_config.applied_version == 2 and sorted(again.adapters.adapters) == ["a", "b"]
        wait_for(lambda: again.adapters.states()["b"]["counters"]["records"] > 0, what="b running again")
    finally:
        again.stop()


def test_a_failed_report_is_sent_again_at_the_next_fetch(tmp_path, cp):
    cp.config = {"version": 7, "desired": {}}
    gateway = make_gateway(tmp_path, cp.url)
    try:
        wait_for(lambda: cp.reports, what="a report")
        cp.config["reported"] = None  # the control plane lost it (or it never arrived)
        assert gateway.remote_config.fetch() == "unchanged"
        assert cp.reports == [{"version": 7, "status": "applied"}] * 2
    finally:
        gateway.stop()


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# the gateway's settings\nCONTROL_PLANE_URL=http://from-dotenv:1\n"
                      "export GATEWAY_API_KEY='key from .env'\nGATEWAY_PORT=3999\n")
    config = Config.from_env({"CONTROL_PLANE_URL": "http://from-env:2"}, dotenv_path=str(dotenv))
    assert config.control_plane_url == "http://from-env:2"
    assert config.api_key == "key from .env" and config.port == 3999
    assert Config.from_env({"CONTROL_PLANE_URL": "http://x:1", "GATEWAY_API_KEY": "k"},
                           dotenv_path=str(tmp_path / "none")).port == 3000


def test_buffer_records_shows_what_is_waiting(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url, linger_seconds=3600)
    try:
        base = url(gateway)
        for table, n in (("a", 3), ("b", 2)):
            request = urllib.request.Request(base + "/buffer/store", method="POST",
                                             data=json.dumps({"table": table, "records": [{"i": i} for i in range(n)]}).encode(),
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request).read()
        body = json.load(urllib.request.urlopen(base + "/buffer/records?table=a&limit=2"))
        assert [r["data"] for r in body["items"]] == [{"i": 0}, {"i": 1}] and body["backlog"] == 5
        assert {r["table"] for r in json.load(urllib.request.urlopen(base + "/buffer/records"))["items"]} == {"a", "b"}
        for query, field in (("limit=0", "limit"), ("limit=x", "limit"), ("table=%20", "table"), ("tbl=a", "tbl")):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + "/buffer/records?" + query)
            assert refused.value.code == 400
            assert json.load(refused.value)["error"]["details"][0]["field"] == field
    finally:
        gateway.stop()


def test_an_adapter_type_not_installed_here_is_reported_failed(tmp_path, cp, monkeypatch):
    """A valid document naming a type this gateway has no entry point for (a slimmed install): failed, named."""
    import edge_gateway.adapters as adapters

    real = adapters.installed_types
    monkeypatch.setattr(adapters, "installed_types", lambda: {k: v for k, v in real().items() if k != "prometheus"})
    cp.config = {"version": 3, "desired": {"adapters": [
        {"name": "scrape", "type": "prometheus", "table": "m", "url": "http://127.0.0.1:9/metrics",
         "intervalSeconds": 10}]}}
    gateway = make_gateway(tmp_path, cp.url)
    try:
        wait_for(lambda: cp.reports, what="a report")
        assert cp.reports[0]["status"] == "failed" and "not installed" in cp.reports[0]["error"]
        assert gateway.adapters.adapters == {}
    finally:
        gateway.stop()


def test_the_slow_poll_and_every_reconnect_fetch_the_document(tmp_path, cp):
    from tests.edge.test_connection_life import Server

    server = Server()
    cp.config = {"version": 1, "desired": {}}
    gateway = make_gateway(tmp_path, cp.url, ws_url=server.url, config_poll_seconds=0.3, ws_renew_seconds=3600)
    try:
        wait_for(lambda: cp.reports == [{"version": 1, "status": "applied"}], what="version 1")
        cp.config = {"version": 2, "desired": {"logLevel": "ERROR"}}  # no event: only the poll can find it
        wait_for(lambda: cp.reports[-1] == {"version": 2, "status": "applied"}, what="version 2 by the poll")
        gateway.remote_config.poll_seconds = 3600
        fetched = gateway.remote_config.fetches
        gateway.remote_config.request_fetch()  # restart the wait with the long interval
        wait_for(lambda: gateway.remote_config.fetches > fetched, what="that fetch done")
        wait_for(lambda: len(server.open_now()) == 1, what="connected")
        cp.config = {"version": 3, "desired": {}}
        for c in server.open_now():
            c["ws"].close()  # the server drops the connection; the reconnect fetches
        wait_for(lambda: cp.reports[-1] == {"version": 3, "status": "applied"}, what="version 3 after the reconnect")
        assert gateway.control.connections >= 2
    finally:
        gateway.stop()
        server.close()
