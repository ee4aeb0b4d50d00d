"""The edge gateway against a real (tiny) HTTP control plane: input validation, the disk cap, group
commit, Retry-After, quarantine, flush, health and metrics. No control plane internals involved."""
from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from edge_gateway.config import Config
from edge_gateway.gateway import Gateway
from tests.e2e.client import call
from tests.support.raw_http import exchange
from tests.edge.fake_control_plane import FakeControlPlane


@pytest.fixture
def cp():
    fake = FakeControlPlane()
    yield fake
    fake.close()


def make_gateway(tmp_path, cp_url: str, **overrides) -> Gateway:
    settings = dict(control_plane_url=cp_url, api_key="agent-key", db_path=str(tmp_path / "gw.db"), port=0,
                    ws_url="ws://127.0.0.1:9/ws", agent_id="agent-1", linger_seconds=0.05, backoff_base=0.05,
                    backoff_cap=0.5, command_poll_seconds=3600)
    settings.update(overrides)
    gateway = Gateway(Config(**settings))
    gateway.start()
    return gateway


@pytest.fixture
def gw(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url, linger_seconds=3600)  # uploads only on flush unless a test says so
    yield gateway
    gateway.stop()


def url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.api.port}"


def raw_post(base: str, path: str, data: bytes, content_type: str = "application/json"):
    request = urllib.request.Request(base + path, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def rows(gateway: Gateway) -> int:
    with sqlite3.connect(gateway.config.db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]


# --- input validation -------------------------------------------------------------------

@pytest.mark.parametrize("body, status, field", [
    (b"not json", 400, None),
    (b"[1, 2]", 400, None),
    (b'{"data": {"a": 1}}', 400, "table"),
    (b'{"table": "t;drop table records", "data": 1}', 400, "table"),
    (b'{"table": "t\\"x", "data": 1}', 400, "table"),
    (b'{"table": "t\'x", "data": 1}', 400, "table"),
    (b'{"table": "", "data": 1}', 400, "table"),
    (b'{"table": 5, "data": 1}', 400, "table"),
    (b'{"table": "t"}', 400, "data"),
    (b'{"table": "t", "records": []}', 400, "records"),
    (b'{"table": "t", "records": {"a": 1}}', 400, "records"),
    (b'{"table": "t", "data": NaN}', 400, None),
    (b'{"table": "t", "data": 1, "tabel": "x"}', 400, "tabel"),
])
def test_bad_input_is_4xx_and_stores_nothing(gw, body, status, field):
    got, answer = raw_post(url(gw), "/buffer/store", body)
    assert got == status, answer
    assert answer["error"]["code"] == "VALIDATION_ERROR"
    if field:
        assert answer["error"]["details"][0]["field"] == field
    assert rows(gw) == 0
    assert gw.buffer.counters["stored"] == 0
    assert call(url(gw), "GET", "/buffer/stats").json["invalidStores"] == 1


def test_a_300_kib_record_is_413_and_nothing_of_its_store_is_kept(gw):
    big = {"blob": "x" * (300 * 1024)}
    r = call(url(gw), "POST", "/buffer/store", body={"table": "t", "records": [{"ok": 1}, big]})
    assert r.status == 413 and r.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert r.json["error"]["details"][0]["field"] == "records.1"
    r = call(url(gw), "POST", "/buffer/store", body={"table": "t", "data": big})
    assert r.status == 413
    assert rows(gw) == 0


def test_unicode_round_trips_and_a_lone_surrogate_is_refused_at_store_time(gw, cp):
    # The control plane's /ingest refuses a lone surrogate (tests/handlers/test_ingest.py): stored here,
    # it would only be quarantined later. Refused now, naming the field; a pair (an emoji) is fine.
    for body, field in [(b'{"table": "t", "records": [{"ok": 1}, {"s": "\\ud800"}]}', "records.1.s"),
                        (b'{"table": "t", "data": {"\\udfff": 1}}', "data"),
                        (b'{"table": "t", "data": ["\xed\xa0\x80"]}', "data.0")]:  # UTF-8 bytes of U+D800
        got, answer = raw_post(url(gw), "/buffer/store", body)
        assert got == 400 and answer["error"]["details"][0]["field"] == field, answer
    assert rows(gw) == 0
    r = raw_post(url(gw), "/buffer/store", b'{"table": "t", "records": [{"s": "\\ud83d\\ude00 \\u00e9"}, '
                                           b'{"s": "h\xc3\xa9 \xe2\x82\xac"}]}')
    assert r[0] == 201, r
    assert call(url(gw), "POST", "/uplink/flush").json["uploaded"] == 2
    assert sorted(v["data"]["s"] for v in cp.records.values()) == sorted(["\U0001f600 \u00e9", "h\u00e9 \u20ac"])


def test_unknown_route_and_wrong_method(gw):
    assert call(url(gw), "GET", "/nope").status == 404
    assert call(url(gw), "GET", "/buffer/store").status == 405


# --- storing ---------------------------------------------------------------------------

def test_store_single_and_many(gw):
    r = call(url(gw), "POST", "/buffer/store", body={"table": "temps", "data": {"c": 21.5}})
    assert r.status == 201 and r.json["stored"] == 1
    r = call(url(gw), "POST", "/buffer/store", body={"table": "temps", "records": [{"c": i} for i in range(5)]})
    assert r.status == 201 and r.json["stored"] == 5 and len(set(r.json["recordIds"])) == 5
    stats = call(url(gw), "GET", "/buffer/stats").json
    assert stats["backlog"] == 6 and stats["counters"]["stored"] == 6


def test_concurrent_stores_share_commits(gw, cp):
    """32 clients x 20 stores: every record stored, in fewer commits than stores (group commit)."""
    def client(n: int) -> None:
        for _ in range(20):
            r = call(url(gw), "POST", "/buffer/store", body={"table": "t", "records": [{"n": n}] * 10})
            assert r.status == 201

    commits_before = gw.buffer.commits
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(client, range(32)))
    # the uplink starts on full batches meanwhile: what left the buffer arrived upstream
    gw.uplink.stop()  # (after its in-flight batch was acknowledged)
    assert rows(gw) + len(cp.records) == 32 * 20 * 10 == gw.buffer.counters["stored"]
    assert gw.buffer.commits - commits_before < 32 * 20


def test_disk_cap_refuses_with_507_and_counts(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url, max_db_mb=0.01, linger_seconds=3600)  # ~10 KB
    try:
        stored = 0
        while True:
            r = call(url(gateway), "POST", "/buffer/store", body={"table": "t", "data": {"x": "y" * 500}})
            if r.status != 201:
                break
            stored += 1
        assert r.status == 507 and r.json["error"]["code"] == "INSUFFICIENT_STORAGE"
        assert "disk cap" in r.json["error"]["message"] and "nothing was stored" in r.json["error"]["message"]
        assert rows(gateway) == stored
        stats = call(url(gateway), "GET", "/buffer/stats").json
        assert stats["counters"]["refused"] == 1 and stats["counters"]["refusedRecords"] == 1
        text = urllib.request.urlopen(url(gateway) + "/metrics").read().decode()
        assert "gateway_stores_refused_total 1.0" in text
        assert call(url(gateway), "GET", "/health").json["checks"]["buffer"]["refused"] == 1
        # the uplink drains the buffer, then stores are accepted again
        assert call(url(gateway), "POST", "/uplink/flush").json["uploaded"] == stored
        assert call(url(gateway), "POST", "/buffer/store", body={"table": "t", "data": 1}).status == 201
    finally:
        gateway.stop()


def test_drop_oldest_mode_counts_drops(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url, max_db_mb=0.01, drop_oldest=True, linger_seconds=3600)
    try:
        ids = []
        for i in range(100):
            r = call(url(gateway), "POST", "/buffer/store", body={"table": "t", "data": {"i": i, "pad": "y" * 300}})
            assert r.status == 201
            ids.extend(r.json["recordIds"])
        stats = call(url(gateway), "GET", "/buffer/stats").json
        assert stats["counters"]["dropped"] > 0
        assert stats["counters"]["dropped"] + stats["backlog"] == 100
        assert stats["usedBytes"] <= stats["capBytes"]
        text = urllib.request.urlopen(url(gateway) + "/metrics").read().decode()
        assert f"gateway_records_dropped_total {float(stats['counters']['dropped'])}" in text
        call(url(gateway), "POST", "/uplink/flush")
        assert set(cp.records) == set(ids[-stats["backlog"]:])  # the newest survived
    finally:
        gateway.stop()


# --- uplink ----------------------------------------------------------------------------

def test_flush_uploads_and_deletes_only_after_ack(gw, cp):
    call(url(gw), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(1200)]})
    r = call(url(gw), "POST", "/uplink/flush").json
    # (full batches may already have gone in the background: the flush answers for what it sent)
    assert r["ok"] and r["error"] is None and r["remaining"] == 0 and r["duplicates"] == 0
    assert 0 <= r["uploaded"] <= 1200
    assert len(cp.records) == 1200 and rows(gw) == 0


def test_a_failed_upload_keeps_the_records(gw, cp):
    call(url(gw), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(10)]})
    cp.script = lambda records: (500, {}, {"error": {"code": "INTERNAL"}})
    r = call(url(gw), "POST", "/uplink/flush")
    assert r.status == 503 and r.json["ok"] is False and r.json["remaining"] == 10
    assert rows(gw) == 10
    cp.script = None
    assert call(url(gw), "POST", "/uplink/flush").json["uploaded"] == 10


def test_a_lost_answer_is_resent_and_counted_as_duplicates(gw, cp):
    call(url(gw), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(10)]})
    real = None

    def store_then_fail(records):
        for r in records:
            cp.records[r["recordId"]] = r
        return (502, {}, {})  # stored, but the answer is lost

    cp.script = store_then_fail
    call(url(gw), "POST", "/uplink/flush")
    cp.script = real
    r = call(url(gw), "POST", "/uplink/flush").json
    assert r["uploaded"] == 0 and r["duplicates"] == 10 and rows(gw) == 0
    assert len(cp.records) == 10


def test_429_retry_after_2_waits_at_least_2_seconds(tmp_path, cp):
    answers = iter([(429, {"Retry-After": "2"}, {"error": {"code": "RATE_LIMITED"}})])
    cp.script = lambda records: next(answers, None)
    gateway = make_gateway(tmp_path, cp.url)
    try:
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(5)]})
        deadline = time.monotonic() + 15
        while len(cp.records) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(cp.records) == 5
        (t429, s429, _), (t_ok, s_ok, _) = cp.calls[0], cp.calls[1]
        assert (s429, s_ok) == (429, 200)
        assert t_ok - t429 >= 2.0
        stats = call(url(gateway), "GET", "/buffer/stats").json
        assert stats["counters"]["retries"] == 1
        assert "gateway_uplink_retries_total 1.0" in urllib.request.urlopen(url(gateway) + "/metrics").read().decode()
    finally:
        gateway.stop()


def test_503_retry_after_is_honoured_too(tmp_path, cp):
    answers = iter([(503, {"Retry-After": "1"}, {"error": {"code": "UNAVAILABLE"}})])
    cp.script = lambda records: next(answers, None)
    gateway = make_gateway(tmp_path, cp.url)
    try:
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "data": 1})
        deadline = time.monotonic() + 10
        while not cp.records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cp.calls[1][0] - cp.calls[0][0] >= 1.0
    finally:
        gateway.stop()


def test_a_400_batch_goes_to_quarantine_and_the_rest_keeps_flowing(tmp_path, cp):
    def reject_poison(records):
        if any(isinstance(r["data"], dict) and r["data"].get("poison") for r in records):
            return (400, {}, {"error": {"code": "VALIDATION_ERROR", "message": "records.3.data: bad"}})
        return None

    cp.script = reject_poison
    gateway = make_gateway(tmp_path, cp.url, linger_seconds=3600)
    try:
        data = [{"i": i} for i in range(100)]
        data[37] = {"poison": True}
        r = call(url(gateway), "POST", "/buffer/store", body={"table": "t", "records": data})
        poison_id = r.json["recordIds"][37]
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "records": [{"later": i} for i in range(50)]})
        result = call(url(gateway), "POST", "/uplink/flush").json
        assert result["ok"] and result["quarantined"] == 1 and result["uploaded"] == 149 and result["remaining"] == 0
        assert len(cp.records) == 149 and poison_id not in cp.records
        q = call(url(gateway), "GET", "/buffer/quarantine").json
        assert q["count"] == 1 and q["items"][0]["recordId"] == poison_id and q["items"][0]["status"] == 400
        assert "bad" in q["items"][0]["error"]
        assert call(url(gateway), "GET", "/buffer/stats").json["counters"]["quarantined"] == 1
        text = urllib.request.urlopen(url(gateway) + "/metrics").read().decode()
        assert "gateway_records_quarantined_total 1.0" in text
        # and the uplink keeps flowing afterwards
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "data": {"after": 1}})
        assert call(url(gateway), "POST", "/uplink/flush").json["uploaded"] == 1
    finally:
        gateway.stop()


def test_401_keeps_the_records_and_does_not_quarantine(gw, cp):
    cp.script = lambda records: (401, {}, {"error": {"code": "UNAUTHORIZED"}})
    call(url(gw), "POST", "/buffer/store", body={"table": "t", "data": 1})
    assert call(url(gw), "POST", "/uplink/flush").json["ok"] is False
    assert rows(gw) == 1 and gw.buffer.counters["quarantined"] == 0


def test_health_turns_503_when_the_uplink_fails_too_long(tmp_path, cp):
    cp.script = lambda records: (500, {}, {})
    gateway = make_gateway(tmp_path, cp.url, unhealthy_after_seconds=0.3)
    try:
        assert call(url(gateway), "GET", "/health").status == 200
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "data": 1})
        deadline = time.monotonic() + 10
        while call(url(gateway), "GET", "/health").status != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        health = call(url(gateway), "GET", "/health")
        assert health.status == 503
        up = health.json["checks"]["uplink"]
        assert up["consecutiveFailures"] >= 1 and up["backlog"] == 1 and up["lastSuccess"] is None
        assert "controlChannel" in health.json["checks"] and "buffer" in health.json["checks"]
        cp.script = None
        call(url(gateway), "POST", "/uplink/flush")
        health = call(url(gateway), "GET", "/health")
        assert health.status == 200 and health.json["checks"]["uplink"]["lastSuccess"]
    finally:
        gateway.stop()


def test_metrics_exposes_every_counter_and_the_latency_histogram(gw, cp):
    call(url(gw), "POST", "/buffer/store", body={"table": "t", "records": [{"i": 1}, {"i": 2}]})
    call(url(gw), "POST", "/uplink/flush")
    text = urllib.request.urlopen(url(gw) + "/metrics").read().decode()
    for name in ("gateway_records_stored_total 2.0", "gateway_records_uplinked_total 2.0",
                 "gateway_records_duplicates_total", "gateway_records_dropped_total",
                 "gateway_records_quarantined_total", "gateway_uplink_retries_total",
                 "gateway_backlog_records 0.0", "gateway_uplink_latency_seconds_bucket"):
        assert name in text, name


def test_graceful_stop_finishes_and_checkpoints(tmp_path, cp):
    gateway = make_gateway(tmp_path, cp.url, linger_seconds=3600)
    call(url(gateway), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(50)]})
    gateway.stop()
    wal = tmp_path / "gw.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed into the database file
    with pytest.raises(OSError):
        urllib.request.urlopen(url(gateway) + "/health", timeout=2)
    again = make_gateway(tmp_path, cp.url, linger_seconds=3600)
    try:
        assert again.buffer.backlog == 50 and again.buffer.counters["stored"] == 50
    finally:
        again.stop()


def test_the_upload_body_embeds_stored_json_exactly():
    from edge_gateway.api import parse_store
    from edge_gateway.buffer import StoredRecord
    from edge_gateway.uplink import encode_batch

    values = [{"a": [1, 2.5, None, True]}, "x\"y\\z", 0, [], {"nested": {"k": "\u20ac\U0001f600"}}]
    records = parse_store(json.dumps({"table": "t.x-1", "records": values}).encode(), 1_700_000_000_000)
    stored = [StoredRecord(r.record_id, r.table, r.data, r.ts, seq=i) for i, r in enumerate(records)]
    body = json.loads(encode_batch(stored))
    assert [r["data"] for r in body["records"]] == values
    assert body["records"][0] == {"recordId": records[0].record_id, "table": "t.x-1", "data": values[0],
                                  "ts": "2023-11-14T22:13:20.000Z"}


def test_the_websocket_url_carries_the_agent_key(tmp_path, cp):
    from edge_gateway.config import Config
    from edge_gateway.gateway import Gateway

    base = dict(control_plane_url="https://abc.execute-api.eu-west-1.amazonaws.com/api", api_key="cpk.K.s/+=",
                db_path=str(tmp_path / "a.db"), port=0)
    local = Gateway(Config(**base))
    assert local.control.ws_url == "wss://abc.execute-api.eu-west-1.amazonaws.com/api/ws?token=cpk.K.s%2F%2B%3D"
    local.buffer.close()
    local.api.server.server_close()
    aws = Gateway(Config(**base | {"db_path": str(tmp_path / "b.db"),
                                   "ws_url": "wss://ws1.execute-api.eu-west-1.amazonaws.com/prod"}))
    assert aws.control.ws_url == "wss://ws1.execute-api.eu-west-1.amazonaws.com/prod?token=cpk.K.s%2F%2B%3D"
    aws.buffer.close()
    aws.api.server.server_close()


def test_a_timeout_halves_the_next_batch_and_success_grows_it_back(tmp_path, cp):
    sizes = []

    def slow_first(records):
        sizes.append(len(records))
        if len(sizes) == 1:
            time.sleep(1.5)  # longer than the gateway's request timeout: the answer never arrives in time
        return None

    cp.script = slow_first
    gateway = make_gateway(tmp_path, cp.url, request_timeout=1.0, linger_seconds=3600, batch_records=100)
    try:
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(300)]})
        deadline = time.monotonic() + 20
        while call(url(gateway), "POST", "/uplink/flush").json["remaining"] and time.monotonic() < deadline:
            pass  # (the background uplink may take batches too; the first one times out either way)
        assert sizes[:3] == [100, 50, 100]  # halved after the timeout, back to full after a success
        assert len(cp.records) == 300  # the timed-out batch was stored upstream: resent as duplicates
    finally:
        gateway.stop()


# --- HTTP framing: every answer in the error shape, never a 500 or a hang (issue 18, finding 8) ----------

def _store_request(headers: str, body: bytes = b"") -> bytes:
    return b"POST /buffer/store HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" + \
        headers.encode() + b"\r\n" + body


STORE_BODY = b'{"table": "t", "data": {"a": 1}}'


@pytest.mark.parametrize("headers", [
    "Content-Length: abc\r\n",
    "Content-Length: -1\r\n",
    "Content-Length: +5\r\n",
    "Content-Length: 1e3\r\n",
    "Content-Length: 99999999999999999999999999\r\n",
    "Content-Length: 5\r\nContent-Length: 6\r\n",
    "Transfer-Encoding: gzip\r\n",
])
def test_a_bad_content_length_is_400_in_the_error_shape_and_closes(gw, headers):
    reply = exchange("127.0.0.1", gw.api.port, _store_request(headers, STORE_BODY), timeout=5)
    assert reply.status == 400, reply
    assert reply.json["error"]["code"] == "VALIDATION_ERROR"
    assert reply.json["error"]["details"][0]["field"] in ("Content-Length", "Transfer-Encoding")
    assert reply.closed  # what followed the headers cannot be framed: never read as the next request
    assert rows(gw) == 0


def test_a_body_without_content_length_is_400_and_never_read_as_the_next_request(gw):
    reply = exchange("127.0.0.1", gw.api.port, _store_request("", STORE_BODY), timeout=5)
    assert reply.status == 400 and reply.json["error"]["details"][0]["field"] == "Content-Length", reply
    assert reply.closed and rows(gw) == 0
    # a POST without a body needs no Content-Length
    flushed = exchange("127.0.0.1", gw.api.port, b"POST /uplink/flush HTTP/1.1\r\nHost: gw\r\n\r\n", timeout=5)
    assert flushed.status == 200, flushed


def test_a_chunked_body_is_read_and_an_over_limit_one_is_413(gw):
    from edge_gateway.api import MAX_REQUEST_BYTES

    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (STORE_BODY[:10], STORE_BODY[10:])) + b"0\r\n\r\n"
    reply = exchange("127.0.0.1", gw.api.port, _store_request("Transfer-Encoding: chunked\r\n", chunks))
    assert reply.status == 201, reply
    piece = b"x" * (1024 * 1024)
    over = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(MAX_REQUEST_BYTES // len(piece) + 2))
    reply = exchange("127.0.0.1", gw.api.port, _store_request("Transfer-Encoding: chunked\r\n", over + b"0\r\n\r\n"))
    assert reply.status == 413 and reply.json["error"]["code"] == "PAYLOAD_TOO_LARGE", reply
    bad = exchange("127.0.0.1", gw.api.port, _store_request("Transfer-Encoding: chunked\r\n", b"zz\r\nab\r\n0\r\n\r\n"))
    assert bad.status == 400 and bad.closed, bad
    assert rows(gw) == 1


@pytest.mark.parametrize("megabytes", [10, 50])
def test_an_over_limit_body_is_a_413_the_client_receives(gw, megabytes):
    """http.client sends the whole body before reading: closing on it unread would reset the connection."""
    import http.client

    import requests

    conn = http.client.HTTPConnection("127.0.0.1", gw.api.port, timeout=60)
    try:
        conn.request("POST", "/buffer/store", body=b"x" * (megabytes * 1024 * 1024),
                     headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 413 and json.loads(reply.read())["error"]["code"] == "PAYLOAD_TOO_LARGE"
    finally:
        conn.close()
    r = requests.post(url(gw) + "/buffer/store", data=b"x" * (megabytes * 1024 * 1024),
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert call(url(gw), "GET", "/health").status == 200  # and the gateway is fine


def test_malformed_requests_and_unknown_methods_answer_in_the_error_shape(gw):
    for request, status in [(b"GARBAGE\r\n\r\n", 400), (b"BREW /buffer/stats HTTP/1.1\r\nHost: gw\r\n\r\n", 405),
                            (b"GET /buffer/stats HTTP/1.1\r\nHost: gw\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431)]:
        reply = exchange("127.0.0.1", gw.api.port, request, timeout=5)
        assert reply.status == status, reply
        assert reply.headers["content-type"] == "application/json" and "code" in reply.json["error"], reply


# --- numbers and names the control plane would refuse: refused at store time (issue 18, finding 9) ---------

@pytest.mark.parametrize("body, field", [
    (b'{"table": "t", "data": 1e400}', "data"),
    (b'{"table": "t", "data": {"x": -1e400}}', "data.x"),
    (b'{"table": "t", "data": {"x": [1, Infinity]}}', "data.x.1"),
    (b'{"table": "t", "data": -Infinity}', "data"),
    (b'{"table": "t", "records": [{"ok": 1}, {"x": NaN}]}', "records.1.x"),
    (b'{"table": "t", "data": 1' + b"0" * 400 + b"}", "data"),
    (b'{"table": "t", "data": 1.5e200}', "data"),
    (b'{"table": "t", "data": ' + b"1" * 39 + b"}", "data"),
    (b'{"table": "t\\n", "data": 1}', "table"),
    (b'{"table": "t\\r", "data": 1}', "table"),
])
def test_numbers_and_names_the_control_plane_refuses_are_400_at_store_time(gw, body, field):
    got, answer = raw_post(url(gw), "/buffer/store", body)
    assert got == 400, answer
    assert answer["error"]["code"] == "VALIDATION_ERROR" and answer["error"]["details"][0]["field"] == field, answer
    assert rows(gw) == 0


# --- a manual flush inside a Retry-After window is deferred (issue 18, finding 9) ------------------------

def test_a_flush_during_a_retry_after_window_is_deferred_and_the_loop_waits_too(tmp_path, cp):
    answers = iter([(429, {"Retry-After": "3"}, {"error": {"code": "RATE_LIMITED"}})])
    cp.script = lambda records: next(answers, None)
    gateway = make_gateway(tmp_path, cp.url)
    try:
        call(url(gateway), "POST", "/buffer/store", body={"table": "t", "records": [{"i": i} for i in range(3)]})
        first = call(url(gateway), "POST", "/uplink/flush")  # sends, or finds the loop's 429 window already open
        deadline = time.monotonic() + 5
        while not cp.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cp.calls[0][1] == 429
        if first.status != 202:
            assert first.status == 503 and first.json["retryAfterSeconds"] > 2, first.json
            assert 2 < float(first.headers["Retry-After"]) <= 3
        deferred = call(url(gateway), "POST", "/uplink/flush")
        assert deferred.status == 202, deferred.json
        assert deferred.json["deferred"] is True and 0 < deferred.json["retryAfterSeconds"] <= 3
        assert deferred.json["remaining"] == 3 and int(deferred.headers["Retry-After"]) >= 1
        assert len(cp.calls) == 1  # nothing sent inside the window
        while len(cp.records) < 3 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert len(cp.records) == 3 and cp.calls[1][0] - cp.calls[0][0] >= 3.0  # the loop honoured it
        done = call(url(gateway), "POST", "/uplink/flush")
        assert done.status == 200 and done.json["ok"] is True and done.json["remaining"] == 0
        assert "deferred" not in done.json
    finally:
        gateway.stop()
