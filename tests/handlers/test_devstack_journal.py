"""devstack/journal.py: the local stack's write-ahead journal, below the e2e kill -9 test.

The file format (a torn or corrupted tail is ignored, the records before it
are kept), group commit under real concurrency (every commit returns only once
its record is fsynced, and concurrent commits share fsyncs), and replay: the
records of mixed writes of every kind, replayed into a freshly deployed moto,
rebuild exactly the state those writes left (failed conditional writes and
cancelled transactions write nothing; SQS receives are not journaled).
"""
from __future__ import annotations

import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from devstack import journal, persistence


def _write(directory, records):
    wal = journal.Journal(directory, 1)
    for record in records:
        wal.commit(wal.append(lambda r=record: r))
    wal.close()
    return journal.segment_path(directory, 1)


@pytest.mark.parametrize("tear", ["half a header", "half a payload", "a flipped bit", "a huge length"])
def test_a_torn_or_corrupt_last_record_is_ignored_and_the_ones_before_it_kept(tmp_path, tear):
    records = [{"d": [["MainTableName", {"PK": {"S": f"k{n}"}}, None]]} for n in range(3)]
    path = _write(tmp_path, records)
    last = journal.frame({"d": [["MainTableName", {"PK": {"S": "torn"}}, None]]})
    data = path.read_bytes()
    if tear == "half a header":
        data += last[:5]
    elif tear == "half a payload":
        data += last[: len(last) - 3]
    elif tear == "a flipped bit":
        data += last[:-1] + bytes([last[-1] ^ 1])
    else:
        data += b"\xff\xff\xff\x7f" + last[4:]
    path.write_bytes(data)
    found, torn = journal.read_segment(path)
    assert found == records
    assert torn == len(data) - len(b"".join(journal.frame(r) for r in records))


def test_concurrent_commits_share_fsyncs_and_none_returns_before_its_record_is_on_disk(tmp_path, monkeypatch):
    synced = {"size": 0, "calls": 0}
    real = os.fdatasync

    def slow_fdatasync(fd):
        real(fd)
        time.sleep(0.005)  # a disk's fsync: long enough for others to queue behind it
        synced["size"] = os.fstat(fd).st_size
        synced["calls"] += 1

    monkeypatch.setattr(journal.os, "fdatasync", slow_fdatasync)
    wal = journal.Journal(tmp_path, 1)
    early: list[str] = []
    start = threading.Barrier(16)

    def client(n):
        start.wait()
        for i in range(20):
            record = {"n": n, "i": i, "pad": "x" * (n * 7)}
            lsn = wal.append(lambda r=record: r)
            wal.commit(lsn)
            found, _ = journal.read_segment(journal.segment_path(tmp_path, 1))
            end = sum(len(journal.frame(r)) for r in found[:found.index(record) + 1]) if record in found else None
            if end is None or synced["size"] < end:  # not written, or past what the last fsync covered
                early.append(f"{n}/{i}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wal.close()
    assert not early
    found, torn = journal.read_segment(journal.segment_path(tmp_path, 1))
    assert len(found) == 320 and torn == 0
    for n in range(16):  # one writer's records in its order
        assert [r["i"] for r in found if r["n"] == n] == list(range(20))
    assert synced["calls"] < 320 / 2, synced  # group commit: well under one fsync per call


def test_rotation_splits_segments_and_dropping_keeps_the_uncovered_ones(tmp_path):
    wal = journal.Journal(tmp_path, 1)
    wal.commit(wal.append(lambda: {"a": 1}))
    second = wal.rotate()
    wal.commit(wal.append(lambda: {"b": 2}))
    assert second == 2 and [n for n, _ in journal.segments(tmp_path)] == [1, 2]
    assert journal.drop_segments_before(tmp_path, second) == 1
    assert [r for _, r, _ in journal.records(tmp_path, 0)] == [{"b": 2}]
    wal.close()


# --- replay against moto ------------------------------------------------------------------

@pytest.fixture
def recorder(aws, tmp_path):
    wal = journal.Journal(tmp_path, 1)
    rec = journal.Recorder(wal, aws)
    journal.install(rec)
    yield rec
    journal.uninstall()
    wal.close()


def _call(recorder, fn, *args, **kwargs):
    """One AWS call as the local stack's WSGI layer wraps it: record, then commit."""
    recorder.begin()
    try:
        return fn(*args, **kwargs)
    finally:
        recorder.journal.commit(recorder.end())


def _state(outputs):
    state = persistence.capture(outputs, threading.Lock())
    return ({k: sorted(v, key=repr) for k, v in state["tables"].items()},
            {k: sorted(v, key=lambda m: m["id"]) for k, v in state["queues"].items()},
            {k: sorted(v, key=lambda o: o["key"]) for k, v in state["buckets"].items()})


def test_replaying_the_journal_into_a_fresh_stack_rebuilds_what_the_calls_left(aws, recorder, tmp_path, _moto_account):
    import boto3

    ddb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
    table, queue, bucket = aws["MainTableName"], aws["JobsQueueUrl"], next(
        v for k, v in aws.items() if k.endswith("BucketName"))

    def item(pk, **attrs):
        return {"PK": {"S": pk}, "SK": {"S": "X"}, **{k: {"S": v} for k, v in attrs.items()}}

    key = lambda pk: {"PK": {"S": pk}, "SK": {"S": "X"}}  # noqa: E731
    _call(recorder, ddb.put_item, TableName=table, Item=item("A", v="1"))
    _call(recorder, ddb.put_item, TableName=table, Item=item("B", v="1"))
    _call(recorder, ddb.update_item, TableName=table, Key=key("A"), UpdateExpression="SET v = :v",
          ExpressionAttributeValues={":v": {"S": "2"}})
    _call(recorder, ddb.delete_item, TableName=table, Key=key("B"))
    _call(recorder, ddb.transact_write_items, TransactItems=[
        {"Put": {"TableName": table, "Item": item("C", v="1")}},
        {"Update": {"TableName": table, "Key": key("A"), "UpdateExpression": "SET w = :w",
                    "ExpressionAttributeValues": {":w": {"S": "t"}}}}])
    records = recorder.journal.records
    with pytest.raises(ClientError):  # a failed condition changes nothing: nothing journaled
        _call(recorder, ddb.put_item, TableName=table, Item=item("A", v="lost"),
              ConditionExpression="attribute_not_exists(PK)")
    with pytest.raises(ClientError):  # a cancelled transaction: its put is rolled back, nothing journaled
        _call(recorder, ddb.transact_write_items, TransactItems=[
            {"Put": {"TableName": table, "Item": item("D", v="never")}},
            {"ConditionCheck": {"TableName": table, "Key": key("A"), "ConditionExpression": "attribute_not_exists(PK)"}}])
    assert recorder.journal.records == records
    _call(recorder, ddb.batch_write_item, RequestItems={table: [
        {"PutRequest": {"Item": item("E", v="1")}}, {"PutRequest": {"Item": item("F", v="1")}},
        {"DeleteRequest": {"Key": key("C")}}]})

    _call(recorder, sqs.send_message, QueueUrl=queue, MessageBody="first")
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]  # receives: not journaled
    _call(recorder, sqs.delete_message, QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"])
    _call(recorder, sqs.send_message, QueueUrl=queue, MessageBody="second")
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=5)["Messages"][0]
    _call(recorder, sqs.change_message_visibility, QueueUrl=queue, ReceiptHandle=got["ReceiptHandle"],
          VisibilityTimeout=120)
    _call(recorder, sqs.send_message, QueueUrl=queue, MessageBody="later", DelaySeconds=60)
    _call(recorder, sqs.send_message_batch, QueueUrl=queue, Entries=[
        {"Id": "a", "MessageBody": "batch a"}, {"Id": "b", "MessageBody": "batch b", "DelaySeconds": 30}])

    _call(recorder, s3.put_object, Bucket=bucket, Key="kept.txt", Body=b"kept", Metadata={"who": "test"})
    _call(recorder, s3.put_object, Bucket=bucket, Key="gone.txt", Body=b"gone")
    _call(recorder, s3.delete_object, Bucket=bucket, Key="gone.txt")
    _call(recorder, s3.put_object, Bucket=bucket, Key="kept.txt", Body=b"kept, twice", Metadata={"who": "test"})

    before = _state(aws)
    assert {m["body"] for m in before[1]["JobsQueueUrl"]} == {"second", "later", "batch a", "batch b"}
    journal.uninstall()  # the "restart": a new, empty moto with the stack deployed again
    _moto_account.reset()
    from infra.stack import deploy

    outputs = deploy("cp-test")
    assert {k: v for k, v in outputs.items() if k.endswith(("TableName", "QueueUrl", "BucketName"))} == {
        k: v for k, v in aws.items() if k.endswith(("TableName", "QueueUrl", "BucketName"))}
    assert _state(outputs) != before
    counts = persistence.load(persistence.StateDir(tmp_path), outputs)
    assert counts["records"] == recorder.journal.records and counts["torn"] == 0
    assert _state(outputs) == before
    persistence.load(persistence.StateDir(tmp_path), outputs)  # replaying twice changes nothing (idempotent images)
    assert _state(outputs) == before
