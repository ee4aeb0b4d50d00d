"""The on-disk buffer: SQLite in WAL mode, written by one group-commit thread.

Durability: a store answers only after the transaction holding its records
committed. With `journal_mode=WAL` a committed transaction is in the WAL
file (the OS page cache at least) before COMMIT returns, so it survives a
kill -9 of this process with `synchronous=NORMAL`; `synchronous=FULL` (the
default, GATEWAY_SYNCHRONOUS) also fsyncs the WAL on every commit, so it
survives a power cut too. Either way one commit serves many stores:

Group commit: every write (a store, the deletion of acknowledged records, a
quarantine move) is a job on one queue. The writer thread takes the first
job, then everything else already waiting, runs them all in ONE transaction,
commits once (one fsync), and only then wakes each waiting caller with its
own result. Under load the batch grows by itself, so the cost of the commit is
shared by all concurrent stores; with one caller it is one commit per store.

Disk cap: the buffered records' bytes (their JSON plus a fixed per-row
overhead) may not exceed GATEWAY_MAX_DB_MB. Over the cap a store is refused
whole (507, nothing stored) or, with GATEWAY_ON_FULL=drop-oldest, the oldest
records are deleted to make room. Refusals and drops are counted in the
`counters` table (same transaction, so the counts survive restarts too).
"""
from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

ROW_OVERHEAD = 96  # bytes per buffered row beyond its JSON: ids, table name, index entries (an estimate)
COUNTERS = ("stored", "uplinked", "duplicates", "dropped", "refused", "refusedRecords", "quarantined", "retries")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL,  -- 80 random bits per id: no UNIQUE index to maintain on every insert
    tbl TEXT NOT NULL,
    data TEXT NOT NULL,
    ts TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    record_id TEXT NOT NULL,
    tbl TEXT NOT NULL,
    data TEXT NOT NULL,
    ts TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    quarantined_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commands_done (
    command_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    result TEXT,
    acked INTEGER NOT NULL DEFAULT 0,
    at TEXT NOT NULL
);
-- the tail adapter's read positions: written in the same transaction as the records read up to them
CREATE TABLE IF NOT EXISTS tail_positions (
    adapter TEXT NOT NULL,
    file_key TEXT NOT NULL,   -- "dev:inode": the file, whatever its name is now
    path TEXT NOT NULL,       -- its name when last read (a rotated file is looked for beside it)
    offset INTEGER NOT NULL,  -- bytes consumed: everything before it is in records (or was uploaded)
    head BLOB NOT NULL,       -- the file's first bytes: a truncated or replaced file no longer starts so
    skipping INTEGER NOT NULL DEFAULT 0,  -- inside an over-long line: skip to its end
    PRIMARY KEY (adapter, file_key)
);
"""


class BufferFull(Exception):
    """The store would take the buffer over its disk cap (refused whole, nothing stored)."""

    def __init__(self, needed: int, used: int, cap: int):
        super().__init__(f"buffer is at its disk cap: {used} of {cap} bytes used, this store needs {needed}")
        self.needed, self.used, self.cap = needed, used, cap


class Closed(Exception):
    """The buffer is shutting down and accepts no more writes."""


@dataclass
class Record:
    record_id: str
    table: str
    data: str  # JSON text, as received
    ts: str

    @property
    def bytes(self) -> int:
        """What the record counts against the cap (characters: bytes for the ASCII JSON usually is)."""
        return len(self.data) + len(self.table) + len(self.record_id) + ROW_OVERHEAD


@dataclass
class StoredRecord(Record):
    seq: int = 0


@dataclass
class StoreResult:
    stored: int
    dropped: int = 0  # oldest records deleted to make room (drop-oldest mode)


@dataclass
class _Job:
    run: Callable[[sqlite3.Connection], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


def connect(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Buffer:
    def __init__(self, path: str, max_bytes: int, drop_oldest: bool = False, synchronous: str = "FULL",
                 max_group: int = 512):
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA (OFF would lose acknowledged records)")
        self.path = path
        self.max_bytes = max_bytes
        self.drop_oldest = drop_oldest
        self.synchronous = synchronous.upper()
        self.max_group = max_group
        self._writer_conn = connect(path, self.synchronous)
        self._writer_conn.executescript(SCHEMA)
        self._reader_local = threading.local()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._closed = False
        self._close_lock = threading.Lock()
        row = self._writer_conn.execute("SELECT COALESCE(SUM(bytes), 0), COUNT(*) FROM records").fetchone()
        self.used_bytes, self.backlog = int(row[0]), int(row[1])
        self.counters = {name: 0 for name in COUNTERS}
        for name, value in self._writer_conn.execute("SELECT name, value FROM counters"):
            self.counters[name] = int(value)
        self.commits = 0
        self.on_change: Callable[[dict[str, int]], None] | None = None  # metrics hook (counter deltas)
        self._thread = threading.Thread(target=self._write_loop, name="buffer-writer", daemon=True)
        self._thread.start()

    # --- the writer thread --------------------------------------------------

    def _submit(self, run: Callable[[sqlite3.Connection], Any]) -> Any:
        job = _Job(run)
        with self._close_lock:
            if self._closed:
                raise Closed("the buffer is closed")
            self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self.max_group:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            self._run_group(conn, jobs)
            if stop:
                return

    def _run_group(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        saved = (self.used_bytes, self.backlog, dict(self.counters))
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in jobs:
                # A job's own failure (e.g. BufferFull) is its answer, not the group's:
                # a savepoint undoes only that job's writes.
                conn.execute("SAVEPOINT job")
                before = (self.used_bytes, self.backlog, dict(self.counters))
                try:
                    job.result = job.run(conn)
                    conn.execute("RELEASE job")
                except Exception as e:  # noqa: BLE001 - handed to the caller that submitted the job
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    self.used_bytes, self.backlog, self.counters = before[0], before[1], before[2]
                    job.error = e
                    if isinstance(e, BufferFull):
                        self._bump(conn, refused=1, refusedRecords=getattr(e, "records", 0))
            conn.executemany("INSERT INTO counters(name, value) VALUES (?, ?) "
                             "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                             list(self.counters.items()))
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException as e:  # the commit itself failed (disk error): nobody's write is durable
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.used_bytes, self.backlog, self.counters = saved
            for job in jobs:
                job.result, job.error = None, e
        deltas = {k: self.counters[k] - saved[2].get(k, 0) for k in self.counters if self.counters[k] != saved[2].get(k, 0)}
        for job in jobs:
            job.done.set()
        if deltas and self.on_change is not None:
            self.on_change(deltas)

    def _bump(self, conn: sqlite3.Connection | None = None, **deltas: int) -> None:
        for name, delta in deltas.items():
            self.counters[name] = self.counters.get(name, 0) + delta

    # --- writes -------------------------------------------------------------

    def store(self, records: list[Record]) -> StoreResult:
        """Durably buffer `records` (all or none); BufferFull when over the cap and not dropping."""
        sizes = [r.bytes for r in records]
        needed = sum(sizes)

        def run(conn: sqlite3.Connection) -> StoreResult:
            dropped = 0
            if self.used_bytes + needed > self.max_bytes:
                if not self.drop_oldest or needed > self.max_bytes:
                    full = BufferFull(needed, self.used_bytes, self.max_bytes)
                    full.records = len(records)  # type: ignore[attr-defined]
                    raise full
                dropped = self._drop_oldest(conn, self.used_bytes + needed - self.max_bytes)
            conn.executemany("INSERT INTO records(record_id, tbl, data, ts, bytes) VALUES (?, ?, ?, ?, ?)",
                             [(r.record_id, r.table, r.data, r.ts, size) for r, size in zip(records, sizes, strict=True)])
            self.used_bytes += needed
            self.backlog += len(records)
            self._bump(stored=len(records))
            return StoreResult(len(records), dropped)

        return self._submit(run)

    def store_with(self, records: list[Record], also: Callable[[sqlite3.Connection], None]) -> StoreResult:
        """Like store(), and `also(conn)` runs in the same transaction (the tail adapter's read position):
        either both are durable or neither is."""
        return self.store_rows_with([(r.record_id, r.table, r.data, r.ts, r.bytes) for r in records], also)

    def store_rows_with(self, rows: list[tuple[str, str, str, str, int]],
                        also: Callable[[sqlite3.Connection], None]) -> StoreResult:
        """store_with() for rows made by the caller: (record_id, table, data JSON, ts, bytes as Record.bytes
        counts them). The tail adapter's path: no Record object per line."""
        needed = sum(row[4] for row in rows)

        def run(conn: sqlite3.Connection) -> StoreResult:
            if rows and self.used_bytes + needed > self.max_bytes and (not self.drop_oldest or needed > self.max_bytes):
                full = BufferFull(needed, self.used_bytes, self.max_bytes)
                full.records = len(rows)  # type: ignore[attr-defined]
                raise full
            dropped = self._drop_oldest(conn, self.used_bytes + needed - self.max_bytes) if rows and \
                self.used_bytes + needed > self.max_bytes else 0
            conn.executemany("INSERT INTO records(record_id, tbl, data, ts, bytes) VALUES (?, ?, ?, ?, ?)", rows)
            also(conn)
            self.used_bytes += needed
            self.backlog += len(rows)
            self._bump(stored=len(rows))
            return StoreResult(len(rows), dropped)

        return self._submit(run)

    def set_limits(self, max_bytes: int, drop_oldest: bool) -> None:
        """A new disk cap or full policy (configuration document), in force for the next store."""
        self.max_bytes, self.drop_oldest = max_bytes, drop_oldest

    def tail_positions(self, adapter: str) -> dict[str, tuple[str, int, bytes, bool]]:
        """file_key -> (path, offset, head, skipping) for one tail adapter."""
        rows = self._reader().execute(
            "SELECT file_key, path, offset, head, skipping FROM tail_positions WHERE adapter = ?", (adapter,))
        return {r[0]: (r[1], int(r[2]), bytes(r[3]), bool(r[4])) for r in rows}

    def forget_tail_position(self, adapter: str, file_key: str) -> None:
        self._submit(lambda conn: conn.execute("DELETE FROM tail_positions WHERE adapter = ? AND file_key = ?",
                                               (adapter, file_key)))

    def waiting(self, table: str | None, limit: int) -> list[dict]:
        """The records still waiting for the uplink, oldest first (GET /buffer/records)."""
        if table is None:
            rows = self._reader().execute("SELECT record_id, tbl, data, ts FROM records ORDER BY seq LIMIT ?",
                                          (limit,)).fetchall()
        else:
            rows = self._reader().execute("SELECT record_id, tbl, data, ts FROM records WHERE tbl = ? "
                                          "ORDER BY seq LIMIT ?", (table, limit)).fetchall()
        return [{"recordId": r[0], "table": r[1], "data": json.loads(r[2]), "ts": r[3]} for r in rows]

    def _drop_oldest(self, conn: sqlite3.Connection, free: int) -> int:
        dropped = freed = 0
        while freed < free:
            rows = conn.execute("SELECT seq, bytes FROM records ORDER BY seq LIMIT 256").fetchall()
            if not rows:
                break
            take = []
            for seq, size in rows:
                take.append(seq)
                freed += size
                if freed >= free:
                    break
            conn.execute("DELETE FROM records WHERE seq <= ?", (take[-1],))
            dropped += len(take)
        self.used_bytes -= freed
        self.backlog -= dropped
        self._bump(dropped=dropped)
        return dropped

    def acknowledge(self, seqs: list[int], accepted: int, duplicates: int) -> None:
        """The control plane acknowledged these records: they leave the buffer."""

        def run(conn: sqlite3.Connection) -> None:
            freed, removed = self._delete(conn, seqs)
            self.used_bytes -= freed
            self.backlog -= removed
            self._bump(uplinked=accepted, duplicates=duplicates)

        self._submit(run)

    def quarantine(self, records: list[StoredRecord], status: int | None, error: str) -> None:
        """Records the control plane refused in a way retrying cannot fix: kept aside, counted, inspectable."""
        now = _iso()

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO quarantine(seq, record_id, tbl, data, ts, status, error, quarantined_at)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             [(r.seq, r.record_id, r.table, r.data, r.ts, status, error[:2000], now) for r in records])
            freed, removed = self._delete(conn, [r.seq for r in records])
            self.used_bytes -= freed
            self.backlog -= removed
            self._bump(quarantined=len(records))

        self._submit(run)

    def count(self, **deltas: int) -> None:
        """Bump counters that no record write carries (retries)."""
        self._submit(lambda conn: self._bump(**deltas))

    @staticmethod
    def _delete(conn: sqlite3.Connection, seqs: list[int]) -> tuple[int, int]:
        freed = removed = 0
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            marks = ",".join("?" * len(chunk))
            row = conn.execute(f"SELECT COALESCE(SUM(bytes), 0), COUNT(*) FROM records WHERE seq IN ({marks})",
                               chunk).fetchone()
            conn.execute(f"DELETE FROM records WHERE seq IN ({marks})", chunk)
            freed += int(row[0])
            removed += int(row[1])
        return freed, removed

    def record_command(self, command_id: str, status: str, result: str | None, acked: bool) -> None:
        self._submit(lambda conn: conn.execute(
            "INSERT INTO commands_done(command_id, status, result, acked, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(command_id) DO UPDATE SET acked = excluded.acked",
            (command_id, status, result, int(acked), _iso())))

    # --- reads (their own connection per thread: WAL readers never block the writer) ---

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.synchronous)
            self._reader_local.conn = conn
        return conn

    def oldest(self, max_count: int, max_bytes: int, after_seq: int = 0) -> list[StoredRecord]:
        """The next batch in buffer order: at most max_count records and max_bytes of JSON (at least one)."""
        rows = self._reader().execute(
            "SELECT seq, record_id, tbl, data, ts FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, max_count)).fetchall()
        batch: list[StoredRecord] = []
        size = 0
        for seq, record_id, tbl, data, ts in rows:
            size += len(data) + len(tbl) + len(record_id) + len(ts) + 64
            if batch and size > max_bytes:
                break
            batch.append(StoredRecord(record_id, tbl, data, ts, seq=seq))
        return batch

    def quarantined(self, limit: int = 100) -> list[dict]:
        rows = self._reader().execute(
            "SELECT seq, record_id, tbl, ts, status, error, quarantined_at FROM quarantine ORDER BY seq DESC LIMIT ?",
            (limit,)).fetchall()
        return [{"recordId": r[1], "table": r[2], "ts": r[3], "status": r[4], "error": r[5], "quarantinedAt": r[6]}
                for r in rows]

    def command_outcome(self, command_id: str) -> tuple[str, str | None, bool] | None:
        row = self._reader().execute("SELECT status, result, acked FROM commands_done WHERE command_id = ?",
                                     (command_id,)).fetchone()
        return (row[0], row[1], bool(row[2])) if row else None

    def unacked_commands(self) -> list[tuple[str, str, str | None]]:
        return list(self._reader().execute("SELECT command_id, status, result FROM commands_done WHERE acked = 0"))

    def oldest_ts(self) -> str | None:
        row = self._reader().execute("SELECT ts FROM records ORDER BY seq LIMIT 1").fetchone()
        return row[0] if row else None

    def file_bytes(self) -> int:
        return sum(os.path.getsize(p) for p in (self.path, self.path + "-wal") if os.path.exists(p))

    def stats(self) -> dict:
        return {
            "backlog": self.backlog, "usedBytes": self.used_bytes, "capBytes": self.max_bytes,
            "fileBytes": self.file_bytes(), "onFull": "drop-oldest" if self.drop_oldest else "refuse",
            "synchronous": self.synchronous, "oldestTs": self.oldest_ts(),
            "counters": dict(self.counters), "commits": self.commits,
        }

    # --- shutdown -----------------------------------------------------------

    def close(self) -> None:
        """Finish queued writes, then checkpoint the WAL into the database file and close."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()
        self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._writer_conn.close()


def _iso(epoch: float | None = None) -> str:
    t = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
