"""Idempotency-Key on every POST: a first call costs one extra read, a replay one read.

Scope: the record is keyed by a hash of (calling keyId, method, path,
Idempotency-Key), so a key is scoped to the API key that sent it (as payment
APIs do): another caller, even of the same organization, can never replay
someone else's response. The canonical JSON body's hash is kept beside the
response: the same key with another body is 409 IDEMPOTENCY_KEY_REUSED.

Secrets: a stored response never holds a secret. The fields in SECRET_FIELDS
(a minted `apiKey` or `adminKey`) are removed before the record is written,
so the replay of a call that minted a key answers the same status and body
without the secret (the contract: "a secret is shown once").

How a first call commits (3 AWS calls for POST /keys: auth GetItem, this
GetItem, one TransactWriteItems):
  1. GetItem (consistent) of the record: a completed, unexpired record is
     replayed at once (header Idempotent-Replayed: true).
  2. The handler runs with its one write deferred (chalicelib/aws/deferred.py).
  3. That write and the record (condition: no live record) commit in one
     TransactWriteItems: the change exists if and only if its record does.
     A concurrent repeat that lost the race fails on the record's condition,
     reads the winner's record and replays it: exactly one effect.
A handler whose writes cannot be deferred (more than one write, a batch, a
read after its write), or whose deferred write failed its own condition, runs
again the ordinary way under an in-progress lock: conditional PutItem of an
INPROGRESS record, the handler, PutItem of the completed record (the lock is
deleted if the handler fails, so a corrected retry runs).

Only 2xx responses are stored; errors are not, so a retry after a 4xx runs.

Why not Powertools' idempotency utility (used before): its persistence layer
writes its record in calls of its own (PutItem in progress, then UpdateItem
complete), outside the domain's transaction, which made every first call 4
AWS calls; the record cannot ride in the domain's TransactWriteItems through
its interface. This module keeps its table layout (`id` key, `expiration` TTL).
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Callable

from chalicelib.aws import deferred, dynamo
from chalicelib.core import clock
from chalicelib.core.config import settings
from chalicelib.core.errors import Conflict, IdempotencyKeyReused, Unavailable

log = logging.getLogger(__name__)

# Response fields that are secrets shown once; never stored, never replayed.
SECRET_FIELDS = ("apiKey", "adminKey")
COMPLETED, IN_PROGRESS = "COMPLETED", "INPROGRESS"
# How long an in-progress lock blocks a retry when its holder died (above a Lambda's timeout).
IN_PROGRESS_SECONDS = 60
ATTEMPTS = 3


def record_id(scope_key: str) -> str:
    return "idem#" + hashlib.sha256(scope_key.encode()).hexdigest()


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def without_secrets(response: dict) -> dict:
    body = response.get("body")
    if isinstance(body, dict) and any(name in body for name in SECRET_FIELDS):
        body = {k: v for k, v in body.items() if k not in SECRET_FIELDS}
    return {**response, "body": body}


def _key(rid: str) -> dict:
    return {"id": rid}


def _record_put(rid: str, body_hash: str, response: dict | None, now: float) -> dynamo.Put:
    """The record, written only if no live record exists (none, or an expired one, or a dead lock)."""
    item: dict[str, Any] = {"id": rid, "validation": body_hash,
                            "expiration": int(now) + settings().idempotency_ttl_seconds}
    if response is None:
        item.update(status=IN_PROGRESS, inProgressExpiry=int(now) + IN_PROGRESS_SECONDS)
    else:
        item.update(status=COMPLETED, response=json.dumps(without_secrets(response), separators=(",", ":")))
    return dynamo.Put(settings().idempotency_table, item,
                      condition="attribute_not_exists(id) OR expiration < :now OR "
                                "(#s = :busy AND inProgressExpiry < :now)",
                      names={"#s": "status"}, values={":now": int(now), ":busy": IN_PROGRESS})


def _live(item: dict | None, now: float) -> dict | None:
    if not item or item.get("expiration", 0) < int(now):
        return None  # TTL deletion lags: an expired record is no record
    if item.get("status") == IN_PROGRESS and item.get("inProgressExpiry", 0) < int(now):
        return None
    return item


def _answer(item: dict, body_hash: str) -> dict:
    """The stored response of a live record, or why not (409)."""
    if item.get("validation") != body_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body",
            [{"field": "Idempotency-Key", "message": "reused with a different body"}])
    if item.get("status") != COMPLETED:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly",
                       [{"field": "Idempotency-Key", "message": "in progress"}])
    response = json.loads(item["response"])
    response["headers"] = {**response.get("headers", {}), "Idempotent-Replayed": "true"}
    return response


def run_once(scope_key: str, body: Any, handler: Callable[[], dict], lambda_context: Any = None) -> dict:
    """Run `handler` at most once per scope_key; returns {statusCode, headers, body}."""
    rid, body_hash = record_id(scope_key), _body_hash(body)
    table = settings().idempotency_table
    for _ in range(ATTEMPTS):
        now = clock.now()
        existing = _live(dynamo.get(table, _key(rid), consistent=True), now)
        if existing is not None:
            return _answer(existing, body_hash)
        try:
            with deferred.deferring() as deferral:
                response = handler()
        except deferred.NotDeferrable as why:
            log.debug("idempotent handler not deferrable (%s): running it under a lock", why)
            return _run_locked(rid, body_hash, handler)
        ops = deferral.ops or []
        if not 200 <= response["statusCode"] < 300:
            if ops:
                dynamo.transact(ops)
            return response
        try:
            dynamo.transact([*ops, _record_put(rid, body_hash, response, now)])
            return response
        except dynamo.ConditionFailed as failed:
            if failed.index != len(ops):
                # The handler's own write failed its condition: it would have
                # answered otherwise. Run it for real; nothing was written.
                return _run_locked(rid, body_hash, handler)
            # A concurrent repeat committed first: loop, read and replay its record.
        except dynamo.TransactionConflict:
            pass  # a concurrent repeat is committing: loop, read again
    raise Unavailable("a request with this Idempotency-Key is busy; retry", headers={"Retry-After": "1"})


def _run_locked(rid: str, body_hash: str, handler: Callable[[], dict]) -> dict:
    """The ordinary path: lock (INPROGRESS), run, store; the lock goes when the handler fails."""
    table = settings().idempotency_table
    now = clock.now()
    try:
        dynamo.put(_record_put(rid, body_hash, None, now))
    except dynamo.ConditionFailed as failed:
        existing = _live(failed.item, now) or _live(dynamo.get(table, _key(rid), consistent=True), now)
        if existing is None:
            raise Unavailable("a request with this Idempotency-Key is busy; retry",
                              headers={"Retry-After": "1"}) from None
        return _answer(existing, body_hash)
    try:
        response = handler()
    except BaseException:
        dynamo.delete(dynamo.Delete(table, _key(rid)))
        raise
    if 200 <= response["statusCode"] < 300:
        item = _record_put(rid, body_hash, response, now).item
        dynamo.put(dynamo.Put(table, item))
    else:
        dynamo.delete(dynamo.Delete(table, _key(rid)))
    return response


def reset() -> None:
    """Nothing is cached any more; kept for callers of the former Powertools-based module."""
