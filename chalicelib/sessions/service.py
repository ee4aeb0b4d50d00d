"""Sessions: create, get, update (status, taskId, metadata merge), list with total, retention.

Every change is one transaction: the session, its counters (when the status
moves), its audit event and its `session:updated` outbox event. A status
write is conditional on the status the service read, so of two concurrent
moves exactly one lands; the other re-reads and gets its answer from the
rules (409 INVALID_TRANSITION once the session is terminal).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.core import ids, paging, retention
from chalicelib.core.context import Ctx
from chalicelib.core.errors import InvalidTransition, Unavailable, ValidationError
from chalicelib.core.lookup import ULID, found, minted
from chalicelib.core.tx import Tx, TxFailed, retry_conflicts
from chalicelib.sessions import rules, store
from chalicelib.sessions.models import Session, SessionList
from chalicelib.core.transitions import Answer, moves
from chalicelib.sessions.rules import Status

EVENT = "session:updated"
RETENTION_PAGE = 100
_READ_ATTEMPTS = 8  # re-reads after a lost condition: only a steady stream of other writers exhausts them


@dataclass(frozen=True)
class CreateSession:
    agent_role: str
    task_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class UpdateSession:
    session_id: str
    status: Status | None = None
    task_id: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class ListSessions:
    status: Status | None = None
    page: int = 1
    page_size: int = rules.PAGE_SIZE_DEFAULT
    next_token: str | None = None


def _owner(ctx: Ctx) -> str | None:
    return ctx.principal.agent_id if ctx.principal is not None else None


def _commit(tx: Tx) -> None:
    retry_conflicts(tx.commit, attempts=8, base_delay=0.02)


def _event(session: Session) -> dict[str, Any]:
    """`session:updated` carries the session as GET /sessions/{id} shows it."""
    return session.model_dump(mode="json", by_alias=True, exclude_none=True)


def create(ctx: Ctx, command: CreateSession) -> Session:
    now = ctx.iso()
    session = Session(session_id=ids.new_id(), agent_role=command.agent_role,
                      status=Status.PENDING, created_at=now, updated_at=now, task_id=command.task_id,
                      metadata=rules.merge_metadata({}, command.metadata or {}), owner_agent_id=_owner(ctx))
    tx = ctx.tx()
    tx.put("session", store.put_new(ctx.org_id, session))
    tx.put("list", store.put_list_entry(ctx.org_id, session))
    tx.update("counts", store.count_new(ctx.org_id, session.status))
    tx.audit("session", session.session_id, "created",
             {"agentRole": session.agent_role, "taskId": session.task_id, "status": session.status.value})
    tx.emit(EVENT, _event(session), agent_id=session.owner_agent_id)
    _commit(tx)
    return session


def get(ctx: Ctx, session_id: str) -> Session:
    return found(store.get(ctx.org_id, minted("session", session_id)), "session", session_id)


def update(ctx: Ctx, command: UpdateSession) -> Session:
    for _ in range(_READ_ATTEMPTS):
        session = get(ctx, command.session_id)
        current = session.status
        moving = command.status is not None and moves(rules.transition(current, command.status), "session",
                                                      current, command.status)
        edits = command.task_id is not None or bool(command.metadata)
        if edits and not rules.may_edit(current):
            raise InvalidTransition(f"a {current.value} session is final: taskId and metadata no longer change")
        if not moving and not edits:
            return session  # same-state update: nothing to write
        now = ctx.iso()
        new_status = command.status if moving and command.status is not None else current
        after = session.model_copy(update={"status": new_status, "updated_at": now,
                                           "task_id": command.task_id or session.task_id,
                                           "metadata": rules.merge_metadata(session.metadata, command.metadata or {})})
        details: dict[str, Any] = {}
        if moving:
            details["status"] = {"from": current.value, "to": new_status.value}
        if command.task_id is not None:
            details["taskId"] = command.task_id
        if command.metadata:
            details["metadataKeys"] = sorted(command.metadata)
        tx = ctx.tx()
        tx.update("session", store.change(ctx.org_id, session.session_id, current, now, new_status if moving else None,
                                          command.task_id, command.metadata))
        if moving:
            tx.update("counts", store.count_move(ctx.org_id, current, new_status))
        tx.audit("session", session.session_id, "updated", details)
        tx.emit(EVENT, _event(after), agent_id=session.owner_agent_id)
        try:
            _commit(tx)
        except TxFailed as failed:
            if failed.name == "session":
                continue  # someone moved it since we read it: decide again on what is there now
            raise
        return after
    raise Unavailable("the session is busy with other changes; retry", headers={"Retry-After": "1"})


def _scope(ctx: Ctx, status: Status | None) -> str:
    return f"sessions:{ctx.org_id}:{status.value if status else '*'}"


def list_sessions(ctx: Ctx, command: ListSessions) -> SessionList:
    """Page k: k x pageSize keys from the keys-only index (or pageSize after a nextToken), then one
    BatchGetItem for the page's sessions and the counters behind `total`."""
    scope = _scope(ctx, command.status)
    size = command.page_size
    if command.next_token:
        cursor = paging.start_key(command.next_token, scope)
        if cursor is None or not isinstance(cursor.get("k"), dict) or not isinstance(cursor.get("p"), int):
            raise ValidationError.field("nextToken", "nextToken is not valid for this list")
        page_no = cursor["p"] + 1
        found = store.list_keys(ctx.org_id, command.status, size, cursor["k"])
        window = found.items
    else:
        page_no = command.page
        skip, upto = rules.page_window(page_no, size)
        found = store.list_keys(ctx.org_id, command.status, upto)
        window = found.items[skip:upto]
    sessions, counts = store.batch_with_counts(ctx.org_id, window)
    if command.status is not None:  # the index is eventually consistent; the item is the truth
        sessions = [s for s in sessions if s.status == command.status]
    more = bool(found.last_key) and len(window) == size
    token = paging.next_token({"k": _index_key(window[-1]), "p": page_no}, scope) if more else None
    total = int(counts.get(command.status.value if command.status else store.ALL, 0))
    return SessionList(sessions=sessions, total=max(total, 0), page=page_no, page_size=size, next_token=token)


def _index_key(key: dict[str, Any]) -> dict[str, Any]:
    return {k: key[k] for k in ("PK", "SK", "GSI5PK", "GSI5SK")}


# --- retention -----------------------------------------------------------------

def expire_old(ctx: Ctx) -> dict[str, int]:
    """Expire every open session created more than SESSION_RETENTION_DAYS ago, in pages of 100 per
    index shard. Each expiry is conditional on the status it found, so a second run (or one racing
    a client's update) changes nothing twice."""
    cutoff = rules.retention_cutoff_ms(ctx.now(), ctx.settings.session_retention_days)
    bound = ids.time_bound(max(cutoff, 0), upper=False)
    expired = skipped = 0
    for shard in range(store.OPEN_SHARDS):
        start = None
        while True:
            sessions, start = store.open_before(shard, bound, RETENTION_PAGE, start)
            for org_id, session in sessions:
                if _expire_one(ctx.for_org(org_id), session):
                    expired += 1
                else:
                    skipped += 1
            if not start:
                break
    return {"expired": expired, "skipped": skipped}


def _expire_one(ctx: Ctx, session: Session) -> bool:
    if rules.transition(session.status, Status.EXPIRED) is not Answer.MOVE:
        return False
    now = ctx.iso()
    after = session.model_copy(update={"status": Status.EXPIRED, "updated_at": now})
    tx = ctx.tx()
    tx.update("session", store.change(ctx.org_id, session.session_id, session.status, now, Status.EXPIRED))
    tx.update("counts", store.count_move(ctx.org_id, session.status, Status.EXPIRED))
    tx.audit("session", session.session_id, "expired",
             {"status": {"from": session.status.value, "to": Status.EXPIRED.value},
              "retentionDays": ctx.settings.session_retention_days})
    tx.emit(EVENT, _event(after), agent_id=session.owner_agent_id)
    try:
        _commit(tx)
    except TxFailed:
        return False  # changed since the index saw it (completed, or expired by another run)
    return True


def purge_ended(ctx: Ctx, pages: int | None = None) -> dict[str, Any]:
    """Delete terminal sessions that ended more than EXPIRED_SESSION_RETENTION_DAYS ago, with their
    list entry and their place in the counters (one unit of work each, so `total` stays right).
    At most `pages` index pages of work (RETENTION_SWEEP_PAGES) per run; a purged session leaves the index,
    so the next run goes on where this one stopped. {deleted, skipped, finished}."""
    budget = max(1, pages if pages is not None else ctx.settings.retention_sweep_pages)
    bound = ctx.iso(retention.cutoff(ctx.now(), ctx.settings.expired_session_retention_days))
    deleted = skipped = read = 0
    for shard in range(store.OPEN_SHARDS):
        while True:
            if read >= budget:
                return {"deleted": deleted, "skipped": skipped, "finished": False}
            due = store.ended_before(shard, bound, RETENTION_PAGE)
            read += 1 if due else 0  # the budget counts pages of work (an empty shard costs one Query)
            for org_id, session in due:
                if _purge_one(ctx.for_org(org_id), session):
                    deleted += 1
                else:
                    skipped += 1
            if len(due) < RETENTION_PAGE:
                break
    return {"deleted": deleted, "skipped": skipped, "finished": True}


def _purge_one(ctx: Ctx, session: Session) -> bool:
    tx = ctx.tx()
    tx.delete("session", store.delete_ended(ctx.org_id, session))
    tx.delete("list", store.delete_list_entry(ctx.org_id, session.session_id))
    tx.update("counts", store.count_gone(ctx.org_id, session.status))
    tx.audit("session", session.session_id, "deleted",
             {"status": session.status.value, "endedAt": session.updated_at,
              "retentionDays": ctx.settings.expired_session_retention_days})
    try:
        _commit(tx)
    except TxFailed:
        return False  # already purged by a concurrent run
    return True


def could_exist(session_id: str) -> bool:
    """False for an id no session can have (other domains answer 400 before opening a unit of work)."""
    return bool(ULID.fullmatch(session_id))


def require_exists(tx: Tx, org_id: str, session_id: str, name: str = "session") -> None:
    """For other domains' units of work: it fails (TxFailed(name)) unless the session exists in this org."""
    tx.check(name, store.exists_check(org_id, session_id))
