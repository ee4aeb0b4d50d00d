"""Edge gateway store rate beside a minimal server and raw SQLite, and uplink rate to the local stack.

Store rate: C concurrent clients (threads in this process, keep-alive
connections) each POST stores of 100 records ({"table", "records": [...]}).
Three targets, same machine, same run, same durability (WAL + the same
`synchronous`):
- raw SQLite: the same 100-row batches inserted with executemany, one
  commit per batch, no HTTP (the ceiling);
- a minimal HTTP server (ThreadingHTTPServer, HTTP/1.1) that only parses
  the JSON body and inserts the batch in one transaction per request under a
  lock (what a straightforward implementation does);
- the gateway (`python -m edge_gateway`): validation, record ids,
  per-record size check, disk-cap accounting, group commit.
Both servers run as subprocesses; the goal is gateway >= 0.5x minimal.

Tail rate: the `tail` adapter following TAIL_FILES files of TAIL_LINES log lines each (read, cut into
lines, one record per line, records and read position committed together in the gateway's SQLite,
synchronous NORMAL and FULL) beside, in the same run over the same files, a plain Python read loop
(`for line in file`, counting) and the same loop inserting each line into SQLite in 1 MiB
transactions (what a straightforward durable tailer does). Goal: tail >= 0.5x the plain loop.
Every row also shows MiB/s, printed beside the one published tail figure we found for Fluent Bit
(FLUENT_BIT_PUBLISHED): a reference from other hardware and other durability, never a ratio.

Uplink rate: records stored while the gateway's uplink is idle, then
POST /uplink/flush to the local stack (python -m devstack, its moto) and
records/s of that flush.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = int(os.environ.get("BENCH_CLIENTS", 16))
STORES_PER_CLIENT = int(os.environ.get("BENCH_STORES", 40))
RECORDS_PER_STORE = 100
UPLINK_RECORDS = int(os.environ.get("BENCH_UPLINK_RECORDS", 2000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))


def body(client: int, store: int) -> bytes:
    return json.dumps({"table": "bench", "records": [
        {"client": client, "store": store, "i": i, "temp": 21.5, "host": "edge-01", "ok": True}
        for i in range(RECORDS_PER_STORE)]}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the minimal server -----------------------------------------------------------------

def minimal_server(port: int, db: str, synchronous: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, tbl TEXT, data TEXT)")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rows = [(payload["table"], json.dumps(r)) for r in payload["records"]]
            with lock:
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO records(tbl, data) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            out = json.dumps({"stored": len(rows)}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST

    ThreadingHTTPServer.request_queue_size = 128  # the gateway's listen backlog too
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


# --- load --------------------------------------------------------------------------------

def load(port: int, path: str = "/buffer/store") -> float:
    """records/s over CLIENTS x STORES_PER_CLIENT stores of 100 records."""
    bodies = [[body(c, s) for s in range(STORES_PER_CLIENT)] for c in range(CLIENTS)]
    errors: list[str] = []
    start = threading.Barrier(CLIENTS + 1)

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        for b in bodies[c]:
            for _attempt in range(3):
                try:
                    conn.request("POST", path, body=b, headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    break
                except OSError as e:  # counted: a reset connection is reopened and the store sent again
                    errors.append(f"{type(e).__name__} (retried)")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            else:
                raise RuntimeError("store failed 3 times")
            if r.status != 201:
                errors.append(str(r.status))
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    assert not [e for e in errors if "retried" not in e], errors[:5]
    if errors:
        print(f"  ({len(errors)} connection resets, stores resent)")
    return CLIENTS * STORES_PER_CLIENT * RECORDS_PER_STORE / elapsed


def wait_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def raw_sqlite(db: str, synchronous: str) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, tbl TEXT, data TEXT)")
    batches = [[("bench", json.dumps(r)) for r in json.loads(body(c, s))["records"]]
               for c in range(CLIENTS) for s in range(STORES_PER_CLIENT)]
    began = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO records(tbl, data) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - began
    conn.close()
    return len(batches) * RECORDS_PER_STORE / elapsed


def store_rates(synchronous: str, rounds: int = ROUNDS) -> dict[str, float]:
    """The median of `rounds` runs per target, the targets interleaved (the machine is shared: its load drifts)."""
    samples: dict[str, list[float]] = {"raw SQLite (ceiling)": [], "minimal HTTP server": [], "edge gateway": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            samples["raw SQLite (ceiling)"].append(raw_sqlite(f"{tmp}/raw{round_}.db", synchronous))
            port = free_port()
            minimal = subprocess.Popen([sys.executable, __file__, "--minimal-server", str(port),
                                        f"{tmp}/min{round_}.db", synchronous])
            try:
                wait_port(port, minimal)
                samples["minimal HTTP server"].append(load(port, "/"))
            finally:
                minimal.terminate()
                minimal.wait()
            port = free_port()
            env = {**os.environ, "CONTROL_PLANE_URL": "http://127.0.0.1:9", "GATEWAY_API_KEY": "bench",
                   "GATEWAY_DB": f"{tmp}/gw{round_}.db", "GATEWAY_PORT": str(port),
                   "GATEWAY_SYNCHRONOUS": synchronous, "GATEWAY_AGENT_ID": "bench",
                   "GATEWAY_WS_URL": "ws://127.0.0.1:9/ws", "GATEWAY_LINGER_SECONDS": "3600",
                   "GATEWAY_BACKOFF_BASE_SECONDS": "60", "GATEWAY_LOG_LEVEL": "ERROR", "GATEWAY_MAX_DB_MB": "4096"}
            gateway = subprocess.Popen([sys.executable, "-m", "edge_gateway"], cwd=ROOT, env=env,
                                       stdout=subprocess.DEVNULL)
            try:
                wait_port(port, gateway)
                samples["edge gateway"].append(load(port))
            finally:
                gateway.terminate()
                gateway.wait()
    return {name: statistics.median(values) for name, values in samples.items()}


def uplink_rate() -> tuple[float, dict]:
    from devstack.testing import running_devstack
    from tests.e2e.client import call

    with running_devstack() as stack, tempfile.TemporaryDirectory() as tmp:
        org = call(stack.url, "POST", "/orgs", stack.admin_api_key, {"name": "bench"}).json
        agent = call(stack.url, "POST", "/agents", org["adminKey"], {"name": "edge"}).json
        port = free_port()
        env = {**os.environ, "CONTROL_PLANE_URL": stack.url, "GATEWAY_API_KEY": agent["apiKey"],
               "GATEWAY_DB": f"{tmp}/gw.db", "GATEWAY_PORT": str(port), "GATEWAY_LINGER_SECONDS": "3600",
               "GATEWAY_BATCH_RECORDS": "500", "GATEWAY_LOG_LEVEL": "ERROR"}
        gateway = subprocess.Popen([sys.executable, "-m", "edge_gateway"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL)
        try:
            wait_port(port, gateway)
            url = f"http://127.0.0.1:{port}"
            began = time.perf_counter()
            for start in range(0, UPLINK_RECORDS, 500):
                n = min(500, UPLINK_RECORDS - start)
                r = call(url, "POST", "/buffer/store", body={"table": "bench",
                                                             "records": [{"i": start + i, "v": 0.5} for i in range(n)]})
                assert r.status == 201, r.json
            stored = time.perf_counter() - began
            while True:  # the uplink runs by itself (full batches go at once): until the buffer is empty
                stats = call(url, "GET", "/buffer/stats").json
                if stats["backlog"] == 0:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - began
            result = {"uploaded": stats["counters"]["uplinked"], "duplicates": stats["counters"]["duplicates"],
                      "storeSeconds": round(stored, 2), "seconds": round(elapsed, 1)}
        finally:
            gateway.terminate()
            gateway.wait()
    return (result["uploaded"] + result["duplicates"]) / elapsed, result


TAIL_FILES = int(os.environ.get("BENCH_TAIL_FILES", 4))
TAIL_LINES = int(os.environ.get("BENCH_TAIL_LINES", 100_000))
# Vector's test harness (vectordotdev/vector-test-harness, cases/file_to_tcp_performance, multi_file: ten
# files tailed and sent over TCP for 60 s, on AWS instances): Fluent Bit's average disk throughput. Fluent
# Bit buffers in memory by default, so none of it was durable; it is not this machine either, hence no ratio.
FLUENT_BIT_PUBLISHED = ("Fluent Bit, file to TCP (Vector's harness, other hardware)", 35.0)


def tail_files(directory: Path) -> int:
    total = 0
    for n in range(TAIL_FILES):
        with open(directory / f"app-{n}.log", "w") as f:
            for i in range(TAIL_LINES):
                f.write(f"2026-12-07T05:00:{i % 60:02d}.{i % 1000:03d}Z INFO worker-{n} request {i} served "
                        f"path=/api/items/{i % 977} status=200 bytes={i % 5000} ms={i % 250}\n")
            total += TAIL_LINES
    return total


def plain_read_loop(directory: Path) -> float:
    started = time.perf_counter()
    lines = 0
    for path in sorted(directory.glob("*.log")):
        with open(path, "rb") as f:
            for _line in f:
                lines += 1
    return lines / (time.perf_counter() - started)


def plain_sqlite_loop(directory: Path, db: str, synchronous: str) -> float:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE lines (seq INTEGER PRIMARY KEY, file TEXT, offset INTEGER, line TEXT)")
    started = time.perf_counter()
    lines = 0
    for path in sorted(directory.glob("*.log")):
        with open(path, "rb") as f:
            while chunk := f.readlines(1024 * 1024):
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO lines(file, offset, line) VALUES (?, 0, ?)",
                                 [(str(path), line.decode()) for line in chunk])
                conn.execute("COMMIT")
                lines += len(chunk)
    rate = lines / (time.perf_counter() - started)
    conn.close()
    return rate


def tail_adapter_rate(directory: Path, db: str, synchronous: str, total: int) -> float:
    from edge_gateway.adapters import Sink
    from edge_gateway.adapters.tail import TailAdapter
    from edge_gateway.buffer import Buffer

    buffer = Buffer(db, 1 << 40, synchronous=synchronous)
    adapter = TailAdapter("bench", {"name": "bench", "type": "tail", "table": "logs",
                                    "path": str(directory / "*.log")}, Sink(buffer))
    adapter.POLL_SECONDS = 0.005
    started = time.perf_counter()
    adapter.start()
    while adapter.counters["lines"] < total:
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    adapter.stop()
    buffer.close()
    assert buffer.backlog == total, (buffer.backlog, total)
    return total / elapsed


def tail_rates() -> None:
    print(f"tail: {TAIL_FILES} files x {TAIL_LINES:,} log lines (~120 bytes), median of {ROUNDS} interleaved rounds")
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp:
        directory = Path(tmp) / "logs"
        directory.mkdir()
        total = tail_files(directory)
        line_bytes = sum(p.stat().st_size for p in directory.glob("*.log")) / total
        rates: dict[str, list[float]] = {}
        for round_ in range(ROUNDS):
            rates.setdefault("plain read loop", []).append(plain_read_loop(directory))
            for synchronous in ("NORMAL", "FULL"):
                rates.setdefault(f"plain loop + SQLite {synchronous}", []).append(
                    plain_sqlite_loop(directory, f"{tmp}/plain-{synchronous}-{round_}.db", synchronous))
                rates.setdefault(f"tail adapter {synchronous}", []).append(
                    tail_adapter_rate(directory, f"{tmp}/tail-{synchronous}-{round_}.db", synchronous, total))
        plain = statistics.median(rates["plain read loop"])
        for name, values in rates.items():
            rate = statistics.median(values)
            print(f"  {name:<28} {rate:>12,.0f} lines/s {rate * line_bytes / 2**20:8.1f} MiB/s"
                  f"   {rate / plain:6.3f}x plain read loop")
        label, mib = FLUENT_BIT_PUBLISHED
        print(f"  published: {label}: {mib:.1f} MiB/s (about {mib * 2**20 / line_bytes:,.0f} lines/s of these lines)")
    print()


def main() -> None:
    if "--tail-only" in sys.argv:
        tail_rates()
        return
    print(f"store rate: {CLIENTS} concurrent clients x {STORES_PER_CLIENT} stores of {RECORDS_PER_STORE} records "
          f"(WAL; same durability for all three; median of {ROUNDS} interleaved rounds)\n")
    for synchronous in ("NORMAL", "FULL"):
        rates = store_rates(synchronous)
        minimal = rates["minimal HTTP server"]
        print(f"synchronous={synchronous}")
        for name, rate in rates.items():
            print(f"  {name:<22} {rate:>10,.0f} records/s   {rate / minimal:5.2f}x minimal")
        print()
    tail_rates()
    rate, result = uplink_rate()
    print(f"uplink to the local stack: {rate:,.0f} records/s ({result['uploaded']} records in batches of 500, "
          f"{result['seconds']} s from the first store to an empty buffer; storing took {result['storeSeconds']} s)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--minimal-server":
        minimal_server(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()
