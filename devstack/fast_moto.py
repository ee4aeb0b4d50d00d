"""moto's TransactWriteItems and GSI Query at a cost proportional to what they touch, not to the table.

moto 5.2.5 backs up every table a transaction touches with copy.deepcopy
before applying it, so that it can roll back; with a few thousand items that
is 100+ ms per transaction, growing with the table (measured: 7 ms at 100
items, 26 ms at 1,000, 165 ms at 5,000). Every job transition is a
transaction (state change + outbox event), so the local stack slows down
linearly as jobs accumulate. This keeps moto's own implementation and
replaces only the backup: the items the transaction names (and the length of
each stream) are saved before it runs and put back if it fails.

moto also answers a Query on a global secondary index by sorting every item
of the table and testing each (54 ms per Query at ~3,000 items, the largest
single cost of the local stack under the jobs load). patch_index_queries keeps,
per table, a map from each GSI partition key value to the items holding it,
updated on every write path (put, update, delete, batch, transaction and its
rollback), and hands moto's own Query code only those items.

And it writes the answers of item reads (Query, Scan, GetItem, BatchGetItem)
with json.dumps instead of moto's generic serializer, and projects items on
top-level attribute names by copying them (patch_item_responses):
a 1,000-item Query page cost the local stack more than everything else in a
1,000-socket fan-out.

Two per-request costs that do not grow with the table, but that the local
stack pays on every DynamoDB call (patch_request_costs): moto 5.2.5 serializes
every response through its generic shape walker, which tries each of an
AttributeValue's ten members through alias lookups for every attribute of
every item (10 ms to serialize one Query's page of jobs, 2 ms a GetItem); an
AttributeValue that is already plain wire JSON (S, N, BOOL, NULL, SS, NS, M,
L) is written as it is, anything else (binary) still goes through moto's
walker. It parses the same few UpdateExpressions again on every write;
the parse of each expression string is kept (moto's validator works on a
deep copy of it). And SQS SendMessage reads the queue's attributes, which
counts every message in the queue (the jobs queue holds a delayed lease
check per running job), only to learn ContentBasedDeduplication, which a
standard queue does not have: for a standard queue it is not computed. The
queue's receivable messages (scanned by every receive and, in a long poll,
again on every send) are found with the clock read once per scan instead of
twice per message.

Correct only where DynamoDB requests are serialized, which the devstack does
(devstack/moto_server.py: one DynamoDB request at a time). Applied by
EmbeddedMoto when the local stack starts; tests/handlers/test_devstack_fast_moto.py
checks both against moto's own answers with random writes of every kind.
"""
from __future__ import annotations

import base64
import copy
import functools
import json
import threading
from typing import Any

_PATCHED = False
_INDEXED = False
_REQUEST_COSTS = False
_EPOCH = 0  # maps built under an earlier patch missed the writes made while unpatched
_ORIGINALS: dict[tuple[Any, str], Any] = {}


def _replace(owner: Any, name: str, value: Any) -> None:
    _ORIGINALS.setdefault((owner, name), getattr(owner, name))
    setattr(owner, name, value)


def unpatch() -> None:
    """Put moto back as it was (tests that patch an in-process moto shared with other tests)."""
    global _PATCHED, _INDEXED, _ITEMS_PATCHED, _REQUEST_COSTS
    for (owner, name), value in _ORIGINALS.items():
        setattr(owner, name, value)
    _ORIGINALS.clear()
    _PATCHED = _INDEXED = _ITEMS_PATCHED = _REQUEST_COSTS = False


class _CopyWithoutTableBackups:
    """The `copy` module as moto's dynamodb models see it, minus whole-table deep copies."""

    def __init__(self, table_type: type):
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if isinstance(value, self._table_type):
            return value  # the item journal below replaces this backup
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def patch_transactions() -> None:
    global _PATCHED
    if _PATCHED:
        return
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items
    _replace(models, "copy", _CopyWithoutTableBackups(Table))

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        journal = []
        streams = {}
        for entry in transact_items:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.tables[op["TableName"]]
                key = op["Item"] if op_type == "Put" else op["Key"]
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, StopIteration, TypeError, AttributeError):
                continue  # moto's own validation reports it
            current = table.get_item(hash_key, range_key)
            journal.append((table, hash_key, range_key, copy.deepcopy(current)))
            if table.stream_shard is not None:
                streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, before in reversed(journal):
                _restore(table, hash_key, range_key, before)
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    _replace(models.DynamoDBBackend, "transact_write_items", transact_write_items)
    _PATCHED = True


def _restore(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    try:
        _restore_item(table, hash_key, range_key, before)
    finally:
        _reindex(table, hash_key, range_key)


def _restore_item(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    if range_key is None:
        if before is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = before
        return
    if before is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = before


# --- GSI queries ----------------------------------------------------------------

class _GsiMap:
    """For one table: GSI hash attribute -> value -> {item key: None}, and the reverse."""

    def __init__(self, table: Any):
        self.epoch = _EPOCH
        self.attrs = {k["AttributeName"] for index in table.global_indexes for k in index.schema
                      if k["KeyType"] == "HASH"}
        self.buckets: dict[str, dict[Any, dict]] = {attr: {} for attr in self.attrs}
        self.entries: dict[tuple, list[tuple[str, Any]]] = {}
        for item in table.all_items():
            self.add(item.hash_key, item.range_key, item)

    def add(self, hash_key: Any, range_key: Any, item: Any) -> None:
        key = (hash_key, range_key)
        self.remove(key)
        if item is None:
            return
        found = []
        for attr in self.attrs:
            value = item.attrs.get(attr)
            if value is not None:
                self.buckets[attr].setdefault(value, {})[key] = None
                found.append((attr, value))
        if found:
            self.entries[key] = found

    def remove(self, key: tuple) -> None:
        for attr, value in self.entries.pop(key, ()):
            bucket = self.buckets[attr].get(value)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self.buckets[attr][value]


def _gsi_map(table: Any) -> "_GsiMap | None":
    gsi = table.__dict__.get("_jobs_gsi_map")
    return gsi if gsi is not None and gsi.epoch == _EPOCH and _INDEXED else None


def _reindex(table: Any, hash_key: Any, range_key: Any) -> None:
    gsi = _gsi_map(table)
    if gsi is not None:
        gsi.add(hash_key, range_key, table.get_item(hash_key, range_key) if hash_key is not None else None)


class _ResultsCopy:
    """The `copy` module as moto's table.py sees it; a projected GSI query's results list is copied shallowly.

    Only while `skip.on` (set around one projected GSI query, under the
    DynamoDB lock): Table.query deep-copies its matches, then Item.project
    (patch_item_responses: copies the projected attributes) builds new items,
    so nothing the caller gets is shared with the table.
    """

    def __init__(self) -> None:
        self.skip = threading.local()

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        if getattr(self.skip, "on", False) and isinstance(value, list):
            return list(value)
        return copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


_results_copy = _ResultsCopy()


def patch_index_queries() -> None:
    global _INDEXED, _EPOCH
    if _INDEXED:
        return
    _EPOCH += 1
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    table_put, table_delete, table_query = Table.put_item, Table.delete_item, Table.query
    backend_update = models.DynamoDBBackend.update_item

    def put_item(self: Any, item_attrs: dict, *args: Any, **kwargs: Any) -> Any:
        item = table_put(self, item_attrs, *args, **kwargs)
        _reindex(self, item.hash_key, item.range_key)
        return item

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return table_delete(self, hash_key, range_key)
        finally:
            _reindex(self, hash_key, range_key)

    def update_item(self: Any, table_name: str, key: dict, *args: Any, **kwargs: Any) -> Any:
        try:
            return backend_update(self, table_name, key, *args, **kwargs)
        finally:
            table = self.tables.get(table_name)
            if table is not None and table.hash_key_attr in key:
                _reindex(table, DynamoType(key[table.hash_key_attr]),
                         DynamoType(key[table.range_key_attr]) if table.range_key_attr else None)

    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
              exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
              index_name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        call = (self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
                projection_expressions, index_name, *args)
        index = next((i for i in self.global_indexes if i.name == index_name), None) if index_name else None
        conditions = kwargs.get("hash_key_conditions") or []
        hash_attrs = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] if index else []
        if index is None or len(hash_attrs) != 1 or len(conditions) != 1 or conditions[0][0] != hash_attrs[0]:
            return table_query(*call, **kwargs)
        gsi = _gsi_map(self)
        if gsi is None:
            gsi = self.__dict__["_jobs_gsi_map"] = _GsiMap(self)
        keys = gsi.buckets.get(hash_attrs[0], {}).get(conditions[0][1], {})
        items = [i for i in (self.get_item(h, r) for h, r in keys) if i is not None]
        items.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        self.all_items = lambda: items  # moto's own query code, over the matching items only
        # A projection builds new items from the matches anyway: moto's deep copy of every
        # whole matching item before it (most of a 1,000-connection Query) is skipped.
        _results_copy.skip.on = bool(projection_expressions) and _ITEMS_PATCHED
        _results_copy.skip.sizes = {}  # moto sizes each match twice (the 1 MB page limit): once is enough
        try:
            return table_query(*call, **kwargs)
        finally:
            _results_copy.skip.on = False
            _results_copy.skip.sizes = None
            del self.all_items

    import moto.dynamodb.models.table as table_module
    from moto.dynamodb.models.dynamo_type import Item

    item_size = Item.size

    def size(self: Any) -> int:
        sizes = getattr(_results_copy.skip, "sizes", None)
        if sizes is None:
            return item_size(self)
        found = sizes.get(id(self))
        if found is None:
            found = sizes[id(self)] = item_size(self)
        return found

    for owner, name, value in ((Table, "put_item", put_item), (Table, "delete_item", delete_item),
                               (Table, "query", query), (models.DynamoDBBackend, "update_item", update_item),
                               (table_module, "copy", _results_copy), (Item, "size", size)):
        _replace(owner, name, value)
    _INDEXED = True




# Reads whose answer is items: moto 5.2.5 serializes them through its generic, shape-driven
# ResponseSerializer, ~10 ms per 1,000-item Query page on an idle core (the fan-out's
# connection list: 75% of the local stack's samples in a 1,000-socket fan-out, read
# timeouts under load). Their output is plain JSON (numbers as strings, binary as base64),
# so json.dumps writes the same document; anything else goes through moto's serializer.
_ITEM_READS = frozenset({"Query", "Scan", "GetItem", "BatchGetItem"})
_ITEMS_PATCHED = False


class _NotPlain(Exception):
    pass


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise _NotPlain(type(value).__name__)  # a timestamp or a model object: moto's serializer knows its shape


def patch_item_responses() -> None:
    global _ITEMS_PATCHED
    if _ITEMS_PATCHED:
        return
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
    from moto.dynamodb.responses import DynamoResult

    item_project = Item.project

    def project(self: Any, projection_expressions: list[list[str]]) -> Any:
        """Top-level attribute names (the fan-out's connection list): copy those attributes.

        moto's own projection turns the whole item into plain JSON, picks the
        paths and serializes the result back to typed attributes, several times
        the cost of the query itself; nested paths still take that way.
        """
        names = [expr[0] for expr in projection_expressions]
        if any(len(expr) != 1 or "[" in expr[0] or "." in expr[0] for expr in projection_expressions):
            return item_project(self, projection_expressions)
        result = Item.__new__(Item)
        result.hash_key, result.range_key = self.hash_key, self.range_key
        attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(attrs)
        for name in names:
            if name in self.attrs:
                dict.__setitem__(attrs, name, copy.deepcopy(self.attrs[name]))
        result.attrs = attrs
        return result

    original = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in _ITEM_READS and isinstance(self.result, dict):
            try:
                body = json.dumps(self.result, default=_json_default)
            except (_NotPlain, ValueError, TypeError):
                pass
            else:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(self, context)

    _replace(DynamoResult, "execute_result", execute_result)
    _replace(Item, "project", project)
    _ITEMS_PATCHED = True


# --- per-request costs: response serialization, expression parsing ------------------

_ATTRIBUTE_VALUE_MEMBERS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})


def _plain_attribute_value(value: Any) -> bool:
    """True if moto's serializer would write this AttributeValue unchanged: one member, JSON-native, no binary."""
    if type(value) is not dict or len(value) != 1:
        return False
    (kind, inner), = value.items()
    if kind == "S" or kind == "N":
        return type(inner) is str
    if kind == "BOOL" or kind == "NULL":
        return type(inner) is bool
    if kind == "SS" or kind == "NS":
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind == "M":
        return type(inner) is dict and all(type(k) is str and _plain_attribute_value(v) for k, v in inner.items())
    if kind == "L":
        return type(inner) is list and all(_plain_attribute_value(v) for v in inner)
    return False  # B, BS (base64 on the wire) or anything unexpected: moto's own path


def patch_request_costs() -> None:
    global _REQUEST_COSTS
    if _REQUEST_COSTS:
        return
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    serialize_structure = BaseJSONSerializer._serialize_type_structure

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (key and shape.name == "AttributeValue" and set(shape.members) == _ATTRIBUTE_VALUE_MEMBERS
                and _plain_attribute_value(value)):
            serialized[self.get_serialized_name(shape, key)] = value
            return
        serialize_structure(self, serialized, value, shape, key)

    make = UpdateExpressionParser.make.__func__

    @functools.lru_cache(maxsize=4096)  # the app's expressions are few; anything else is not kept forever
    def make_once(cls: Any, expression_str: str) -> Any:
        return make(cls, expression_str)

    from moto.sqs.models import Queue, SQSBackend

    queue_attributes, send_message = Queue.attributes, SQSBackend.send_message
    sending = threading.local()

    def attributes(self: Any) -> Any:
        if getattr(sending, "standard", False) and not self.fifo_queue:
            return {}  # all send_message reads is ContentBasedDeduplication, a FIFO queue's attribute
        return queue_attributes.fget(self)

    def send_message_counting_nothing(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.standard = True
        try:
            return send_message(self, *args, **kwargs)
        finally:
            sending.standard = False

    from moto.sqs import models as sqs_models

    def messages(self: Any) -> list[Any]:
        now = sqs_models.unix_time_millis()  # Message.visible/.delayed each read it again, per message
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    _replace(Queue, "messages", property(messages))
    _replace(Queue, "attributes", property(attributes))
    _replace(SQSBackend, "send_message", send_message_counting_nothing)
    _replace(BaseJSONSerializer, "_serialize_type_structure", _serialize_type_structure)
    _replace(UpdateExpressionParser, "make", classmethod(make_once))
    _REQUEST_COSTS = True
