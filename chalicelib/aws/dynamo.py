"""The one place that talks to DynamoDB.

Domains describe what to read and write (keys, items, conditions with
#name/:value placeholders and plain Python values); this module turns that
into requests, converts types, pages, and maps DynamoDB's failures to the
two exceptions domains care about: ConditionFailed and TransactionConflict.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.aws import clients

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ConditionFailed(Exception):
    """A conditional write's condition was false (in a transaction: `index` says which item)."""

    def __init__(self, index: int | None = None, item: dict[str, Any] | None = None, indexes: list[int] | None = None):
        super().__init__(f"condition failed (index={index})")
        self.index = index
        self.item = item
        # In a transaction: every item whose condition failed (DynamoDB reports each), first one = index.
        self.indexes = indexes if indexes is not None else ([] if index is None else [index])


class TransactionConflict(Exception):
    """Another transaction touched the same items; safe to retry."""


# --- type conversion -------------------------------------------------------

# DynamoDB numbers: magnitudes from 1E-130 to below 1E+126, 38 significant digits.
_SMALLEST = Decimal("1E-130")


def _to_dynamo_number(value: float) -> Decimal:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("NaN and Infinity cannot be stored in DynamoDB")
    number = Decimal(repr(value))
    if number and abs(number) < _SMALLEST:
        return Decimal(0)  # below DynamoDB's smallest magnitude: as close as it can store
    return number


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return _to_dynamo_number(value)
    if isinstance(value, dict):
        return {k: _to_dynamo_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo_value(v) for v in value]
    return value


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo_value(v)) for k, v in item.items() if v is not None}


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo_value(_deserializer.deserialize(v)) for k, v in item.items()}


def _values(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if not values:
        return None
    return {k: _serializer.serialize(_to_dynamo_value(v)) for k, v in values.items()}


def _expression_args(condition: str | None, names: dict[str, Any] | None, values: dict[str, Any] | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if condition:
        args["ConditionExpression"] = condition
    if names:
        args["ExpressionAttributeNames"] = names
    if values:
        args["ExpressionAttributeValues"] = _values(values)
    return args


# --- operations (used alone or inside a transaction) ------------------------

@dataclass
class Put:
    table: str
    item: dict[str, Any]
    condition: str | None = None
    names: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    # In a transaction: a failed condition hands back the item as it was (ConditionFailed.item),
    # saving the read that would otherwise follow. Single-item puts always ask for it.
    return_old_on_failure: bool = False

    def request(self) -> dict[str, Any]:
        request = {"TableName": self.table, "Item": serialize_item(self.item),
                   **_expression_args(self.condition, self.names, self.values)}
        if self.return_old_on_failure:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return request


@dataclass
class Update:
    """SET each field of `set`, SET each field of `copy` to another attribute of the same item,
    REMOVE each of `remove`, ADD each of `add`, if `condition`. A field of `set` or `remove`
    may be a tuple of names: a path into a map (("metadata", "k") is metadata.k), so two
    writers of different keys of one map do not overwrite each other."""

    table: str
    key: dict[str, Any]
    set: dict[str, Any] = field(default_factory=dict)
    remove: Iterable[str] = ()
    add: dict[str, Any] = field(default_factory=dict)
    condition: str | None = None
    names: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    copy: dict[str, Any] = field(default_factory=dict)
    if_missing: dict[str, Any] = field(default_factory=dict)  # SET name = if_not_exists(name, value)

    def request(self) -> dict[str, Any]:
        # Pure: building the request twice (a retried transaction) gives the same
        # request, and every placeholder it declares is used (DynamoDB rejects unused ones).
        names = dict(self.names or {})
        values = dict(self.values or {})
        clauses = []
        sets = []
        removes = list(self.remove)
        def path(prefix: str, name: str | tuple[str, ...]) -> str:
            if isinstance(name, tuple):
                for j, part in enumerate(name):
                    names[f"{prefix}_{j}"] = part
                return ".".join(f"{prefix}_{j}" for j in range(len(name)))
            names[prefix] = name
            return prefix

        for i, (name, value) in enumerate(self.set.items()):
            if value is None:  # setting None means: remove the attribute
                removes.append(name)
                continue
            values[f":s{i}"] = value
            sets.append(f"{path(f'#s{i}', name)} = :s{i}")
        for i, (name, source) in enumerate(self.copy.items()):
            names[f"#c{i}"], names[f"#f{i}"] = name, source
            sets.append(f"#c{i} = #f{i}")
        for i, (name, value) in enumerate(self.if_missing.items()):
            names[f"#m{i}"], values[f":m{i}"] = name, value
            sets.append(f"#m{i} = if_not_exists(#m{i}, :m{i})")
        if sets:
            clauses.append("SET " + ", ".join(sets))
        remove_refs = []
        for i, name in enumerate(removes):
            remove_refs.append(path(f"#r{i}", name))
        if remove_refs:
            clauses.append("REMOVE " + ", ".join(remove_refs))
        adds = []
        for i, (name, value) in enumerate(self.add.items()):
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
            adds.append(f"#a{i} :a{i}")
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        return {"TableName": self.table, "Key": serialize_item(self.key),
                "UpdateExpression": " ".join(clauses),
                **_expression_args(self.condition, names or None, values or None)}


@dataclass
class Delete:
    table: str
    key: dict[str, Any]
    condition: str | None = None
    names: dict[str, Any] | None = None
    values: dict[str, Any] | None = None

    def request(self) -> dict[str, Any]:
        return {"TableName": self.table, "Key": serialize_item(self.key),
                **_expression_args(self.condition, self.names, self.values)}


@dataclass
class ConditionCheck:
    table: str
    key: dict[str, Any]
    condition: str
    names: dict[str, Any] | None = None
    values: dict[str, Any] | None = None

    def request(self) -> dict[str, Any]:
        return {"TableName": self.table, "Key": serialize_item(self.key),
                **_expression_args(self.condition, self.names, self.values)}


@dataclass
class Page:
    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


def _ddb() -> Any:
    return clients.client("dynamodb")


def _is(error: ClientError, code: str) -> bool:
    found: str | None = error.response.get("Error", {}).get("Code")
    return found == code


def _raise_conflict(error: ClientError) -> None:
    """A single-item write that hit an item inside an ongoing transaction fails with
    TransactionConflictException, which botocore does not retry: surface it as the
    same retryable TransactionConflict that transact() raises."""
    if _is(error, "TransactionConflictException"):
        raise TransactionConflict(str(error)) from None


# --- single-item calls -----------------------------------------------------

def get(table: str, key: dict[str, Any], consistent: bool = False) -> dict[str, Any] | None:
    found = _ddb().get_item(TableName=table, Key=serialize_item(key), ConsistentRead=consistent).get("Item")
    return deserialize_item(found) if found else None


def put(op: Put) -> None:
    try:
        _ddb().put_item(**{**op.request(), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
    except ClientError as e:
        if _is(e, "ConditionalCheckFailedException"):
            old = e.response.get("Item")
            raise ConditionFailed(item=deserialize_item(old) if old else None) from None
        _raise_conflict(e)
        raise


def update(op: Update, return_new: bool = True) -> dict[str, Any] | None:
    try:
        response = _ddb().update_item(
            **op.request(), ReturnValues="ALL_NEW" if return_new else "NONE",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as e:
        if _is(e, "ConditionalCheckFailedException"):
            old = e.response.get("Item")
            raise ConditionFailed(item=deserialize_item(old) if old else None) from None
        _raise_conflict(e)
        raise
    attrs = response.get("Attributes")
    return deserialize_item(attrs) if attrs else None


def delete(op: Delete) -> None:
    try:
        _ddb().delete_item(**op.request())
    except ClientError as e:
        if _is(e, "ConditionalCheckFailedException"):
            raise ConditionFailed() from None
        _raise_conflict(e)
        raise


def transact(ops: list[Put | Update | Delete | ConditionCheck]) -> None:
    """All or nothing. Raises ConditionFailed(index) or TransactionConflict."""
    kinds = {Put: "Put", Update: "Update", Delete: "Delete", ConditionCheck: "ConditionCheck"}
    items = [{kinds[type(op)]: op.request()} for op in ops]
    try:
        _ddb().transact_write_items(TransactItems=items)
    except ClientError as e:
        if not _is(e, "TransactionCanceledException"):
            raise
        reasons = e.response.get("CancellationReasons") or []
        failed = [i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"]
        if failed:
            old = reasons[failed[0]].get("Item")
            raise ConditionFailed(index=failed[0], item=deserialize_item(old) if old else None,
                                  indexes=failed) from None
        raise TransactionConflict(str(reasons)) from None


T = TypeVar("T")


def retry_conflicts(fn: Callable[[], T], attempts: int = 4, base_delay: float = 0.01) -> T:
    """Run `fn` (a transaction, or a write to an item that transactions also touch), retrying
    TransactionConflict with jittered exponential backoff; the last conflict propagates."""
    for attempt in range(attempts - 1):
        try:
            return fn()
        except TransactionConflict:
            time.sleep(random.uniform(0.5, 1.5) * base_delay * 2 ** attempt)
    return fn()


def batch_put(table: str, items: list[dict[str, Any]]) -> None:
    """Unconditional puts, 25 per request, unprocessed items retried."""
    for start in range(0, len(items), 25):
        pending = [{"PutRequest": {"Item": serialize_item(i)}} for i in items[start:start + 25]]
        for _ in range(8):
            if not pending:
                break
            response = _ddb().batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
        if pending:
            raise TransactionConflict(f"{len(pending)} items left unprocessed")


def batch_get(table: str, keys: list[dict[str, Any]], consistent: bool = False) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {"Keys": [serialize_item(k) for k in keys[start:start + 100]]}
        if consistent:
            request["ConsistentRead"] = True
        pending = {table: request}
        for _ in range(8):
            if not pending:
                break
            response = _ddb().batch_get_item(RequestItems=pending)
            found.extend(deserialize_item(i) for i in response.get("Responses", {}).get(table, []))
            pending = response.get("UnprocessedKeys") or {}
    return found


# --- queries ---------------------------------------------------------------

def query(
    table: str,
    key_condition: str,
    values: dict[str, Any],
    names: dict[str, Any] | None = None,
    index: str | None = None,
    limit: int | None = None,
    start_key: dict[str, Any] | None = None,
    forward: bool = True,
    filter: str | None = None,
    consistent: bool = False,
    projection: str | None = None,
) -> Page:
    args: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": _values(values),
        "ScanIndexForward": forward,
    }
    if names:
        args["ExpressionAttributeNames"] = names
    if index:
        args["IndexName"] = index
    if limit:
        args["Limit"] = limit
    if start_key:
        args["ExclusiveStartKey"] = serialize_item(start_key)
    if filter:
        args["FilterExpression"] = filter
    if projection:
        args["ProjectionExpression"] = projection
    if consistent and not index:
        args["ConsistentRead"] = True
    response = _ddb().query(**args)
    last = response.get("LastEvaluatedKey")
    return Page([deserialize_item(i) for i in response.get("Items", [])], deserialize_item(last) if last else None)


def query_all(table: str, key_condition: str, values: dict[str, Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
    start = None
    while True:
        page = query(table, key_condition, values, start_key=start, **kwargs)
        yield from page.items
        if not page.last_key:
            return
        start = page.last_key


def scan(table: str, limit: int, start_key: dict[str, Any] | None = None, filter: str | None = None,
         names: dict[str, str] | None = None, values: dict[str, Any] | None = None, consistent: bool = False) -> Page:
    """One Scan page: at most `limit` items read (the filter applies after the read), resumable from `start_key`."""
    args: dict[str, Any] = {"TableName": table, "Limit": limit, "ConsistentRead": consistent}
    if start_key:
        args["ExclusiveStartKey"] = serialize_item(start_key)
    if filter:
        args["FilterExpression"] = filter
    if names:
        args["ExpressionAttributeNames"] = names
    if values:
        args["ExpressionAttributeValues"] = _values(values)
    response = _ddb().scan(**args)
    last = response.get("LastEvaluatedKey")
    return Page([deserialize_item(i) for i in response.get("Items", [])], deserialize_item(last) if last else None)
