"""The local stack's write-ahead journal: nothing moto acknowledged is lost on kill -9.

moto keeps everything in memory; devstack/persistence.py snapshots it, but a
snapshot of 10,000+ items takes about a second, so a kill -9 lost every write
acknowledged since the last one (issue 18: 31 of 61 `POST /jobs`). Here every
AWS call of the app that changes what the snapshot keeps (DynamoDB items,
SQS messages, S3 objects) leaves one record in `<state dir>/journal-NNNNNN.log`,
written and fsynced before moto's answer leaves the process. At start the
records are replayed on top of the last snapshot; a snapshot starts a new
segment and deletes the ones it covers.

What a record holds: not the request, but the after-image of everything the
call changed, read when the call finished: for each DynamoDB item its whole
new value (or "deleted"), for each SQS message its whole state (queue, body,
absolute visibility and delay times; or "gone"), for each S3 object its bytes
and metadata (or "deleted"). So:

* replay is deterministic and needs no moto: putting images back cannot fail
  a condition, draw a new message id or read the clock;
* replay is idempotent: an image already in the snapshot is put back as it
  is, which is why a snapshot may be taken while calls go on (it covers every
  record appended before it started; later ones are replayed over it);
* a call that changed nothing writes nothing: a conditional write whose
  condition failed, a cancelled transaction (rolled back by fast_moto), an
  S3 put whose If-None-Match failed. Their answer still waits (below).
* one record per call, with one CRC: a TransactWriteItems is replayed whole
  or not at all.

Order: a record's images are read under the journal's mutex, so of two
records about the same item the later one holds the later state. DynamoDB
calls are serialized by the devstack's DynamoDB lock (moto_server.py) and
append their record while still holding it, so the journal's order is the
apply order. Every answer, reads included, waits until the journal is durable
up to the last record appended when that answer was computed: nobody is told
about a write (an idempotency record read by a retry, a job read by a GET)
that a kill -9 could still take back.

Group commit: callers append to a memory buffer; the first to wait for a
record that is not yet durable becomes the leader, writes the whole buffer and
fsyncs once, then wakes everyone that buffer covered; callers arriving during
that fsync are covered by the next leader's. One fsync per group, not per call.

File format: records of `<u32 length><u32 crc32><JSON payload>`, little
endian. A kill -9 mid-write leaves a torn last record: replay stops at the
first record whose length or CRC does not check out and ignores the rest of
that segment (never acknowledged, since its fsync never finished). Each start
appends to a new segment, so a torn tail is never followed by good records.

SQS receives are not journaled (every long poll would wait for a disk
write): a received message's new visibility time and receive count are lost
on kill -9 unless a snapshot or a later record caught them, so a message
received but not yet deleted may come back at once after a restart rather
than after its timeout (at least once, which every SQS consumer tolerates). Sends, deletes, visibility changes,
purges and moves to a dead-letter queue are journaled: a deleted message stays
deleted, a sent one is never lost.

Nothing here is used on AWS.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("devstack")

_HEADER = struct.Struct("<II")  # payload length, crc32 of the payload
_SEGMENT = re.compile(r"^journal-(\d{6,})\.log$")
MAX_RECORD = 256 * 1024 * 1024  # a length above this is garbage, not a record


def enabled() -> bool:
    """DEVSTACK_JOURNAL=0 turns the journal off (bench/journal.py's baseline): snapshots alone, a kill -9 loses writes."""
    return os.environ.get("DEVSTACK_JOURNAL", "1").strip().lower() not in ("0", "false", "no", "off")


class JournalBroken(RuntimeError):
    """A write or fsync of the journal failed: nothing more can be acknowledged as durable."""


# --- segments on disk ----------------------------------------------------------------

def segment_path(directory: Path, index: int) -> Path:
    return directory / f"journal-{index:06d}.log"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """The journal's segments in `directory`, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), directory / name) for name in names if (m := _SEGMENT.match(name))]
    return sorted(found)


def drop_segments_before(directory: Path, index: int) -> int:
    """Delete the segments a snapshot covers (those numbered below `index`); returns how many."""
    dropped = 0
    for number, path in segments(directory):
        if number < index:
            path.unlink(missing_ok=True)
            dropped += 1
    if dropped:
        _fsync_directory(directory)
    return dropped


def read_segment(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The complete records of one segment, and how many bytes at its end were torn (ignored)."""
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if length > MAX_RECORD or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            records.append(json.loads(payload))
        except ValueError:
            break
        offset = end
    return records, len(data) - offset


def frame(record: dict[str, Any]) -> bytes:
    payload = json.dumps(record, separators=(",", ":")).encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the journal being written -------------------------------------------------------------

class Journal:
    """Appends records to the current segment; `commit(lsn)` returns once record `lsn` is on disk.

    LSNs (log sequence numbers) count records appended since this process
    started; they are not stored.
    """

    def __init__(self, directory: Path, segment: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.segment = segment
        self._file = self._open(segment)
        self._mutex = threading.Lock()  # the buffer, the LSN and the order of records
        self._buffer = bytearray()
        self._appended = 0
        self._durable = 0
        self._flushing = False  # a leader is writing; only one at a time touches the file
        self._done = threading.Condition(threading.Lock())
        self._broken: BaseException | None = None
        self.segment_bytes = 0  # in the current segment: the snapshotter checkpoints when it grows large
        self.records = 0
        self.fsyncs = 0

    def _open(self, segment: int) -> Any:
        file = open(segment_path(self.directory, segment), "ab")
        _fsync_directory(self.directory)  # the new segment's name survives a crash
        return file

    @property
    def last_lsn(self) -> int:
        return self._appended

    def append(self, build: Callable[[], dict[str, Any] | None]) -> int:
        """Append the record `build()` returns (None: nothing) and return the last LSN.

        `build` runs under the journal's mutex: the images it reads are in
        journal order (of two records about one item, the later holds the later state).
        """
        with self._mutex:
            record = build()
            if record is None:
                return self._appended
            data = frame(record)
            self._buffer += data
            self._appended += 1
            self.segment_bytes += len(data)
            self.records += 1
            return self._appended

    def commit(self, lsn: int) -> None:
        """Return once every record up to `lsn` is written and fsynced (group commit)."""
        if self._durable >= lsn and self._broken is None:
            return
        with self._done:
            while True:
                if self._broken is not None:
                    raise JournalBroken("the local stack's journal cannot be written") from self._broken
                if self._durable >= lsn:
                    return
                if not self._flushing:
                    self._flushing = True
                    break
                self._done.wait()
        self._lead()

    def _lead(self) -> None:
        """As the one leader: write and fsync everything appended so far."""
        def flush() -> int:
            with self._mutex:
                data, target = bytes(self._buffer), self._appended
                self._buffer.clear()
            if data:
                self._sync(data)
            return target

        self._as_leader(flush)

    def rotate(self) -> int:
        """Make everything appended so far durable and start a new segment; returns its number.

        A snapshot that starts after this covers every record of the older
        segments (each was appended after its change was applied).
        """
        with self._done:
            while self._flushing:
                self._done.wait()
            self._flushing = True

        def switch() -> int:
            with self._mutex:  # appends wait for this one fsync: the segments split at one LSN
                data, target = bytes(self._buffer), self._appended
                self._buffer.clear()
                self._sync(data)
                self._file.close()
                self.segment += 1
                self._file = self._open(self.segment)
                self.segment_bytes = 0
            return target

        self._as_leader(switch)
        return self.segment

    def _sync(self, data: bytes) -> None:
        if data:
            self._file.write(data)
        self._file.flush()
        os.fdatasync(self._file.fileno())
        self.fsyncs += 1

    def _as_leader(self, work: Callable[[], int]) -> None:
        """Run `work` (it returns the LSN it made durable) as the one flusher, then hand the
        outcome to every waiter: the new durable LSN, or the error that breaks the journal."""
        target, error = self._durable, None
        try:
            target = work()
        except BaseException as exc:
            error = exc
            log.critical("state: the journal cannot be written (%s): nothing more is acknowledged", exc)
        finally:
            with self._done:
                if error is None:
                    self._durable = max(self._durable, target)
                else:
                    self._broken = error
                self._flushing = False
                self._done.notify_all()
        if error is not None:
            raise JournalBroken("the local stack's journal cannot be written") from error

    def close(self) -> None:
        self.commit(self._appended)
        self._file.close()


# --- what a call touched, and its after-images -----------------------------------------------

class _Touched(threading.local):
    def __init__(self) -> None:
        self.active = False
        self.items: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}  # (table, hash, range)
        self.messages: dict[int, tuple[Any, Any]] = {}  # id(message) -> (queue, message)
        self.purged: list[Any] = []
        self.objects: dict[tuple[str, str], Any] = {}  # (bucket, key) -> backend


_touched = _Touched()
_recorder: "Recorder | None" = None
_ORIGINALS: list[tuple[Any, str, Any]] = []


class Recorder:
    """Builds each call's record from what moto's patched methods touched, in the stack's output names."""

    def __init__(self, journal: Journal, outputs: dict[str, str]) -> None:
        self.journal = journal
        self.tables = {name: output for output, name in outputs.items()
                       if output.endswith("TableName") and output != "OutboxTableName"}
        self.queues = {url.rstrip("/").rsplit("/", 1)[-1]: output for output, url in outputs.items()
                       if output.endswith("QueueUrl")}
        self.buckets = {name: output for output, name in outputs.items() if output.endswith("BucketName")}

    def begin(self) -> None:
        _touched.active = True
        _touched.items, _touched.messages, _touched.purged, _touched.objects = {}, {}, [], {}

    def end(self) -> int:
        """Append this call's record (if it changed anything kept) and return the LSN its answer must wait for."""
        _touched.active = False
        if _touched.items or _touched.messages or _touched.purged or _touched.objects:
            items, messages, purged, objects = _touched.items, _touched.messages, _touched.purged, _touched.objects
            _touched.items, _touched.messages, _touched.purged, _touched.objects = {}, {}, [], {}
            return self.journal.append(lambda: self._record(items, messages, purged, objects))
        return self.journal.last_lsn

    def _record(self, items: dict, messages: dict, purged: list, objects: dict) -> dict[str, Any] | None:
        from devstack.persistence import message_json

        record: dict[str, Any] = {}
        written = []
        for table, hash_key, range_key in items.values():
            output = self.tables.get(table.name)
            if output is None:
                continue
            key = {table.hash_key_attr: hash_key.to_json()}
            if range_key is not None:
                key[table.range_key_attr] = range_key.to_json()
            item = table.get_item(hash_key, range_key)
            written.append([output, key, item.to_json()["Attributes"] if item is not None else None])
        if written:
            record["d"] = written
        cleared = [self.queues[queue.name] for queue in purged if queue.name in self.queues]
        if cleared:
            record["qp"] = cleared
        sent = []
        for queue, message in messages.values():
            output = self.queues.get(queue.name)
            if output is None:
                continue
            present = any(m is message for m in reversed(queue._messages))
            sent.append([output, message.id, message_json(message) if present else None])
        if sent:
            record["q"] = sent
        stored = []
        for (bucket_name, key_name), backend in objects.items():
            output = self.buckets.get(bucket_name)
            bucket = backend.buckets.get(bucket_name)
            if output is None or bucket is None:
                continue
            key = bucket.keys.get(key_name)
            stored.append([output, key_name, None if key is None else {
                "value": base64.b64encode(key.value).decode(), "metadata": dict(key.metadata)}])
        if stored:
            record["s"] = stored
        return record or None


def _touch_item(table: Any, hash_key: Any, range_key: Any) -> None:
    _touched.items[(table.name, hash_key, range_key)] = (table, hash_key, range_key)


def install(recorder: Recorder) -> None:
    """Patch moto's mutating methods to note what each call touches (once per process)."""
    global _recorder
    _recorder = recorder
    if _ORIGINALS:
        return
    import moto.dynamodb.models as dynamodb
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.s3.models import S3Backend
    from moto.sqs.models import Queue, SQSBackend

    backend = dynamodb.DynamoDBBackend
    put_item, update_item, delete_item = backend.put_item, backend.update_item, backend.delete_item
    transact = backend.transact_write_items

    def keys_of(self: Any, table_name: str, key: dict[str, Any]) -> tuple[Any, Any, Any]:
        table = self.get_table(table_name)
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return table, hash_key, range_key

    def journaled_put_item(self: Any, table_name: str, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = put_item(self, table_name, item_attrs, *args, **kwargs)
        if _touched.active:
            _touch_item(self.get_table(table_name), item.hash_key, item.range_key)
        return item

    def journaled_update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = update_item(self, table_name, key, *args, **kwargs)
        if _touched.active:
            _touch_item(*keys_of(self, table_name, key))
        return item

    def journaled_delete_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = delete_item(self, table_name, key, *args, **kwargs)
        if _touched.active:
            _touch_item(*keys_of(self, table_name, key))
        return item

    def journaled_transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        before = dict(_touched.items)
        try:
            return transact(self, transact_items)
        except BaseException:
            _touched.items = before  # rolled back (fast_moto): the writes it made inside are undone
            raise

    queue_add, queue_delete = Queue.add_message, Queue.delete_message
    change_visibility, purge = SQSBackend.change_message_visibility, SQSBackend.purge_queue

    def journaled_add_message(self: Any, message: Any) -> None:
        queue_add(self, message)
        if _touched.active:  # a FIFO duplicate is not added: its image says "gone"
            _touched.messages[id(message)] = (self, message)

    def journaled_delete_message(self: Any, receipt_handle: str) -> None:
        doomed = [m for m in self._messages if m.had_receipt_handle(receipt_handle)] if _touched.active else []
        queue_delete(self, receipt_handle)
        for message in doomed:
            _touched.messages[id(message)] = (self, message)

    def journaled_change_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        change_visibility(self, queue_name, receipt_handle, visibility_timeout)
        if _touched.active:
            queue = self.get_queue(queue_name)
            for message in queue._messages:
                if message.had_receipt_handle(receipt_handle):
                    _touched.messages[id(message)] = (queue, message)

    def journaled_purge(self: Any, queue_name: str) -> None:
        purge(self, queue_name)
        if _touched.active:
            _touched.purged.append(self.get_queue(queue_name))

    put_object, delete_object = S3Backend.put_object, S3Backend.delete_object

    def journaled_put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        key = put_object(self, bucket_name, key_name, *args, **kwargs)
        if _touched.active:  # read at the end of the call: the metadata is set after this returns
            _touched.objects[(bucket_name, key_name)] = self
        return key

    def journaled_delete_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        result = delete_object(self, bucket_name, key_name, *args, **kwargs)
        if _touched.active:
            _touched.objects[(bucket_name, key_name)] = self
        return result

    for owner, name, value in (
            (backend, "put_item", journaled_put_item), (backend, "update_item", journaled_update_item),
            (backend, "delete_item", journaled_delete_item), (backend, "transact_write_items", journaled_transact),
            (Queue, "add_message", journaled_add_message), (Queue, "delete_message", journaled_delete_message),
            (SQSBackend, "change_message_visibility", journaled_change_visibility),
            (SQSBackend, "purge_queue", journaled_purge),
            (S3Backend, "put_object", journaled_put_object), (S3Backend, "delete_object", journaled_delete_object)):
        _ORIGINALS.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)


def uninstall() -> None:
    global _recorder
    _recorder = None
    for owner, name, value in reversed(_ORIGINALS):
        setattr(owner, name, value)
    _ORIGINALS.clear()


# --- the WSGI side: record inside, commit outside ------------------------------------------

_LSN = "devstack.journal.lsn"


class RecordCalls:
    """WSGI middleware inside the DynamoDB lock: appends each call's record before the lock is released."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        recorder = _recorder
        if recorder is None:
            return self._app(environ, start_response)
        recorder.begin()
        try:
            result = self._app(environ, start_response)
            try:
                # The whole answer is computed inside the call (moto's Flask views), but a WSGI
                # body may be lazy: build it before the record, so the record sees every change.
                body = [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            environ[_LSN] = recorder.end()
        return body


class CommitBeforeAnswer:
    """WSGI middleware outside the DynamoDB lock: no answer leaves before its journal position is on disk.

    Waiting here, not under the lock, lets concurrent calls share one fsync.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self._app(environ, start_response)
        recorder = _recorder
        lsn = environ.get(_LSN)
        if recorder is None or lsn is None:
            return result
        try:
            recorder.journal.commit(lsn)
        except JournalBroken:
            import sys

            body = json.dumps({"__type": "InternalFailure", "message": "the local stack's journal cannot be written"})
            start_response("500 Internal Server Error", [("Content-Type", "application/x-amz-json-1.0")],
                           sys.exc_info())
            return [body.encode()]
        return result


# --- replay at start ----------------------------------------------------------------------

def records(directory: Path, first_segment: int) -> Iterator[tuple[int, dict[str, Any] | None, int]]:
    """(segment, record, 0) for each complete record from `first_segment` on; (segment, None, torn bytes) at a torn end."""
    for number, path in segments(directory):
        if number < first_segment:
            continue
        found, torn = read_segment(path)
        for record in found:
            yield number, record, 0
        if torn:
            yield number, None, torn


def replay(directory: Path, outputs: dict[str, str], first_segment: int) -> dict[str, int]:
    """Apply the records of every segment from `first_segment` on to the freshly restored moto, in order."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    from devstack.persistence import account_region, message_from_json

    account, region = account_region()
    dynamodb, sqs, s3 = dynamodb_backends[account][region], sqs_backends[account][region], s3_backends[account]["aws"]
    tables = {output: dynamodb.tables.get(outputs.get(output, "")) for output in outputs if output.endswith("TableName")}
    queues = {output: sqs.queues.get(outputs[output].rstrip("/").rsplit("/", 1)[-1])
              for output in outputs if output.endswith("QueueUrl")}
    where: dict[str, Any] = {}  # message id -> its queue, for the messages restored or replayed
    for queue in queues.values():
        for message in queue._messages if queue is not None else ():
            where[message.id] = queue
    counts = {"records": 0, "torn": 0, "segments": 0}
    touched_tables = set()
    last_segment = None
    for number, record, torn in records(directory, first_segment):
        if number != last_segment:
            counts["segments"] += 1
            last_segment = number
        if record is None:
            counts["torn"] += torn
            log.warning("state: %d bytes at the end of journal segment %d were torn by a crash (never acknowledged)",
                        torn, number)
            continue
        counts["records"] += 1
        for output, key, image in record.get("d", ()):
            table = tables.get(output)
            if table is None:
                continue
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            if image is not None:
                item = Item(hash_key, range_key, image)
                if range_key is not None:
                    table.items[hash_key][range_key] = item
                else:
                    table.items[hash_key] = item
            elif range_key is not None:
                table.items.get(hash_key, {}).pop(range_key, None)
            else:
                table.items.pop(hash_key, None)
            touched_tables.add(id(table))
            table.__dict__.pop("_jobs_gsi_map", None)  # fast_moto rebuilds it from the table
        for output in record.get("qp", ()):
            queue = queues.get(output)
            if queue is not None:
                for message in queue._messages:
                    where.pop(message.id, None)
                queue._messages = []
        for output, message_id, image in record.get("q", ()):
            queue = queues.get(output)
            if queue is None:
                continue
            previous = where.pop(message_id, None)
            position = None
            if previous is not None:
                index = next((i for i, m in enumerate(previous._messages) if m.id == message_id), None)
                if index is not None:
                    del previous._messages[index]
                    position = index if previous is queue else None
            if image is None:
                continue
            message = message_from_json(image)
            if position is None:
                queue._messages.append(message)
            else:
                queue._messages.insert(position, message)  # a FIFO group keeps its order
            where[message_id] = queue
        for output, key_name, image in record.get("s", ()):
            bucket = outputs.get(output, "")
            if bucket not in s3.buckets:
                continue
            if image is None:
                s3.delete_object(bucket, key_name)
            else:
                key = s3.put_object(bucket, key_name, base64.b64decode(image["value"]), disable_notification=True)
                key.set_metadata(image.get("metadata") or {})
    for queue in queues.values():
        if queue is not None:
            with queue._messages_lock:
                queue._messages_lock.notify_all()
    return counts
