"""Pushing and reading instance logs.

Push, in this order (a batch of up to 500 entries cannot be one transaction:
TransactWriteItems takes 100 items and 4 MB):
  1. the instance (GetItem): 404 unknown / other org, 403 another agent's key;
  2. the entries: BatchWriteItem, 25 per call, unprocessed items retried;
  3. only then the instance:log event(s) in the outbox: one BatchWriteItem for
     all of them (entries are grouped so each event stays under ~100 KB).
An event therefore never announces entries that are not stored. If step 2 or
3 fails the request fails (503) and the agent retries; with an Idempotency-Key
the entry ids are derived from that key, so a retry rewrites the entries it
had already stored instead of adding copies (for entries that carry their
own timestamp; server-stamped entries get a new receive time).
Calls for 500 entries: auth GetItem + instance GetItem + 20 BatchWriteItem + 1
BatchWriteItem (events).
"""
from __future__ import annotations

import hashlib

from chalicelib.aws import dynamo
from chalicelib.core import clock, ids
from chalicelib.core.api import Call
from chalicelib.core.config import settings
from chalicelib.core.errors import Unavailable, ValidationError
from chalicelib.events import outbox
from chalicelib.instances import service as instances
from chalicelib.logs import rules, store
from chalicelib.logs.models import LogEntryIn


def push(call: Call, instance_id: str, entries: list[LogEntryIn]) -> dict:
    instance = instances.load(call, instance_id)
    received = clock.now()
    now_ms = int(received * 1000)
    times = [rules.parse_timestamp_ms(e.timestamp) if e.timestamp is not None else now_ms for e in entries]
    problems = [{"field": f"entries.{i}.timestamp", "message": why}
                for i, ms in enumerate(times) if (why := rules.check_entry_time(ms, now_ms))]
    if problems:
        raise ValidationError(f"invalid request: {problems[0]['field']}: {problems[0]['message']}", problems)
    key = call.headers.get("idempotency-key")
    seed = hashlib.sha256(f"{call.org_id}|{instance_id}|{key}".encode()).digest() if key else None
    entry_ids = ids.new_ids(times, seed)
    expires = store.expiry(received)
    items = [store.new_item(call.org_id, instance_id, entry_id, rules.format_ms(ms), e.level, e.message,
                            e.fields, expires)
             for entry_id, ms, e in zip(entry_ids, times, entries)]
    published = [store.public(item) for item in items]
    too_big = [{"field": f"entries.{i}", "message": f"is over {rules.MAX_ENTRY_BYTES} bytes as JSON"}
               for i, p in enumerate(published) if len(rules.entry_json(p).encode()) > rules.MAX_ENTRY_BYTES]
    if too_big:
        raise ValidationError(f"invalid request: {too_big[0]['field']}: {too_big[0]['message']}", too_big)
    events = [outbox.event_item(call.org_id, "instance:log",
                                {"instanceId": instance_id, "agentId": instance["agentId"], "entries": group},
                                agent_id=instance["agentId"])
              for group in rules.chunks(published)]
    try:
        store.write(items)
        dynamo.batch_put(settings().outbox_table, events)
    except dynamo.TransactionConflict:
        raise Unavailable("the log store is throttling writes: retry with the same Idempotency-Key",
                          headers={"Retry-After": "1"}) from None
    return {"accepted": len(items)}


def read(call: Call, instance_id: str, limit: int, since: str | None, level: str | None) -> list[dict]:
    instances.load(call, instance_id)
    items = store.query(call.org_id, instance_id, limit, level=level, after=rules.since_bound(since))
    return [store.public(i) for i in items]
