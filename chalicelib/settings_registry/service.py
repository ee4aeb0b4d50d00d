"""The settings registry: upsert, list, delete, and validating a configuration against it."""
from __future__ import annotations

from typing import Any

from chalicelib.aws import dynamo
from chalicelib.core import audit
from chalicelib.core.api import Call, page_start
from chalicelib.core.errors import NotFound, Unavailable, ValidationError
from chalicelib.settings_registry import ini, rules, store
from chalicelib.settings_registry.models import RegistryPut, SettingEntries, SettingEntryIn


def _invalid(details: list[dict[str, str]]) -> ValidationError:
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    return ValidationError(f"invalid request: {summary}", details)


def upsert(call: Call, body: RegistryPut) -> dict:
    """Check every entry (constraints by type, defaults, duplicates), then write them all.

    Writes are BatchWriteItem (25 per call) with the audit event in the last
    batch: not one transaction, but an upsert is idempotent, so a failed
    request (503) converges when it is repeated."""
    batch = isinstance(body.root, SettingEntries)
    entries: list[SettingEntryIn] = body.root.entries if batch else [body.root]
    prefix = (lambda i: f"entries.{i}.") if batch else (lambda i: "")
    details: list[dict[str, str]] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    dumped = [e.model_dump(by_alias=True, exclude_none=True) for e in entries]
    for i, entry in enumerate(dumped):
        details += [{"field": prefix(i) + f, "message": m} for f, m in rules.check_entry(entry)]
        ident = rules.identity(entry)
        if ident in seen:
            details.append({"field": f"entries.{i}", "message": f"repeats entries.{seen[ident]} "
                            "(gameType, fileType, section, key are compared case-insensitively)"})
        seen.setdefault(ident, i)
    if details:
        raise _invalid(details)
    items = [store.new_item(call.org_id, entry) for entry in dumped]
    event = audit.audit_item(call.org_id, "settings-registry", f"{items[0]['gameType']}/{items[0]['fileType']}"
                             if len(items) == 1 else "batch", "upserted", call.actor, call.trace_id,
                             {"count": len(items), "keys": [[i["gameType"], i["fileType"], i["section"], i["key"]]
                                                            for i in items[:50]]})
    try:
        store.write(items + [event])
    except dynamo.TransactionConflict:
        raise Unavailable("the registry is throttling writes: repeat the request",
                          headers={"Retry-After": "1"}) from None
    out = [store.public(item) for item in items]
    return {"entries": out} if batch else out[0]


def list_entries(call: Call, names: dict[str, str | None], limit: int, next_token: str | None) -> dict:
    scope = "settings:" + call.org_id + ":" + "|".join(rules.norm(names[n]) if names.get(n) else "*"
                                                     for n in ("gameType", "fileType", "section", "key"))
    start = page_start(next_token, scope)
    page = store.list_page(call.org_id, names, limit, start)
    return {"items": [store.public(i) for i in page.items], "nextToken": dynamo.encode_token(page.last_key, scope)}


def delete(call: Call, game_type: str, file_type: str, section: str, key: str) -> None:
    try:
        dynamo.transact([
            store.delete_op(call.org_id, game_type, file_type, section, key),
            audit.audit_put(call.org_id, "settings-registry", f"{game_type}/{file_type}", "deleted", call.actor,
                            call.trace_id, {"section": section, "key": key}),
        ])
    except dynamo.ConditionFailed:
        raise NotFound(f"no registry entry {game_type}/{file_type} [{section}] {key}") from None


def validate(call: Call, game_type: str, file_type: str, content: str | None,
             values: dict[str, dict[str, Any]] | None) -> dict:
    registry = rules.index(store.public(i) for i in store.of_file(call.org_id, game_type, file_type))
    if content is not None:
        settings, problems = ini.parse(content)
        return rules.validate_ini(registry, settings, problems)
    return rules.validate_values(registry, values or {})
