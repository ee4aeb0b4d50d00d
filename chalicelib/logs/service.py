"""Pushing and reading instance logs.

Push, in this order (a batch of up to 500 entries cannot be one transaction:
TransactWriteItems takes 100 items and 4 MB):
  1. the instance (GetItem): 404 unknown / other org, 403 another agent's key;
  2. the entries: BatchWriteItem, 25 per call, unprocessed items retried;
  3. only then the instance:log event(s) in the outbox: one BatchWriteItem for
     all of them (entries are grouped so each event stays under ~100 KB).
Steps 2 and 3 are one bulk unit of work (`ctx.bulk()`), which writes the
entries' table before the outbox's.
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
from dataclasses import dataclass

from chalicelib.core import ids
from chalicelib.core.context import Ctx
from chalicelib.core.errors import Unavailable, ValidationError
from chalicelib.core.tx import TransactionConflict
from chalicelib.instances import service as instances
from chalicelib.logs import events, models, rules, store
from chalicelib.logs.models import LogEntry


@dataclass(frozen=True)
class PushLogs:
    instance_id: str
    entries: list[models.LogEntryIn]
    idempotency_key: str | None = None  # entry ids derive from it, so a retry rewrites instead of adding


@dataclass(frozen=True)
class ReadLogs:
    instance_id: str
    query: models.LogQuery


def _invalid(problems: list[dict[str, str]]) -> ValidationError:
    return ValidationError(f"invalid request: {problems[0]['field']}: {problems[0]['message']}", problems)


def push(ctx: Ctx, command: PushLogs) -> models.PushLogsResult:
    instance = instances.load(ctx, command.instance_id)
    entries = command.entries
    received = ctx.now()
    now_ms = int(received * 1000)
    times = [rules.parse_timestamp_ms(e.timestamp) if e.timestamp is not None else now_ms for e in entries]
    problems = [{"field": f"entries.{i}.timestamp", "message": why}
                for i, ms in enumerate(times) if (why := rules.check_entry_time(ms, now_ms))]
    if problems:
        raise _invalid(problems)
    key = command.idempotency_key
    seed = hashlib.sha256(f"{ctx.org_id}|{instance.instance_id}|{key}".encode()).digest() if key else None
    expires = store.expiry(received)
    stored = [LogEntry(org_id=ctx.org_id, instance_id=instance.instance_id, id=entry_id,
                       timestamp=rules.format_ms(ms), level=e.level, message=e.message, fields=e.fields,
                       expires_at=expires)
              for entry_id, ms, e in zip(ids.new_ids(times, seed), times, entries, strict=True)]
    published = [entry.as_json() for entry in stored]
    too_big = [{"field": f"entries.{i}", "message": f"is over {rules.MAX_ENTRY_BYTES} bytes as JSON"}
               for i, p in enumerate(published) if len(rules.entry_json(p).encode()) > rules.MAX_ENTRY_BYTES]
    if too_big:
        raise _invalid(too_big)
    # One bulk unit of work: the entries, then their events. It writes table by table in the order the
    # puts were added, so every entry is stored before the first instance:log event is.
    tx = ctx.bulk()
    for index, entry in enumerate(stored):
        tx.put(f"entry:{index}", store.entry_put(entry))
    for group in rules.chunks(published):
        tx.emit(events.INSTANCE_LOG, events.instance_log(instance.instance_id, instance.agent_id, group),
                agent_id=instance.agent_id)
    try:
        tx.commit()
    except TransactionConflict:
        raise Unavailable("the log store is throttling writes: retry with the same Idempotency-Key",
                          headers={"Retry-After": "1"}) from None
    return models.PushLogsResult(accepted=len(stored))


def read(ctx: Ctx, command: ReadLogs) -> list[models.LogEntry]:
    q = command.query
    instances.load(ctx, command.instance_id)
    return store.query(ctx.org_id, command.instance_id, q.limit, level=q.level, after=rules.since_bound(q.since))
