"""devstack/fast_moto.py (the local stack's faster moto) answers as moto does.

Random writes of every kind (put, update, delete, batch, transactions that
commit and transactions that are cancelled) against a table with two GSIs and
a stream; after each, every GSI partition is queried through the patched Query
(in pages, both directions) and compared with a brute-force answer from Scan;
cancelled transactions must leave items and the stream exactly as they were.
"""
import random
import uuid

import pytest
from botocore.exceptions import ClientError

from devstack import fast_moto as jobs_moto


@pytest.fixture
def patched(aws):
    jobs_moto.patch_transactions()
    jobs_moto.patch_index_queries()
    yield
    jobs_moto.unpatch()


@pytest.fixture
def table(aws):
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    name = f"moto-patch-{uuid.uuid4().hex[:8]}"
    attrs = ["PK", "SK", "G1", "G1S", "G2", "G2S"]
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attrs],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {"IndexName": f"IX-{g}", "Projection": {"ProjectionType": "ALL"},
             "KeySchema": [{"AttributeName": g, "KeyType": "HASH"}, {"AttributeName": f"{g}S", "KeyType": "RANGE"}]}
            for g in ("G1", "G2")],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    return client, name


def _s(v):
    return {"S": v}


def _expected(client, name, index, value):
    items, start = [], None
    while True:
        args = {"TableName": name, "FilterExpression": "#g = :v", "ExpressionAttributeNames": {"#g": index},
                "ExpressionAttributeValues": {":v": _s(value)}}
        if start:
            args["ExclusiveStartKey"] = start
        page = client.scan(**args)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    items = [i for i in items if f"{index}S" in i]  # no sort key: not in the index
    return sorted(items, key=lambda i: (i[f"{index}S"]["S"], i["PK"]["S"], i["SK"]["S"]))


def _queried(client, name, index, value, forward):
    items, start = [], None
    while True:
        args = {"TableName": name, "IndexName": f"IX-{index}", "KeyConditionExpression": "#g = :v",
                "ExpressionAttributeNames": {"#g": index}, "ExpressionAttributeValues": {":v": _s(value)},
                "Limit": 3, "ScanIndexForward": forward}
        if start:
            args["ExclusiveStartKey"] = start
        page = client.query(**args)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _stream_length(name):
    from moto.dynamodb.models import dynamodb_backends

    return len(dynamodb_backends["123456789012"]["us-east-1"].tables[name].stream_shard.items)


def test_patched_queries_and_transactions_match_moto(patched, table):
    client, name = table
    rng = random.Random(7)
    keys = [(f"p{i % 4}", f"s{i}") for i in range(24)]
    values = ["a", "b", "c"]

    def item(pk, sk):
        out = {"PK": _s(pk), "SK": _s(sk), "n": {"N": str(rng.randint(0, 9))}}
        for g in ("G1", "G2"):
            if rng.random() < 0.7:
                out[g] = _s(rng.choice(values))
                if rng.random() < 0.9:
                    out[f"{g}S"] = _s(f"{rng.randint(0, 5)}#{sk}")
        return out

    def key(pk, sk):
        return {"PK": _s(pk), "SK": _s(sk)}

    cancelled = 0
    for step in range(80):
        pk, sk = rng.choice(keys)
        op = rng.choice(["put", "update", "remove", "delete", "batch", "tx", "tx-fail"])
        if op == "put":
            client.put_item(TableName=name, Item=item(pk, sk))
        elif op == "update":
            client.update_item(TableName=name, Key=key(pk, sk), UpdateExpression="SET G1 = :v, G1S = :s",
                               ExpressionAttributeValues={":v": _s(rng.choice(values)), ":s": _s(f"u#{sk}")})
        elif op == "remove":
            client.update_item(TableName=name, Key=key(pk, sk), UpdateExpression="REMOVE G2")
        elif op == "delete":
            client.delete_item(TableName=name, Key=key(pk, sk))
        elif op == "batch":
            chosen = rng.sample(keys, 4)
            client.batch_write_item(RequestItems={name: [
                {"PutRequest": {"Item": item(*k)}} if i % 2 else {"DeleteRequest": {"Key": key(*k)}}
                for i, k in enumerate(chosen)]})
        else:
            a, b, c = rng.sample(keys, 3)
            ops = [{"Put": {"TableName": name, "Item": item(*a)}},
                   {"Update": {"TableName": name, "Key": key(*b), "UpdateExpression": "SET G2 = :v, G2S = :s",
                               "ExpressionAttributeValues": {":v": _s(rng.choice(values)), ":s": _s("t")}}},
                   {"Delete": {"TableName": name, "Key": key(*c)}}]
            if op == "tx-fail":
                ops.append({"ConditionCheck": {"TableName": name, "Key": key("nobody", "none"),
                                               "ConditionExpression": "attribute_exists(PK)"}})
                before = {k: client.get_item(TableName=name, Key=key(*k)).get("Item") for k in (a, b, c)}
                stream_before = _stream_length(name)
                with pytest.raises(ClientError) as failure:
                    client.transact_write_items(TransactItems=ops)
                assert failure.value.response["Error"]["Code"] == "TransactionCanceledException"
                after = {k: client.get_item(TableName=name, Key=key(*k)).get("Item") for k in (a, b, c)}
                assert after == before, step
                assert _stream_length(name) == stream_before, step
                cancelled += 1
            else:
                client.transact_write_items(TransactItems=ops)
        for index in ("G1", "G2"):
            for value in values:
                expected = _expected(client, name, index, value)
                assert _queried(client, name, index, value, True) == expected, (step, op, index, value)
                assert _queried(client, name, index, value, False) == expected[::-1], (step, op, index, value)
    assert cancelled > 5


def test_item_reads_answer_as_moto_serializes_them(table):
    """patch_item_responses writes Query/Scan/GetItem/BatchGetItem answers with json.dumps and projects
    top-level names by copying: the same items back."""
    client, name = table
    every_type = {"S": {"S": "ünï"}, "N": {"N": "-12.50"}, "B": {"B": b"\x00\xffbin"}, "BOOL": {"BOOL": False},
                  "NULL": {"NULL": True}, "SS": {"SS": ["a", "b"]}, "NS": {"NS": ["1", "2.5"]},
                  "BS": {"BS": [b"x", b"\x01"]}, "L": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"k": {"B": b"\x02"}}}]},
                  "M": {"M": {"nested": {"L": [{"BOOL": True}]}, "empty": {"M": {}}}}}
    for i in range(30):
        client.put_item(TableName=name, Item={"PK": _s("P"), "SK": _s(f"{i:03}"), "G1": _s("g"), "G1S": _s(f"{i:03}"),
                                              "G2": _s("h"), "G2S": _s("x"), **every_type})

    def reads():
        return [
            client.query(TableName=name, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": _s("P")},
                         Limit=7, ReturnConsumedCapacity="TOTAL"),
            client.query(TableName=name, IndexName="IX-G1", KeyConditionExpression="G1 = :g",
                         ExpressionAttributeValues={":g": _s("g")}, ScanIndexForward=False),
            client.query(TableName=name, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": _s("P")},
                         Select="COUNT"),
            client.query(TableName=name, IndexName="IX-G1", KeyConditionExpression="G1 = :g",
                         ExpressionAttributeValues={":g": _s("g")}, ExpressionAttributeNames={"#n": "N", "#null": "NULL"},
                         ProjectionExpression="S, #n, B, M, NS, BS, L, #null, absent"),
            client.query(TableName=name, KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": _s("P")},
                         ProjectionExpression="M.nested, L[2].M, S"),
            client.scan(TableName=name, Limit=11),
            client.get_item(TableName=name, Key={"PK": _s("P"), "SK": _s("003")}, ReturnConsumedCapacity="INDEXES"),
            client.get_item(TableName=name, Key={"PK": _s("P"), "SK": _s("nope")}),
            client.batch_get_item(RequestItems={name: {"Keys": [{"PK": _s("P"), "SK": _s(f"{i:03}")} for i in (1, 5)]}}),
        ]

    def sets_sorted(value):  # a set's order is not part of the answer (moto's own projection shuffles them)
        if isinstance(value, dict):
            return {k: sorted(v) if k in ("SS", "NS", "BS") else sets_sorted(v) for k, v in value.items()}
        return [sets_sorted(v) for v in value] if isinstance(value, list) else value

    def without_metadata(answers):
        return [sets_sorted({k: v for k, v in answer.items() if k != "ResponseMetadata"}) for answer in answers]

    jobs_moto.unpatch()
    expected = without_metadata(reads())
    jobs_moto.patch_index_queries()
    jobs_moto.patch_item_responses()
    try:
        assert without_metadata(reads()) == expected
        assert without_metadata(reads()) == expected  # and the projected reads shared nothing with the table
        assert expected[0]["Items"][0]["B"] == {"B": b"\x00\xffbin"} and expected[2]["Count"] == 30
        with pytest.raises(ClientError):  # errors still go through moto's own serializer
            client.query(TableName="no-such-table", KeyConditionExpression="PK = :p",
                         ExpressionAttributeValues={":p": _s("P")})
    finally:
        jobs_moto.unpatch()


def _random_value(rng, depth=0):
    kind = rng.choice(["S", "N", "BOOL", "NULL", "SS", "NS", "B", "BS"] + (["M", "L"] if depth < 3 else []))
    if kind == "S":
        return {"S": rng.choice(["", "x", "é ☃", "a\"b\\c", "0" * 40])}
    if kind == "N":
        return {"N": rng.choice(["0", "-1.5", "12345678901234567890", "1e10"])}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "SS":
        return {"SS": rng.sample(["a", "b", "c", "d"], rng.randint(1, 3))}
    if kind == "NS":
        return {"NS": rng.sample(["1", "2", "3.5", "-4"], rng.randint(1, 3))}
    if kind == "B":
        return {"B": bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))}
    if kind == "BS":
        return {"BS": [bytes([i, rng.randrange(256)]) for i in range(rng.randint(1, 3))]}
    if kind == "M":
        return {"M": {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}}
    return {"L": [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]}


def test_request_cost_patches_answer_as_moto_does(aws, table):
    """Plain AttributeValues written as they are and UpdateExpressions parsed once: every read
    (GetItem, Query on the table and a GSI, Scan, BatchGetItem, the stream's records, the new
    image an update returns) is what moto answers without the patch, binary values included."""
    client, name = table
    streams = __import__("boto3").client("dynamodbstreams", region_name="us-east-1")
    rng = random.Random(11)
    keys = [(f"p{i % 3}", f"s{i}") for i in range(18)]

    def reads():
        out = []
        for pk, sk in keys:
            out.append(client.get_item(TableName=name, Key={"PK": _s(pk), "SK": _s(sk)}, ConsistentRead=True)["Item"])
        for pk in ("p0", "p1", "p2"):
            out.append(client.query(TableName=name, KeyConditionExpression="PK = :p",
                                    ExpressionAttributeValues={":p": _s(pk)})["Items"])
        out.append(client.query(TableName=name, IndexName="IX-G1", KeyConditionExpression="G1 = :g",
                                ExpressionAttributeValues={":g": _s("a")})["Items"])
        out.append(sorted(client.scan(TableName=name)["Items"], key=str))
        out.append(client.batch_get_item(RequestItems={name: {"Keys": [
            {"PK": _s(pk), "SK": _s(sk)} for pk, sk in keys[:5]]}})["Responses"])
        stream_arn = client.describe_table(TableName=name)["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out.append([(r["eventName"], r["dynamodb"].get("NewImage"), r["dynamodb"]["Keys"])
                    for r in streams.get_records(ShardIterator=iterator)["Records"]])
        return out

    for pk, sk in keys:
        item = {"PK": _s(pk), "SK": _s(sk), **{f"a{i}": _random_value(rng) for i in range(rng.randint(1, 6))}}
        if rng.random() < 0.5:
            item["G1"] = _s(rng.choice(["a", "b"]))
            item["G1S"] = _s(sk)
        client.put_item(TableName=name, Item=item)
    for_update = [({"PK": _s("u"), "SK": _s(f"{side}{i}")}, _random_value(random.Random(i))) for i in range(6)
                  for side in ("patched-", "moto-")]
    for key, value in for_update:
        client.put_item(TableName=name, Item={**key, "a0": value})

    def updates(side):  # the same expression string each time, with other values
        return [{k: v for k, v in client.update_item(
            TableName=name, Key=key, UpdateExpression="SET #c = if_not_exists(#c, :zero) + :one, tag = :t REMOVE a0",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":t": value},
            ReturnValues="ALL_NEW")["Attributes"].items() if k != "SK"}
            for key, value in for_update if key["SK"]["S"].startswith(side)]

    jobs_moto.patch_request_costs()
    try:
        patched_images = updates("patched-") + updates("patched-")
        patched_reads = reads()
    finally:
        jobs_moto.unpatch()
    assert patched_reads == reads()
    assert patched_images == updates("moto-") + updates("moto-")


def test_sends_to_standard_and_fifo_queues_as_moto_does(aws):
    """The standard queue's send skips the attribute count; a FIFO queue's deduplication still applies."""
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    standard = sqs.create_queue(QueueName=f"std-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    fifo = sqs.create_queue(QueueName=f"f-{uuid.uuid4().hex[:8]}.fifo",
                            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    jobs_moto.patch_request_costs()
    try:
        sqs.send_message_batch(QueueUrl=standard, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}", "DelaySeconds": 0 if i < 3 else 600} for i in range(5)])
        for _ in range(2):  # content-based deduplication: the second is dropped
            sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
        with pytest.raises(ClientError):
            sqs.send_message(QueueUrl=fifo, MessageBody="no group")
        attributes = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["All"])["Attributes"]
        fifo_attributes = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=["All"])["Attributes"]
        received = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=standard, MaxNumberOfMessages=10)["Messages"])
        again = sqs.receive_message(QueueUrl=standard, MaxNumberOfMessages=10)
    finally:
        jobs_moto.unpatch()
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesDelayed"]) == ("3", "2")
    assert "ContentBasedDeduplication" not in attributes
    assert fifo_attributes["ContentBasedDeduplication"] == "true"
    assert fifo_attributes["ApproximateNumberOfMessages"] == "1"
    assert received == ["m0", "m1", "m2"]  # not the delayed ones
    assert "Messages" not in again  # in flight now
