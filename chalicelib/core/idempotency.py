"""Idempotency-Key on every POST: the record joins the request's one transaction.

Scope: the record is keyed by a hash of (calling keyId, method, path,
Idempotency-Key), so a key is scoped to the API key that sent it (as payment
APIs do): another caller, even of the same organization, can never replay
someone else's response. The canonical JSON body's hash is kept beside the
response: the same key with another body is 409 IDEMPOTENCY_KEY_REUSED.

Secrets: a stored response never holds a secret. The fields in SECRET_FIELDS
(a minted `apiKey` or `adminKey`) are removed before the record is written,
so the replay of a call that minted a key answers the same status and body
without the secret (the contract: "a secret is shown once").

Staged (the default of every POST; 2 AWS calls on first use for POST /keys:
the key's GetItem and one TransactWriteItems):
  1. The pipeline (core/api.py) gives the service a unit of work whose one
     `commit()` is staged (core/tx.py `Staging`): nothing is sent.
  2. After the service returns 2xx, its staged writes and the record
     (condition: no live record; ReturnValuesOnConditionCheckFailure=ALL_OLD)
     commit in one TransactWriteItems: the change exists if and only if its
     record does. No read of the record comes first.
  3. The record's condition failed: a completed call (or a concurrent repeat
     that committed first) owns the key; its record came back with the
     failure and is replayed (status, body, Idempotent-Replayed: true).
     Exactly one effect under racing repeats.
  4. The service's own condition failed (and the record's did not): the
     service runs again the ordinary way under the in-progress lock, where it
     sees its TxFailed and answers as it would.
  5. The service answered 4xx: the record is read once and replayed if it
     exists (the first call changed the state the retry now trips on).
Locked (`endpoint(..., idempotency="locked")`: a service that cannot stage
its writes: more than one commit, AWS calls after its commit, SQS/S3 side
effects, bulk writes): conditional PutItem of an INPROGRESS record, the
service, PutItem of the completed record (the lock is deleted if the service
fails, so a corrected retry runs). A staged service that turns out not to be
stageable (NotStageable, raised before anything is written) runs locked too;
tests/handlers/test_idempotency_staged.py keeps the declarations true.

Only 2xx responses are stored; errors are not, so a retry after a 4xx runs.

Why not Powertools' idempotency utility (used before): its persistence layer
writes its record in calls of its own (PutItem in progress, then UpdateItem
complete), outside the domain's transaction; the record cannot ride in the
domain's TransactWriteItems through its interface. This module keeps its
table layout (`id` key, `expiration` TTL).
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Callable, Optional

from chalicelib.aws import dynamo
from chalicelib.core import clock
from chalicelib.core.config import settings
from chalicelib.core.context import Ctx
from chalicelib.core.errors import ApiError, Conflict, IdempotencyKeyReused, Unavailable
from chalicelib.core.tx import NotStageable, Staging, Tx, TxFailed, Write

log = logging.getLogger(__name__)

# Response fields that are secrets shown once; never stored, never replayed.
SECRET_FIELDS = ("apiKey", "adminKey", "enrollmentToken", "token")  # the last two: gateways (issue 21)
COMPLETED, IN_PROGRESS = "COMPLETED", "INPROGRESS"
# How long an in-progress lock blocks a retry when its holder died (above a Lambda's timeout).
IN_PROGRESS_SECONDS = 60
ATTEMPTS = 3


def record_id(scope_key: str) -> str:
    return "idem#" + hashlib.sha256(scope_key.encode()).hexdigest()


def _body_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def without_secrets(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body")
    if isinstance(body, dict) and any(name in body for name in SECRET_FIELDS):
        body = {k: v for k, v in body.items() if k not in SECRET_FIELDS}
    return {**response, "body": body}


def _key(rid: str) -> dict[str, Any]:
    return {"id": rid}


def _record_put(rid: str, body_hash: str, response: dict[str, Any] | None, now: float) -> dynamo.Put:
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
                      names={"#s": "status"}, values={":now": int(now), ":busy": IN_PROGRESS},
                      return_old_on_failure=True)


def _live(item: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    if not item or item.get("expiration", 0) < int(now):
        return None  # TTL deletion lags: an expired record is no record
    if item.get("status") == IN_PROGRESS and item.get("inProgressExpiry", 0) < int(now):
        return None
    return item


def _answer(item: dict[str, Any], body_hash: str) -> dict[str, Any]:
    """The stored response of a live record, or why not (409)."""
    if item.get("validation") != body_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request body",
            [{"field": "Idempotency-Key", "message": "reused with a different body"}])
    if item.get("status") != COMPLETED:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly",
                       [{"field": "Idempotency-Key", "message": "in progress"}])
    response: dict[str, Any] = json.loads(item["response"])
    response["headers"] = {**response.get("headers", {}), "Idempotent-Replayed": "true"}
    return response


RECORD = "@idempotency-record"  # the record's name in the unit of work (no service names a write "@...")
# Builds a request's unit of work: a staged one (Staging.unit_of_work), or None for the ordinary one.
UnitOfWork = Optional[Callable[[Ctx], Tx]]


def _busy() -> Unavailable:
    return Unavailable("a request with this Idempotency-Key is busy; retry", headers={"Retry-After": "1"})


def _read(rid: str, now: float) -> dict[str, Any] | None:
    return _live(dynamo.get(settings().idempotency_table, _key(rid), consistent=True), now)


def run_staged(scope_key: str, body: Any, handler: Callable[[UnitOfWork], dict[str, Any]],
               status_of: Callable[[ApiError], int]) -> dict[str, Any]:
    """Run `handler` (given the unit of work to build) with its commit staged, then commit it with the
    record; returns {statusCode, headers, body}. `status_of`: the pipeline's error -> status table.
    See the module doc."""
    rid, body_hash = record_id(scope_key), _body_hash(body)
    for _ in range(ATTEMPTS):
        now = clock.now()
        staging = Staging()
        try:
            response = handler(staging.unit_of_work)
        except NotStageable as why:
            log.warning("idempotent service not stageable (%s): running it under a lock", why)
            return run_locked(scope_key, body, lambda: handler(None))
        except ApiError as error:
            if staging.writes:  # committed, then failed: what it committed stands, as unstaged
                _commit(staging.writes)
            elif 400 <= status_of(error) < 500:
                existing = _read(rid, now)
                if existing is not None:
                    return _answer(existing, body_hash)
            raise
        tx = Tx(Ctx.system())
        for name, write in staging.writes or []:
            tx.add(name, write)
        if not 200 <= response["statusCode"] < 300:
            tx.commit()  # what the service committed stands; an error answer is never stored
            existing = _read(rid, now) if 400 <= response["statusCode"] < 500 and not len(tx) else None
            return _answer(existing, body_hash) if existing is not None else response
        tx.add(RECORD, _record_put(rid, body_hash, response, now))
        try:
            tx.commit()
            return response
        except TxFailed as failed:
            if RECORD in failed.names:
                existing = _live(failed.item, now) if failed.name == RECORD else None
                existing = existing or _read(rid, now)
                if existing is not None:
                    return _answer(existing, body_hash)
                continue  # the record expired between the two: try again
            # The service's own condition failed: it would have answered otherwise.
            # Run it for real under the lock; nothing was written.
            return run_locked(scope_key, body, lambda: handler(None))
        except dynamo.TransactionConflict:
            continue  # a concurrent repeat is committing: run again, its record decides
    raise _busy()


def _commit(writes: list[tuple[str, Write]]) -> None:
    tx = Tx(Ctx.system())
    for name, write in writes:
        tx.add(name, write)
    tx.commit()


def run_locked(scope_key: str, body: Any, handler: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The ordinary path: lock (INPROGRESS), run, store; the lock goes when the handler fails."""
    rid, body_hash = record_id(scope_key), _body_hash(body)
    table = settings().idempotency_table
    now = clock.now()
    try:
        Tx(Ctx.system()).put(RECORD, _record_put(rid, body_hash, None, now)).commit()
    except TxFailed as failed:
        existing = _live(failed.item, now) or _read(rid, now)
        if existing is None:
            raise _busy() from None
        return _answer(existing, body_hash)
    try:
        response = handler()
    except BaseException:
        Tx(Ctx.system()).delete(RECORD, dynamo.Delete(table, _key(rid))).commit()
        raise
    if 200 <= response["statusCode"] < 300:
        item = _record_put(rid, body_hash, response, now).item
        Tx(Ctx.system()).put(RECORD, dynamo.Put(table, item)).commit()
    else:
        Tx(Ctx.system()).delete(RECORD, dynamo.Delete(table, _key(rid))).commit()
    return response


def reset() -> None:
    """Nothing is cached any more; kept for callers of the former Powertools-based module."""
