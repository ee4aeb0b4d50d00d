"""Device adapters against real files, real processes and a real HTTP metrics endpoint: tail (rotation by
rename and by copytruncate, kill -9 mid-file, multi-line, line cap), exec, prometheus, isolation, hot reload
through AdapterHost, and entry-point discovery (the built-ins and a third-party package's dist-info)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge_gateway.adapters import AdapterConfigError, AdapterHost, Sink, installed_types
from edge_gateway.adapters.tail import TailAdapter
from edge_gateway.buffer import Buffer

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def buffer(tmp_path):
    b = Buffer(str(tmp_path / "gw.db"), 1 << 30)
    yield b
    b.close()


def lines_in(buffer: Buffer, table: str = "logs") -> list[str]:
    return [r["data"]["line"] for r in buffer.waiting(table, 100_000)]


def fast_tail(name: str, spec: dict, sink: Sink) -> TailAdapter:
    adapter = TailAdapter(name, spec, sink)
    adapter.POLL_SECONDS = 0.02
    adapter.ROTATE_WAIT_SECONDS = 0.3
    adapter.MULTILINE_FLUSH_SECONDS = 0.3
    return adapter


def tail_spec(path, **extra) -> dict:
    return {"name": "t", "type": "tail", "table": "logs", "path": str(path), **extra}


# --- tail ---------------------------------------------------------------------------------------


def test_tail_follows_appends_and_keeps_partial_lines_until_their_end(tmp_path, buffer):
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\nthr")
    adapter = fast_tail("t", tail_spec(tmp_path / "*.log"), Sink(buffer))
    adapter.start()
    try:
        wait_for(lambda: lines_in(buffer) == ["one", "two"], what="two lines")
        with log.open("a") as f:
            f.write("ee\r\nfour\n")
        wait_for(lambda: lines_in(buffer) == ["one", "two", "three", "four"], what="four lines")
        assert adapter.state()["counters"]["records"] == 4
    finally:
        adapter.stop()


def _writer(path: Path, start: int, count: int) -> None:
    with path.open("a") as f:
        for i in range(start, start + count):
            f.write(f"line-{i:06d}\n")


def test_tail_rotation_by_rename_loses_and_repeats_nothing(tmp_path, buffer):
    log = tmp_path / "app.log"
    adapter = fast_tail("t", tail_spec(log), Sink(buffer))
    adapter.start()
    try:
        f = log.open("a")
        f.write("line-000000\n")
        f.flush()
        wait_for(lambda: adapter.counters["filesOpen"] == 1, what="the file found")  # (one never seen is not ours)
        for i in range(1, 300):
            f.write(f"line-{i:06d}\n")
        f.flush()
        os.rename(log, tmp_path / "app.log.1")
        for i in range(300, 400):  # the writer has not reopened yet: still writing to the renamed file
            f.write(f"line-{i:06d}\n")
        f.close()
        _writer(log, 400, 200)  # the new file at the name
        want = [f"line-{i:06d}" for i in range(600)]
        wait_for(lambda: sorted(lines_in(buffer)) == want, what="every line once")
        wait_for(lambda: adapter.counters["filesOpen"] == 1, what="the rotated file let go")
        assert adapter.counters["rotations"] == 1
        assert len(buffer.tail_positions("t")) == 1  # the renamed file's position is forgotten with it
    finally:
        adapter.stop()


def test_tail_rotation_by_copytruncate_reads_the_new_content_from_its_start(tmp_path, buffer):
    log = tmp_path / "app.log"
    adapter = fast_tail("t", tail_spec(log), Sink(buffer))
    adapter.start()
    try:
        _writer(log, 0, 500)
        wait_for(lambda: len(lines_in(buffer)) == 500, what="first 500")
        shutil.copy(log, tmp_path / "app.log.1")
        with log.open("r+") as f:
            f.truncate(0)
        _writer(log, 500, 50)   # shorter than before: seen by size
        wait_for(lambda: len(lines_in(buffer)) == 550, what="after the first truncate")
        shutil.copy(log, tmp_path / "app.log.2")
        with log.open("r+") as f:
            f.truncate(0)
        _writer(log, 550, 900)  # longer than before by the next read: seen by its first bytes
        want = [f"line-{i:06d}" for i in range(1450)]
        wait_for(lambda: sorted(lines_in(buffer)) == want, what="every line once")
        assert adapter.counters["truncations"] == 2
    finally:
        adapter.stop()


CHILD = textwrap.dedent("""
    import sys, time
    from edge_gateway.adapters import Sink
    from edge_gateway.adapters.tail import TailAdapter
    from edge_gateway.buffer import Buffer
    buffer = Buffer(sys.argv[1], 1 << 30, synchronous="NORMAL")
    TailAdapter.CHUNK_BYTES = 4096   # many small transactions: the kill lands between and inside them
    adapter = TailAdapter("t", {"name": "t", "type": "tail", "table": "logs", "path": sys.argv[2]}, Sink(buffer))
    adapter.POLL_SECONDS = 0.01
    adapter.start()
    print("started", flush=True)
    time.sleep(60)
""")


def test_tail_kill_9_mid_file_neither_loses_nor_repeats_a_line(tmp_path):
    log = tmp_path / "big.log"
    total = 60_000
    log.write_text("".join(f"line-{i:06d} {'x' * 40}\n" for i in range(total)))
    db = str(tmp_path / "gw.db")
    child = subprocess.Popen([sys.executable, "-c", CHILD, db, str(log)], cwd=ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == b"started"

        def stored() -> int:
            import sqlite3
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    return conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
            except sqlite3.Error:
                return 0

        wait_for(lambda: stored() > 5000, what="part of the file read")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    buffer = Buffer(db, 1 << 30)
    try:
        before = len(buffer.waiting("logs", 1000_000))
        assert 0 < before < total, "the kill must land mid-file"
        adapter = fast_tail("t", tail_spec(log), Sink(buffer))
        adapter.start()
        try:
            wait_for(lambda: buffer.backlog >= total, timeout=60, what="the rest of the file")
            time.sleep(0.2)  # nothing more may come: one more poll
        finally:
            adapter.stop()
        got = [r["data"]["line"].split()[0] for r in buffer.waiting("logs", 1000_000)]
        assert len(got) == total and sorted(got) == [f"line-{i:06d}" for i in range(total)]
    finally:
        buffer.close()


def test_tail_waits_for_room_when_the_buffer_is_full_and_loses_nothing(tmp_path):
    buffer = Buffer(str(tmp_path / "small.db"), 64 * 1024)  # far smaller than the file's records
    log = tmp_path / "app.log"
    _writer(log, 0, 5000)
    adapter = fast_tail("t", tail_spec(log), Sink(buffer))
    adapter.start()
    delivered: list[str] = []
    try:
        def drain() -> bool:  # what the uplink does: take a batch, acknowledge it
            batch = buffer.oldest(200, 1 << 20)
            if batch:
                import json as _json
                delivered.extend(_json.loads(r.data)["line"] for r in batch)
                buffer.acknowledge([r.seq for r in batch], len(batch), 0)
            return len(delivered) >= 5000

        wait_for(drain, timeout=30, what="every line through a small buffer")
        assert sorted(delivered) == [f"line-{i:06d}" for i in range(5000)]
        assert adapter.counters["bufferFull"] > 0 and adapter.counters["errors"] == 0
    finally:
        adapter.stop()
        buffer.close()


def test_tail_restart_reads_a_file_renamed_while_it_was_down(tmp_path, buffer):
    log = tmp_path / "app.log"
    _writer(log, 0, 100)
    adapter = fast_tail("t", tail_spec(log), Sink(buffer))
    adapter.start()
    wait_for(lambda: len(lines_in(buffer)) == 100, what="100 lines")
    adapter.stop()
    _writer(log, 100, 50)
    os.rename(log, tmp_path / "app.log.1")  # rotated while the adapter was down
    _writer(log, 150, 10)
    adapter = fast_tail("t", tail_spec(log), Sink(buffer))
    adapter.start()
    try:
        wait_for(lambda: sorted(lines_in(buffer)) == [f"line-{i:06d}" for i in range(160)], what="160 lines once")
    finally:
        adapter.stop()


def test_tail_multiline_records_by_start_pattern(tmp_path, buffer):
    log = tmp_path / "app.log"
    log.write_text("2026-01-01 first\n  at a\n  at b\n2026-01-02 second\n")
    adapter = fast_tail("t", tail_spec(log, multilineStart=r"^\d{4}-"), Sink(buffer))
    adapter.start()
    try:
        wait_for(lambda: lines_in(buffer) == ["2026-01-01 first\n  at a\n  at b"], what="the first record")
        with log.open("a") as f:
            f.write("  at c\n")
        # the last record is held until the file goes quiet (or a next start line arrives)
        wait_for(lambda: len(lines_in(buffer)) == 2, what="the second record after the flush")
        assert lines_in(buffer)[1] == "2026-01-02 second\n  at c"
    finally:
        adapter.stop()


def test_tail_cuts_lines_over_the_cap_and_counts_them(tmp_path, buffer):
    log = tmp_path / "app.log"
    log.write_text("short\n" + "y" * 100 + "\nafter\n")
    adapter = fast_tail("t", tail_spec(log, maxLineBytes=10), Sink(buffer))
    adapter.CHUNK_BYTES = adapter._chunk = 64  # the long line spans reads: the rest of it is skipped across them
    adapter.start()
    try:
        wait_for(lambda: lines_in(buffer) == ["short", "y" * 10, "after"], what="capped line")
        assert adapter.counters["truncatedLines"] == 1
    finally:
        adapter.stop()


def test_tail_check_refuses_a_directory_it_cannot_read(tmp_path):
    with pytest.raises(AdapterConfigError, match="does not exist"):
        TailAdapter.check(tail_spec(tmp_path / "missing" / "*.log"))
    with pytest.raises(AdapterConfigError, match="regular expression"):
        TailAdapter.check(tail_spec(tmp_path / "*.log", multilineStart="(["))
    if os.geteuid() != 0:  # root reads everything
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o000)
        with pytest.raises(AdapterConfigError, match="not readable"):
            TailAdapter.check(tail_spec(locked / "*.log"))


# --- exec ---------------------------------------------------------------------------------------


def exec_spec(name, command, interval=0.05, timeout=5.0, table="stats") -> dict:
    return {"name": name, "type": "exec", "table": table, "command": command, "intervalSeconds": interval,
            "timeoutSeconds": timeout}


def test_exec_json_output_becomes_records_and_failures_are_counted(tmp_path, buffer):
    host = AdapterHost(Sink(buffer))
    host.apply([
        exec_spec("ok", [sys.executable, "-c", "print('[{\"a\": 1}, {\"a\": 2}]')"]),
        exec_spec("lines", [sys.executable, "-c", "print('{\"b\": 1}'); print('{\"b\": 2}')"], table="lines"),
        exec_spec("bad-json", [sys.executable, "-c", "print('not json')"]),
        exec_spec("exit-3", [sys.executable, "-c", "import sys; sys.exit(3)"]),
        exec_spec("slow", [sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.2),
    ])
    try:
        states = lambda: host.states()  # noqa: E731
        wait_for(lambda: states()["ok"]["counters"]["records"] >= 4, what="records from ok")
        wait_for(lambda: states()["bad-json"]["counters"]["badOutput"] >= 1, what="bad output counted")
        wait_for(lambda: states()["exit-3"]["counters"]["failedRuns"] >= 1, what="exit status counted")
        wait_for(lambda: states()["slow"]["counters"]["timeouts"] >= 1, what="timeout counted")
        assert states()["exit-3"]["status"] == "failing" and "status 3" in states()["exit-3"]["lastError"]
        assert states()["ok"]["status"] == "running"
        assert {r["data"]["a"] for r in buffer.waiting("stats", 100)} == {1, 2}
        wait_for(lambda: [r["data"]["b"] for r in buffer.waiting("lines", 2)] == [1, 2], what="JSON lines")
    finally:
        host.stop()


def test_exec_check_refuses_a_command_that_does_not_exist():
    with pytest.raises(AdapterConfigError, match="not found"):
        installed_types()["exec"].check(exec_spec("x", ["no-such-command-anywhere"]))
    with pytest.raises(AdapterConfigError, match="does not exist"):
        installed_types()["exec"].check(exec_spec("x", ["/no/such/binary"]))


# --- prometheus ---------------------------------------------------------------------------------


@pytest.fixture
def metrics_endpoint():
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

    registry = CollectorRegistry()
    Counter("widgets", "Widgets made", ["color"], registry=registry).labels("red").inc(3)
    Gauge("temperature_celsius", "Temperature", registry=registry).set(21.5)
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            body = generate_latest(registry) if state["status"] == 200 else b"down"
            self.send_response(state["status"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics", state
    server.shutdown()
    server.server_close()


def test_prometheus_scrapes_samples_into_records_and_counts_failed_scrapes(buffer, metrics_endpoint):
    url, state = metrics_endpoint
    host = AdapterHost(Sink(buffer))
    host.apply([{"name": "local", "type": "prometheus", "table": "metrics", "url": url, "intervalSeconds": 0.05}])
    try:
        wait_for(lambda: buffer.waiting("metrics", 1), what="a scrape")  # committed (backlog counts before)
        samples = {(r["data"]["name"], tuple(sorted(r["data"]["labels"].items()))): r["data"]["value"]
                   for r in buffer.waiting("metrics", 100)}
        assert samples.get(("widgets_total", (("color", "red"),))) == 3.0, buffer.waiting("metrics", 20)
        assert samples[("temperature_celsius", ())] == 21.5
        state["status"] = 500
        wait_for(lambda: host.states()["local"]["counters"]["errors"] >= 1, what="a failed scrape counted")
        assert "500" in host.states()["local"]["lastError"]
        state["status"] = 200
        wait_for(lambda: host.states()["local"]["status"] == "running", what="recovered")
    finally:
        host.stop()


# --- the host: isolation and hot reload ------------------------------------------------------------


def test_one_failing_adapter_does_not_stop_the_others(tmp_path, buffer):
    log = tmp_path / "app.log"
    host = AdapterHost(Sink(buffer))
    host.apply([exec_spec("broken", [sys.executable, "-c", "raise SystemExit(1)"]), tail_spec(log)])
    host.adapters["t"].POLL_SECONDS = 0.02
    try:
        _writer(log, 0, 10)
        wait_for(lambda: len(lines_in(buffer)) == 10, what="tail keeps going")
        wait_for(lambda: host.states()["broken"]["counters"]["errors"] >= 2, what="broken keeps failing")
        assert host.states()["t"]["status"] == "running"
    finally:
        host.stop()


def test_host_applies_changes_in_place_and_refuses_a_plan_it_cannot_run_whole(tmp_path, buffer):
    host = AdapterHost(Sink(buffer))
    first = [exec_spec("a", [sys.executable, "-c", "print(1)"], interval=3600),
             exec_spec("b", [sys.executable, "-c", "print(2)"], interval=3600)]
    assert host.apply(first) == [("start", "a"), ("start", "b")]
    a_before = host.adapters["a"]
    try:
        changed = [first[0], {**first[1], "intervalSeconds": 1800}, tail_spec(tmp_path / "*.log")]
        assert sorted(host.apply(changed)) == [("reconfigure", "b"), ("start", "t")]
        assert host.adapters["a"] is a_before  # untouched
        assert host.adapters["b"].spec["intervalSeconds"] == 1800
        running = dict(host.adapters)
        for bad, why in ((changed + [{"name": "x", "type": "modbus", "table": "m"}], "not installed"),
                         ([changed[0], exec_spec("b", ["/no/such/binary"])], "does not exist")):
            with pytest.raises(AdapterConfigError, match=why):
                host.apply(bad)
            assert host.adapters == running  # nothing stopped, nothing started
        assert host.apply([changed[2]]) == [("stop", "a"), ("stop", "b")]
        assert sorted(host.adapters) == ["t"]
    finally:
        host.stop()


# --- entry points -----------------------------------------------------------------------------------


def test_built_in_types_come_from_the_entry_points_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["edge_gateway.adapters"]
    checkout = (ROOT / "edge_gateway-0.dist-info" / "entry_points.txt").read_text()
    from configparser import ConfigParser
    parser = ConfigParser()
    parser.read_string(checkout)
    assert dict(parser["edge_gateway.adapters"]) == declared
    types = installed_types()
    assert {name: f"{cls.__module__}:{cls.__qualname__}" for name, cls in types.items()
            if name in declared} == declared


def test_a_third_party_adapter_is_found_through_its_dist_info(tmp_path, monkeypatch, buffer):
    site = tmp_path / "site"
    (site / "acme_counter").mkdir(parents=True)
    (site / "acme_counter" / "__init__.py").write_text(textwrap.dedent("""
        from edge_gateway.adapters import AdapterConfigError, PeriodicAdapter

        class CounterAdapter(PeriodicAdapter):
            type_name = "counter"

            @classmethod
            def check(cls, spec):
                if spec.get("start", 0) < 0:
                    raise AdapterConfigError("start: must not be negative")

            def collect(self):
                n = self.counters.get("n", spec_start(self.spec))
                self.counters["n"] = n + 1
                return [{"n": n}]

        def spec_start(spec):
            return spec.get("start", 0)
    """))
    dist = site / "acme_counter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-counter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[edge_gateway.adapters]\ncounter = acme_counter:CounterAdapter\n")
    assert "counter" not in installed_types()
    monkeypatch.syspath_prepend(str(site))
    assert "counter" in installed_types()
    host = AdapterHost(Sink(buffer))
    with pytest.raises(AdapterConfigError, match="must not be negative"):
        host.apply([{"name": "c", "type": "counter", "table": "c", "start": -1, "intervalSeconds": 0.05}])
    host.apply([{"name": "c", "type": "counter", "table": "c", "start": 5, "intervalSeconds": 0.05}])
    try:
        wait_for(lambda: len(buffer.waiting("c", 3)) == 3, what="the third-party adapter's records")
        assert [r["data"]["n"] for r in buffer.waiting("c", 3)] == [5, 6, 7]
        assert host.states()["c"]["type"] == "counter"
    finally:
        host.stop()
