"""The settings registry: upsert, list, delete, and validating a configuration against it."""
from __future__ import annotations

from chalicelib.core.context import Ctx
from chalicelib.core.outcomes import commit_or_raise
from chalicelib.core.errors import NotFound, Unavailable, ValidationError
from chalicelib.core.paging import next_token, start_key
from chalicelib.core.tx import TransactionConflict
from chalicelib.settings_registry import ini, models, rules, store
from chalicelib.settings_registry.models import SettingEntry

ENTITY = "settings-registry"


def _invalid(details: list[dict[str, str]]) -> ValidationError:
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:3])
    return ValidationError(f"invalid request: {summary}", details)


def upsert(ctx: Ctx, command: models.RegistryPut) -> models.RegistryPutResult:
    """Check every entry (constraints by type, defaults, duplicates), then write them all.

    Writes are BatchWriteItem (25 per call) with the audit event in the last
    batch: not one transaction, but an upsert is idempotent, so a failed
    request (503) converges when it is repeated."""
    batch = isinstance(command.root, models.SettingEntries)
    entries = command.root.entries if isinstance(command.root, models.SettingEntries) else [command.root]
    details: list[dict[str, str]] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    dumped = [e.model_dump(by_alias=True, exclude_none=True) for e in entries]
    for i, entry in enumerate(dumped):
        prefix = f"entries.{i}." if batch else ""
        details += [{"field": prefix + f, "message": m} for f, m in rules.check_entry(entry)]
        ident = rules.identity(entry)
        if ident in seen:
            details.append({"field": f"entries.{i}", "message": f"repeats entries.{seen[ident]} "
                            "(gameType, fileType, section, key are compared case-insensitively)"})
        seen.setdefault(ident, i)
    if details:
        raise _invalid(details)
    now = ctx.iso()
    stored = [SettingEntry.of(ctx.org_id, entry, now) for entry in entries]
    first = stored[0]
    # One bulk unit of work: the entries, then the audit event (same table: it rides in the last batch).
    tx = ctx.bulk()
    for index, setting in enumerate(stored):
        tx.put(f"entry:{index}", store.entry_put(setting))
    tx.audit(ENTITY, f"{first.game_type}/{first.file_type}" if len(stored) == 1 else "batch", "upserted",
             {"count": len(stored), "keys": [[e.game_type, e.file_type, e.section, e.key] for e in stored[:50]]})
    try:
        tx.commit()
    except TransactionConflict:
        raise Unavailable("the registry is throttling writes: repeat the request",
                          headers={"Retry-After": "1"}) from None
    return models.RegistryPutResult(models.SettingEntriesOut(entries=stored) if batch else stored[0])


def list_entries(ctx: Ctx, query: models.RegistryQuery) -> models.SettingList:
    names = {"gameType": query.game_type, "fileType": query.file_type, "section": query.section, "key": query.key}
    scope = "settings:" + ctx.org_id + ":" + "|".join(rules.norm(v) if v else "*" for v in names.values())
    listed = store.list_page(ctx.org_id, names, query.limit, start_key(query.next_token, scope))
    return models.SettingList(items=listed.items, next_token=next_token(listed.last_key, scope))


def delete(ctx: Ctx, command: models.RegistryKey) -> None:
    c = command
    tx = ctx.tx()
    tx.delete("entry", store.delete_op(ctx.org_id, c.game_type, c.file_type, c.section, c.key))
    tx.audit(ENTITY, f"{c.game_type}/{c.file_type}", "deleted", {"section": c.section, "key": c.key})
    commit_or_raise(tx, entry=lambda: NotFound(f"no registry entry {c.game_type}/{c.file_type} [{c.section}] {c.key}"))


def validate(ctx: Ctx, command: models.ValidateRequest) -> models.ValidationReport:
    c = command
    registry = rules.index(e.as_rule() for e in store.of_file(ctx.org_id, c.game_type, c.file_type))
    if c.content is not None:
        found, problems = ini.parse(c.content)
        return models.ValidationReport.model_validate(rules.validate_ini(registry, found, problems))
    return models.ValidationReport.model_validate(rules.validate_values(registry, c.values or {}))
