"""`tail`: follow files by glob into records, exactly once across rotation and kill -9.

Spec: {name, type: "tail", table, path (a glob), multilineStart? (a regex), maxLineBytes? (default 16384)}.

- A file is known by its identity (device and inode), not its name: a file renamed away (rotation by
  rename) is read to its end from the open descriptor and let go once it has not grown for
  ROTATE_WAIT_SECONDS; the new file at the name is read from its start.
- A file that shrank below the read position, or whose first bytes are no longer those read
  (rotation by copytruncate, or a file replaced in place), is read again from its start. What a
  writer adds between the last read and a copytruncate is in the copy only: copytruncate cannot be
  followed without that window (logrotate's own caveat); rename rotation has no such window.
- The read position of each file is written in the same SQLite transaction as the records read up
  to it: after a kill -9 the records and the position agree, so no line is lost or read twice.
  At start, a known file missing from the glob is looked for beside its last name (renamed while
  the gateway was down) and read to its end.
- Files are read from their start when first seen (a line written while the gateway was down is
  still a line to deliver).
- `multilineStart`: a line matching it starts a record; lines that do not match belong to the
  record before them. The last record of a file is held until a next start line arrives or the file
  has been quiet for MULTILINE_FLUSH_SECONDS (its position stays before it until then).
- A full buffer pauses reading (counted `bufferFull`): the position does not move, so nothing is lost;
  reads shrink to fit the room the uplink makes and grow back after.
- A line longer than `maxLineBytes` is cut at that size (counted `truncatedLines`); the rest of the
  line is skipped, even across reads.
"""
from __future__ import annotations

import glob
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as quote  # type: ignore[attr-defined]
from typing import Any

from edge_gateway.adapters import Adapter, AdapterConfigError, Sink
from edge_gateway.buffer import BufferFull, Closed

HEAD_BYTES = 64
MAX_RECORD_CHARS = 100 * 1024  # a multi-line record's cap (the gateway's record limit is 128 KiB as JSON)


@dataclass
class _File:
    key: str          # "dev:inode"
    path: str
    fh: Any           # the open file (binary, unbuffered reads by os.pread)
    offset: int
    head: bytes
    skipping: bool
    grew_at: float    # last time new bytes were seen (for the multi-line flush and the rotate wait)
    rotated: bool = False
    seen: int = 0     # the furthest byte read so far


class TailAdapter(Adapter):
    type_name = "tail"
    POLL_SECONDS = 0.2
    CHUNK_BYTES = 1024 * 1024
    ROTATE_WAIT_SECONDS = 5.0  # as Fluent Bit's Rotate_Wait: a writer may take a moment to reopen
    MULTILINE_FLUSH_SECONDS = 1.0

    def __init__(self, name: str, spec: dict, sink: Sink):
        super().__init__(name, spec, sink)
        self.counters.update({"lines": 0, "bytes": 0, "truncatedLines": 0, "rotations": 0, "truncations": 0,
                              "filesOpen": 0})
        self._files: dict[str, _File] = {}
        self._chunk = self.CHUNK_BYTES  # halved while the buffer is full, doubled back after each read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._compile(spec)

    @classmethod
    def check(cls, spec: dict) -> None:
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise AdapterConfigError("path: a glob is required")
        pattern = spec.get("multilineStart")
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as e:
                raise AdapterConfigError(f"multilineStart: not a regular expression: {e}") from None
        directory = os.path.dirname(path) or "."
        if glob.has_magic(directory):
            return  # the directories themselves come and go: nothing to check before the glob matches
        if not os.path.isdir(directory):
            raise AdapterConfigError(f"path: directory {directory!r} does not exist")
        if not os.access(directory, os.R_OK | os.X_OK):
            raise AdapterConfigError(f"path: directory {directory!r} is not readable by the gateway")
        for match in glob.glob(path):
            if os.path.isfile(match) and not os.access(match, os.R_OK):
                raise AdapterConfigError(f"path: {match!r} is not readable by the gateway")

    def _compile(self, spec: dict) -> None:
        pattern = spec.get("multilineStart")
        self._start_re = re.compile(pattern.encode()) if pattern else None
        self._max_line = int(spec.get("maxLineBytes") or 16384)

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self._stop = threading.Event()
        self.status = "running"
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=f"adapter-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for f in self._files.values():
            f.fh.close()
        self._files.clear()
        self.counters["filesOpen"] = 0
        self.status = "stopped"

    def reconfigure(self, spec: dict) -> None:
        # Positions are per adapter name: a new glob or pattern carries on where each file was.
        self.stop()
        self.spec = spec
        self._compile(spec)
        self.start()

    def state(self) -> dict:
        state = super().state()
        files = list(self._files.values())  # one C-level copy: the adapter's thread may change the dict meanwhile
        state["files"] = [{"path": f.path, "offset": f.offset, "rotated": f.rotated} for f in files]
        return state

    def _loop(self, stop: threading.Event) -> None:
        try:
            self._recover()
        except Exception as e:  # noqa: BLE001
            self.error(f"recovering positions: {type(e).__name__}: {e}")
        while not stop.is_set():
            try:
                more = self.poll_once()
                self.ok()
                self._chunk = min(self.CHUNK_BYTES, self._chunk * 2)
            except BufferFull:
                # Back-pressure, not a failure: the position stays where it is and reading resumes as the uplink
                # drains the buffer; smaller reads so that one fits into the room there is.
                self.count("bufferFull")
                self._chunk = max(256, self._chunk // 2)
                more = False
            except Closed:
                return
            except Exception as e:  # noqa: BLE001 - isolation
                self.error(f"{type(e).__name__}: {e}")
                more = False
            if not more:
                stop.wait(self.POLL_SECONDS)

    # --- files ---------------------------------------------------------------------

    def _recover(self) -> None:
        """Files known from before a restart that the glob no longer finds: renamed away while we were down."""
        known = self.sink.buffer.tail_positions(self.name)
        matched = {self._key(os.stat(p)) for p in glob.glob(self.spec["path"]) if os.path.isfile(p)}
        for key, (path, offset, head, skipping) in known.items():
            if key in matched:
                continue
            found = None
            directory = os.path.dirname(path) or "."
            try:
                for entry in os.scandir(directory):
                    if entry.is_file() and self._key(entry.stat()) == key:
                        found = entry.path
                        break
            except OSError:
                pass
            opened = self._open(found, key) if found else None
            if opened is None or not self._same_head(opened, head) or os.fstat(opened.fileno()).st_size < offset:
                if opened is not None:
                    opened.close()
                self.sink.buffer.forget_tail_position(self.name, key)
                continue
            self._files[key] = _File(key, found or path, opened, offset, head, skipping, time.monotonic(),
                                     rotated=True)

    @staticmethod
    def _key(st: os.stat_result) -> str:
        return f"{st.st_dev}:{st.st_ino}"

    @staticmethod
    def _open(path: str, key: str) -> Any:
        try:
            fh = open(path, "rb", buffering=0)  # noqa: SIM115 - kept open across polls
        except OSError:
            return None
        if TailAdapter._key(os.fstat(fh.fileno())) != key:  # replaced between stat and open
            fh.close()
            return None
        return fh

    @staticmethod
    def _same_head(fh: Any, head: bytes) -> bool:
        return not head or os.pread(fh.fileno(), len(head), 0) == head

    def _discover(self) -> None:
        matched: dict[str, str] = {}
        for path in sorted(glob.glob(self.spec["path"])):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            matched[self._key(st)] = path
        for key, f in self._files.items():
            if key not in matched and not f.rotated:
                f.rotated = True  # renamed away or deleted: read what is left, then let go
                self.count("rotations")
            elif key in matched:
                f.path, f.rotated = matched[key], False
        known: dict[str, tuple[str, int, bytes, bool]] | None = None
        for key, path in matched.items():
            if key in self._files:
                continue
            fh = self._open(path, key)
            if fh is None:
                continue
            if known is None:
                known = self.sink.buffer.tail_positions(self.name)
            offset, head, skipping = 0, b"", False
            if key in known:
                _, offset, head, skipping = known[key]
                if not self._same_head(fh, head) or os.fstat(fh.fileno()).st_size < offset:
                    offset, head, skipping = 0, b"", False  # the inode was reused by another file
            self._files[key] = _File(key, path, fh, offset, head, skipping, time.monotonic())
        self.counters["filesOpen"] = len(self._files)

    def poll_once(self) -> bool:
        """One pass over the files; answers True when a file has more to read at once."""
        self._discover()
        more = False
        now = time.monotonic()
        for key in list(self._files):
            f = self._files[key]
            size = os.fstat(f.fh.fileno()).st_size
            if size < f.offset or not self._same_head(f.fh, f.head):
                self.count("truncations")
                f.offset, f.head, f.skipping, f.seen = 0, b"", False, 0
            if size > f.offset:
                more |= self._read(f, size, now)
            elif f.rotated and now - f.grew_at > self.ROTATE_WAIT_SECONDS:
                self._let_go(f)
        return more

    def _let_go(self, f: _File) -> None:
        key = f.key

        def forget(conn: Any) -> None:
            conn.execute("DELETE FROM tail_positions WHERE adapter = ? AND file_key = ?", (self.name, key))

        self.sink.buffer.store_with([], forget)
        f.fh.close()
        del self._files[key]
        self.counters["filesOpen"] = len(self._files)

    def _read(self, f: _File, size: int, now: float) -> bool:
        want = min(size - f.offset, self._chunk)
        data = os.pread(f.fh.fileno(), want, f.offset)
        if not data:
            return False
        if f.offset + len(data) > f.seen:
            f.seen, f.grew_at = f.offset + len(data), now
        lines, consumed, skipping = self._lines(data, f.offset, f.skipping)
        at_end = f.offset + len(data) >= size
        # Each record is {"line", "file", "offset"} as JSON, written out here: json.dumps per line was half
        # the adapter's time (bench/edge_gateway.py); the same text json.dumps gives (ASCII, compact).
        suffix = ',"file":' + quote(f.path) + ',"offset":'
        if self._start_re is None:
            texts = ['{"line":' + quote(line.decode("utf-8", "replace")) + suffix + str(start) + "}"
                     for start, line in lines]
        else:
            groups = self._group(lines)
            quiet = now - f.grew_at > self.MULTILINE_FLUSH_SECONDS
            # The last record may go on in the next lines: hold it (its bytes stay unconsumed) unless the file
            # has gone quiet, or holding would leave a full chunk with nothing consumed (a giant record).
            if groups and not (quiet and at_end) and not (len(groups) == 1 and not at_end):
                held = groups.pop()
                consumed, skipping = held[0] - f.offset, False
            texts = []
            for start, body in groups:
                text = b"\n".join(body).decode("utf-8", "replace")
                if len(text) > MAX_RECORD_CHARS:
                    text = text[:MAX_RECORD_CHARS]
                    self.count("truncatedRecords")
                texts.append('{"line":' + quote(text) + suffix + str(start) + "}")
        if consumed == 0 and not texts:
            return False
        new_offset = f.offset + consumed
        head = f.head if len(f.head) >= HEAD_BYTES else os.pread(f.fh.fileno(), HEAD_BYTES, 0)
        key, path = f.key, f.path

        def position(conn: Any) -> None:
            conn.execute("INSERT INTO tail_positions(adapter, file_key, path, offset, head, skipping) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(adapter, file_key) DO UPDATE SET "
                         "path = excluded.path, offset = excluded.offset, head = excluded.head, "
                         "skipping = excluded.skipping", (self.name, key, path, new_offset, head, int(skipping)))

        self.sink.buffer.store_rows_with(self.sink.rows_from_json(self.table, texts) if texts else [], position)
        f.offset, f.head, f.skipping = new_offset, head, skipping
        self.count("lines", len(lines))
        self.count("records", len(texts))
        self.count("bytes", consumed)
        return not at_end

    def _lines(self, data: bytes, base: int, skipping: bool) -> tuple[list[tuple[int, bytes]], int, bool]:
        """Complete lines in `data`: [(start offset, line without its ending)], the bytes they consume, and
        whether the read ends inside an over-long line whose rest is to be skipped (one split, no per-line find)."""
        cap = self._max_line
        pos, n = 0, len(data)
        if skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return [], n, True
            pos = nl + 1
        lines: list[tuple[int, bytes]] = []
        body_end = data.rfind(b"\n") + 1  # the complete lines end here
        if body_end > pos:
            start = base + pos
            truncated = 0
            for line in data[pos:body_end - 1].split(b"\n"):
                following = start + len(line) + 1
                if line[-1:] == b"\r":
                    line = line[:-1]
                if len(line) > cap:
                    line = line[:cap]
                    truncated += 1
                lines.append((start, line))
                start = following
            if truncated:
                self.count("truncatedLines", truncated)
            pos = body_end
        if n - pos > cap:  # an over-long line without its end yet: cut it, skip the rest as it comes
            lines.append((base + pos, data[pos:pos + cap]))
            self.count("truncatedLines")
            return lines, n, True
        return lines, pos, False

    def _group(self, lines: list[tuple[int, bytes]]) -> list[tuple[int, list[bytes]]]:
        """Multi-line records: a line matching multilineStart opens one; other lines join the one before."""
        assert self._start_re is not None
        groups: list[tuple[int, list[bytes]]] = []
        for start, line in lines:
            if not groups or self._start_re.match(line):
                groups.append((start, [line]))
            else:
                groups[-1][1].append(line)
        return groups

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"TailAdapter({self.name!r}, {json.dumps(self.spec)})"
