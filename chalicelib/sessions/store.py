"""Sessions in the main table: keys, the item mapping of models.Session, the writes and the queries.

  PK ORG#{org}#SESSION#{id}, SK SESSION   the session
      GSI5PK ORG#{org}#SESSIONS#{status}, GSI5SK {id}   keys only: the list by status, newest first
      GSI4PK SESSIONS#OPEN#{shard}, GSI4SK {id}         while pending/active (sparse): retention,
                                                        oldest first across organizations
      GSI4PK SESSIONS#ENDED#{shard}, GSI4SK {updatedAt}#{org}#{id}   once terminal: deleted after
                                                        EXPIRED_SESSION_RETENTION_DAYS, oldest end first
  PK ORG#{org}#SESSION#{id}, SK LIST      the session's place in the org-wide list (written once)
      GSI5PK ORG#{org}#SESSIONS, GSI5SK {id}            keys only: every session, newest first
  PK ORG#{org}#SESSIONS, SK COUNTS        the counters behind `total`: all, and one per status

Session ids are ULIDs, so id order is creation order and "created before T"
is "id below ids.time_bound(T)". metadata is a map of key -> JSON text: a
merge writes metadata.#key per key (concurrent merges of distinct keys all
land), and JSON text keeps floats, nulls in nested values and empty strings
exactly as sent.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.sessions.models import Session
from chalicelib.sessions.rules import Status

OPEN_SHARDS = 4  # the retention index's partitions: spreads every org's creates over 4 index partitions
COUNTS = "COUNTS"
ALL = "all"


def _table() -> str:
    return settings().main_table


def key(org_id: str, session_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#SESSION#{session_id}", "SK": "SESSION"}


def counts_key(org_id: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#SESSIONS", "SK": COUNTS}


def list_partition(org_id: str, status: Status | None) -> str:
    return f"ORG#{org_id}#SESSIONS" + (f"#{status.value}" if status else "")


def open_partition(session_id: str) -> str:
    return f"SESSIONS#OPEN#{ord(session_id[-1]) % OPEN_SHARDS}"


def ended_partition(session_id: str) -> str:
    return f"SESSIONS#ENDED#{ord(session_id[-1]) % OPEN_SHARDS}"


def _ended_index(org_id: str, session_id: str, ended_at: str) -> dict[str, Any]:
    """A terminal session's place in the purge index: ordered by when it ended (ISO text sorts as time)."""
    return {"GSI4PK": ended_partition(session_id), "GSI4SK": f"{ended_at}#{org_id}#{session_id}"}


def to_item(org_id: str, session: Session) -> dict[str, Any]:
    """The session's item: keys, index attributes, metadata as JSON text per key."""
    item = {
        **key(org_id, session.session_id), "type": "session", "orgId": org_id,
        "sessionId": session.session_id, "agentRole": session.agent_role, "status": session.status.value,
        "taskId": session.task_id, "createdAt": session.created_at, "updatedAt": session.updated_at,
        "ownerAgentId": session.owner_agent_id,
        "metadata": {k: _text(v) for k, v in session.metadata.items()},
        "GSI5PK": list_partition(org_id, session.status), "GSI5SK": session.session_id,
    }
    if not session.status.terminal:
        item["GSI4PK"], item["GSI4SK"] = open_partition(session.session_id), session.session_id
    else:
        item.update(_ended_index(org_id, session.session_id, session.updated_at))
    return item


def from_item(item: dict[str, Any]) -> Session:
    return Session(
        session_id=item["sessionId"], agent_role=item["agentRole"], status=Status(item["status"]),
        created_at=item["createdAt"], updated_at=item["updatedAt"], task_id=item.get("taskId"),
        metadata={k: json.loads(v) for k, v in (item.get("metadata") or {}).items()},
        owner_agent_id=item.get("ownerAgentId"),
    )


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- writes -------------------------------------------------------------------

def put_new(org_id: str, session: Session) -> dynamo.Put:
    return dynamo.Put(_table(), to_item(org_id, session), condition="attribute_not_exists(PK)")


def put_list_entry(org_id: str, session: Session) -> dynamo.Put:
    return dynamo.Put(_table(), {"PK": key(org_id, session.session_id)["PK"], "SK": "LIST",
                                 "type": "session-list", "GSI5PK": list_partition(org_id, None),
                                 "GSI5SK": session.session_id})


def count_new(org_id: str, status: Status) -> dynamo.Update:
    return dynamo.Update(_table(), counts_key(org_id), add={ALL: 1, status.value: 1})


def count_move(org_id: str, old: Status, new: Status) -> dynamo.Update:
    return dynamo.Update(_table(), counts_key(org_id), add={old.value: -1, new.value: 1})


def change(org_id: str, session_id: str, expected: Status, updated_at: str, status: Status | None = None,
           task_id: str | None = None, metadata: dict[str, Any] | None = None) -> dynamo.Update:
    """One conditional UpdateItem: only if the session is still in `expected` (what the caller read)."""
    sets: dict[Any, Any] = {"updatedAt": updated_at}
    removes: list[Any] = []
    if status is not None and status != expected:
        sets["status"] = status.value
        sets["GSI5PK"] = list_partition(org_id, status)
        if status.terminal:  # leaves the open index for the purge index (EXPIRED_SESSION_RETENTION_DAYS)
            sets.update(_ended_index(org_id, session_id, updated_at))
    if task_id is not None:
        sets["taskId"] = task_id
    for name, value in (metadata or {}).items():
        if value is None:
            removes.append(("metadata", name))
        else:
            sets[("metadata", name)] = _text(value)
    return dynamo.Update(_table(), key(org_id, session_id), set=sets, remove=removes,
                         condition="#st = :expected", names={"#st": "status"},
                         values={":expected": expected.value})


def delete_ended(org_id: str, session: Session) -> dynamo.Delete:
    """Delete a terminal session, only if it still is that terminal session."""
    return dynamo.Delete(_table(), key(org_id, session.session_id), condition="#st = :st",
                         names={"#st": "status"}, values={":st": session.status.value})


def delete_list_entry(org_id: str, session_id: str) -> dynamo.Delete:
    return dynamo.Delete(_table(), {"PK": key(org_id, session_id)["PK"], "SK": "LIST"})


def count_gone(org_id: str, status: Status) -> dynamo.Update:
    return dynamo.Update(_table(), counts_key(org_id), add={ALL: -1, status.value: -1})


def exists_check(org_id: str, session_id: str) -> dynamo.ConditionCheck:
    return dynamo.ConditionCheck(_table(), key(org_id, session_id), condition="attribute_exists(PK)")


# --- reads --------------------------------------------------------------------

def get(org_id: str, session_id: str) -> Session | None:
    item = dynamo.get(_table(), key(org_id, session_id), consistent=True)
    return from_item(item) if item else None


def list_keys(org_id: str, status: Status | None, want: int, start_key: dict[str, Any] | None = None) -> dynamo.Page:
    """Up to `want` keys of the list, newest first, from the keys-only index (several Queries
    only when `want` keys exceed one 1 MB response: about 8,000 keys)."""
    keys: list[dict[str, Any]] = []
    start = start_key
    while True:
        page = dynamo.query(_table(), "GSI5PK = :pk", {":pk": list_partition(org_id, status)}, index="GSI5",
                            limit=want - len(keys), start_key=start, forward=False)
        keys += page.items
        start = page.last_key
        if len(keys) >= want or not start:
            return dynamo.Page(keys, start)


def batch_with_counts(org_id: str, index_keys: list[dict[str, Any]]) -> tuple[list[Session], dict[str, Any]]:
    """The sessions behind index keys (in that order) and the org's counters, in one BatchGetItem."""
    session_keys = [{"PK": k["PK"], "SK": "SESSION"} for k in index_keys]
    items = dynamo.batch_get(_table(), [*session_keys, counts_key(org_id)])
    counts: dict[str, Any] = {}
    by_pk = {}
    for item in items:
        if item["SK"] == COUNTS:
            counts = item
        else:
            by_pk[item["PK"]] = from_item(item)
    return [by_pk[k["PK"]] for k in session_keys if k["PK"] in by_pk], counts


def get_counts(org_id: str) -> dict[str, Any]:
    return dynamo.get(_table(), counts_key(org_id)) or {}


def open_before(shard: int, bound: str, limit: int,
                start_key: dict[str, Any] | None) -> tuple[list[tuple[str, Session]], dict[str, Any] | None]:
    """Open sessions (with their org) of every org created before `bound` (a ULID), oldest first, one
    page of one shard."""
    page = dynamo.query(_table(), "GSI4PK = :pk AND GSI4SK < :bound",
                        {":pk": f"SESSIONS#OPEN#{shard}", ":bound": bound}, index="GSI4",
                        limit=limit, start_key=start_key)
    return [(i["orgId"], from_item(i)) for i in page.items], page.last_key


def ended_before(shard: int, bound: str, limit: int) -> list[tuple[str, Session]]:
    """Terminal sessions (with their org) of every org that ended before `bound` (ISO time), oldest
    end first, one page of one shard. Purged sessions leave the index, so the first page is always
    the next work: the index is the purge's cursor."""
    page = dynamo.query(_table(), "GSI4PK = :pk AND GSI4SK < :bound",
                        {":pk": f"SESSIONS#ENDED#{shard}", ":bound": bound}, index="GSI4", limit=limit)
    return [(i["orgId"], from_item(i)) for i in page.items]
