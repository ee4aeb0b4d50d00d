"""The local stack's state on disk: moto keeps everything in memory, this keeps it across restarts.

What is kept, in `<state dir>/snapshot.json` (default `.devstack/state/` in
the checkout, ignored by git):

* every item of the stack's tables (outputs named `*TableName`), except the
  outbox: its events were delivered (or were for connections that a restart
  closes anyway), and a fresh stream starts empty;
* every message of the stack's queues (outputs named `*QueueUrl`) with its
  absolute visibility and delay times, so a delayed lease check fires when it
  was due, and one that was in flight when the snapshot was taken comes back
  after its visibility timeout, exactly as it would have on SQS;
* every object of the stack's buckets (outputs named `*BucketName`).

Beside it, `local.json`: the root admin key seeded at the first start and the
API key pepper, so keys issued before a restart still authenticate; and the
journal's segments (devstack/journal.py): every change to the above since the
snapshot, each fsynced before moto answered the call that made it. A start
loads the snapshot, then replays the journal on top (`load`): nothing
acknowledged is lost, not even on kill -9.

When: with the journal, a snapshot is a checkpoint that bounds the replay at
start. `Snapshotter` takes one every 60 s while something changed
(DEVSTACK_CHECKPOINT_SECONDS), sooner once the journal's segment passes
16 MB, at each start and on a clean stop; each starts a new journal segment
first and deletes the segments it covers once it is on disk. Without the
journal (DEVSTACK_JOURNAL=0, for bench/journal.py's baseline) snapshots are
all there is, at most every 0.5 s while moto changes, and a kill -9 loses what
was acknowledged since the last one. Each snapshot is written to a temporary
file, fsynced and renamed over the previous one, so a kill -9 at any moment
leaves the last complete snapshot. Reads take the snapshot from moto's models
directly, under the devstack's DynamoDB lock (so a transaction is either
wholly in it or not at all), never over HTTP.

Nothing here is used on AWS.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from devstack import journal

log = logging.getLogger("devstack")

FORMAT = 1
SNAPSHOT = "snapshot.json"
LOCAL = "local.json"

# DynamoDB and SQS actions that change nothing worth a new snapshot. A received
# message's new visibility is not worth one either: without it the message is
# redelivered after a crash, which SQS consumers must tolerate anyway.
_READ_ACTIONS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "DescribeTimeToLive", "ListTables",
    "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints",
    "ReceiveMessage", "GetQueueAttributes", "GetQueueUrl", "ListQueues", "ListQueueTags",
    "DescribeStream", "GetRecords", "GetShardIterator", "ListStreams",
})


class ChangeCounter:
    """WSGI middleware: counts moto's answered mutating requests (the snapshotter compares the count)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        result = self._app(environ, start_response)
        if _mutates(environ):
            # Counted after the request was applied: a snapshot that starts
            # before it would otherwise record the count without the change.
            with self._lock:
                self.count += 1
        return result


def _mutates(environ: dict[str, Any]) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rpartition(".")[2] not in _READ_ACTIONS
    return environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD", "OPTIONS")


def account_region() -> tuple[str, str]:
    return os.environ.get("AWS_ACCOUNT_ID", "123456789012"), os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


# --- reading moto's state ------------------------------------------------------------

def capture(outputs: dict[str, str], dynamodb_lock: threading.Lock) -> dict[str, Any]:
    """The stack's tables, queues and buckets, as plain JSON."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    account, region = account_region()
    tables: dict[str, list[dict[str, Any]]] = {}
    dynamodb = dynamodb_backends[account][region]
    with dynamodb_lock:
        for output, name in outputs.items():
            if output.endswith("TableName") and output != "OutboxTableName" and name in dynamodb.tables:
                tables[output] = [item.to_json()["Attributes"] for item in dynamodb.tables[name].all_items()]
    queues: dict[str, list[dict[str, Any]]] = {}
    sqs = sqs_backends[account][region]
    for output, url in outputs.items():
        queue = sqs.queues.get(url.rstrip("/").rsplit("/", 1)[-1]) if output.endswith("QueueUrl") else None
        if queue is not None:
            with queue._messages_lock:
                queues[output] = [message_json(message) for message in queue._messages]
    buckets: dict[str, list[dict[str, Any]]] = {}
    s3 = s3_backends[account]["aws"]
    for output, name in outputs.items():
        if output.endswith("BucketName") and name in s3.buckets:
            buckets[output] = [
                {"key": key.name, "value": base64.b64encode(key.value).decode(), "metadata": dict(key.metadata)}
                for key in list(s3.buckets[name].keys.values())
            ]
    return {"format": FORMAT, "savedAt": time.time(), "tables": tables, "queues": queues, "buckets": buckets}


def message_json(message: Any) -> dict[str, Any]:
    return {
        "id": message.id, "body": message.body, "messageAttributes": message.message_attributes,
        "systemAttributes": message.system_attributes, "groupId": message.group_id,
        "deduplicationId": message.deduplication_id, "sentTimestamp": message.sent_timestamp,
        "receiveCount": message.approximate_receive_count,
        "firstReceiveTimestamp": message.approximate_first_receive_timestamp,
        # Absolute epoch milliseconds: a delay or visibility timeout keeps running while the stack is down.
        "visibleAt": message.visible_at, "delayedUntil": message.delayed_until,
    }


# --- writing it back into a fresh moto ---------------------------------------------------

def restore(snapshot: dict[str, Any], outputs: dict[str, str]) -> dict[str, int]:
    """Load a snapshot into the freshly deployed stack; returns how many items, messages and objects."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends
    from moto.sqs.models import sqs_backends

    account, region = account_region()
    counts = {"items": 0, "messages": 0, "objects": 0}
    dynamodb = dynamodb_backends[account][region]
    for output, items in snapshot.get("tables", {}).items():
        table = dynamodb.tables.get(outputs.get(output, ""))
        if table is None:
            log.warning("state: no table for %s any more; %d items not restored", output, len(items))
            continue
        _load_items(table, items)
        counts["items"] += len(items)
    sqs = sqs_backends[account][region]
    for output, messages in snapshot.get("queues", {}).items():
        queue = sqs.queues.get(outputs.get(output, "").rstrip("/").rsplit("/", 1)[-1])
        if queue is None:
            log.warning("state: no queue for %s any more; %d messages not restored", output, len(messages))
            continue
        with queue._messages_lock:
            queue._messages.extend(message_from_json(saved) for saved in messages)
            queue._messages_lock.notify_all()
        counts["messages"] += len(messages)
    s3 = s3_backends[account]["aws"]
    for output, objects in snapshot.get("buckets", {}).items():
        bucket = outputs.get(output, "")
        if bucket not in s3.buckets:
            log.warning("state: no bucket for %s any more; %d objects not restored", output, len(objects))
            continue
        for saved in objects:
            key = s3.put_object(bucket, saved["key"], base64.b64decode(saved["value"]), disable_notification=True)
            key.set_metadata(saved.get("metadata") or {})
        counts["objects"] += len(objects)
    return counts


def message_from_json(saved: dict[str, Any]) -> Any:
    """A moto SQS message as message_json saved it."""
    from moto.sqs.models import Message

    message = Message(saved["id"], saved["body"], saved.get("systemAttributes") or {})
    message.message_attributes = saved.get("messageAttributes") or {}
    message.group_id = saved.get("groupId")
    message.deduplication_id = saved.get("deduplicationId")
    message.sent_timestamp = saved.get("sentTimestamp")
    message.approximate_receive_count = saved.get("receiveCount", 0)
    message.approximate_first_receive_timestamp = saved.get("firstReceiveTimestamp")
    message.visible_at = saved.get("visibleAt", 0.0)
    message.delayed_until = saved.get("delayedUntil", 0.0)
    return message


def _load_items(table: Any, items: list[dict[str, Any]]) -> None:
    """Straight into moto's item map (put_item re-validates every item: 4x slower at start-up).

    The items were valid when saved; the devstack's GSI map (fast_moto) is
    dropped and rebuilt from the table on its next query.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    hash_attr, range_attr = table.hash_key_attr, table.range_key_attr
    for attributes in items:
        hash_value = DynamoType(attributes[hash_attr])
        range_value = DynamoType(attributes[range_attr]) if range_attr else None
        item = Item(hash_value, range_value, attributes)
        if range_value is not None:
            table.items[hash_value][range_value] = item
        else:
            table.items[hash_value] = item
    table.__dict__.pop("_jobs_gsi_map", None)


# --- the state directory -------------------------------------------------------------------

class StateDir:
    """`<dir>/snapshot.json`, `<dir>/local.json` (written atomically) and the journal's segments."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def clear(self) -> None:
        for name in (SNAPSHOT, LOCAL):
            (self.path / name).unlink(missing_ok=True)
        for _, segment in journal.segments(self.path):
            segment.unlink()

    def load_snapshot(self) -> dict[str, Any] | None:
        return self._read(SNAPSHOT)

    def save_snapshot(self, snapshot: dict[str, Any]) -> int:
        return self._write(SNAPSHOT, snapshot)

    def next_segment(self) -> int:
        """The number a new journal segment gets: after every one on disk."""
        found = journal.segments(self.path)
        return found[-1][0] + 1 if found else 1

    def local(self) -> dict[str, Any]:
        """The pepper (made once) and the seeded root key, if any."""
        data = self._read(LOCAL) or {}
        if "apiKeyPepper" not in data:
            data["apiKeyPepper"] = secrets.token_urlsafe(32)
            self._write(LOCAL, data)
        return data

    def remember_seed(self, seed: dict[str, Any]) -> None:
        data = self.local()
        if seed.get("adminApiKey") and data.get("adminApiKey") != seed["adminApiKey"]:
            data.update({"adminApiKey": seed["adminApiKey"], "orgId": seed.get("orgId")})
            self._write(LOCAL, data)

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None

    def _write(self, name: str, data: dict[str, Any]) -> int:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / name
        partial = target.with_name(name + ".partial")
        payload = json.dumps(data, separators=(",", ":")).encode()
        with open(partial, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, target)
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        return len(payload)


def load(state: StateDir, outputs: dict[str, str]) -> dict[str, int]:
    """At start: the last snapshot, then the journal's records after it; returns what was loaded.

    Segments the snapshot covers (left behind by a crash between a snapshot
    and their deletion) are deleted, not replayed.
    """
    counts = {"items": 0, "messages": 0, "objects": 0}
    saved = state.load_snapshot()
    if saved:
        counts = restore(saved, outputs)
    first = int((saved or {}).get("journalSegment", 0))
    journal.drop_segments_before(state.path, first)
    counts.update(journal.replay(state.path, outputs, first))
    return counts


class Snapshotter:
    """A thread that saves a snapshot whenever moto changed.

    With the journal (the default), a snapshot is a checkpoint: every write is
    already durable in the journal, and the snapshot only bounds how much of it
    a start replays. It is taken every `checkpoint_seconds` while something
    changed, or sooner once the journal's current segment exceeds
    `checkpoint_bytes`, and it deletes the segments it covers. Without the
    journal (DEVSTACK_JOURNAL=0), snapshots are all there is: at most every
    `interval` seconds, and a kill -9 loses what was acknowledged since the last one.
    """

    def __init__(self, state: StateDir, outputs: dict[str, str], counter: ChangeCounter,
                 dynamodb_lock: threading.Lock, interval: float = 0.5, wal: journal.Journal | None = None,
                 checkpoint_seconds: float = 60.0, checkpoint_bytes: int = 16 * 1024 * 1024) -> None:
        self._state, self._outputs, self._counter = state, outputs, counter
        self._lock, self._interval = dynamodb_lock, interval
        self._journal = wal
        self._checkpoint_seconds, self._checkpoint_bytes = checkpoint_seconds, checkpoint_bytes
        self._saved_count = counter.count
        self._saved_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)
        self.snapshots = 0
        self.last_seconds = 0.0
        self.last_bytes = 0

    def start(self) -> None:
        self._thread.start()

    def save_if_changed(self) -> bool:
        if self._counter.count == self._saved_count:
            return False
        self.save()
        return True

    def save(self) -> None:
        """Take a snapshot now; with the journal, delete the segments it covers."""
        count = self._counter.count
        started = time.perf_counter()
        # A new segment first: every record of the older ones was appended after its change was
        # applied, so the capture below (which starts later) holds that change or a later state.
        first_uncovered = self._journal.rotate() if self._journal else self._state.next_segment()
        snapshot = capture(self._outputs, self._lock)
        snapshot["journalSegment"] = first_uncovered
        self.last_bytes = self._state.save_snapshot(snapshot)
        journal.drop_segments_before(self._state.path, first_uncovered)
        self.last_seconds = time.perf_counter() - started
        self._saved_count = count
        self._saved_at = time.monotonic()
        self.snapshots += 1

    def _due(self) -> bool:
        if self._journal is None:
            return True
        return (time.monotonic() - self._saved_at >= self._checkpoint_seconds
                or self._journal.segment_bytes >= self._checkpoint_bytes)

    def _run(self) -> None:
        # Without the journal, a write acknowledged at t is on disk by t + wait + one snapshot's
        # duration: the wait shrinks as snapshots grow (bench/local_state.py).
        while not self._stop.wait(max(0.05, min(self._interval, 0.95 - self.last_seconds))):
            try:
                if self._due():
                    self.save_if_changed()
            except Exception:
                log.exception("state: snapshot failed (the previous one and the journal are kept)")

    def stop(self) -> None:
        """Stop the thread and save a final snapshot (a clean stop leaves an empty journal)."""
        self._stop.set()
        self._thread.join()
        self.save_if_changed()
