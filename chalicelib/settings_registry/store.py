"""The settings registry: keys and queries. Per org; names compared casefolded.

  PK     ORG#{org}#SETTINGS#{g}#{f}   SK     {s}#{k}         - one game's file: (gameType, fileType) look-ups
  GSI1PK ORG#{org}#SETKEY#{s}#{k}     GSI1SK {g}#{f}         - one key in every game/file: (section, key) look-ups
  GSI2PK ORG#{org}#SETTINGS           GSI2SK {g}#{f}#{s}#{k} - the org's registry in order: everything else

g, f, s, k are the casefolded names, percent-encoded so `#` inside a name cannot
blur the boundaries (quote(name, safe="")). Which query serves a GET:

  gameType+fileType (+section (+key))  main table, SK begins_with / equals
  section+key (+gameType (+fileType))  GSI1, GSI1SK begins_with / equals
  gameType alone                       GSI2, begins_with "{g}#"
  nothing                              GSI2
  any other combination                the narrowest of those plus a filter on the
                                       remaining names (cost: that game's or org's
                                       registry, not the table; documented)
default and constraints are stored as JSON text (types round-trip exactly).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from chalicelib.aws import dynamo
from chalicelib.core.config import settings
from chalicelib.settings_registry.models import SettingEntry
from chalicelib.settings_registry.rules import norm

NORMS = {"gameType": "gameTypeNorm", "fileType": "fileTypeNorm", "section": "sectionNorm", "key": "keyNorm"}
FILTERED_PAGE = 200  # items read per call when a filter may drop some


def _table() -> str:
    return settings().main_table


def _q(name: str) -> str:
    return quote(norm(name), safe="")


def key(org_id: str, game_type: str, file_type: str, section: str, key_name: str) -> dict[str, Any]:
    return {"PK": f"ORG#{org_id}#SETTINGS#{_q(game_type)}#{_q(file_type)}", "SK": f"{_q(section)}#{_q(key_name)}"}


def _item(entry: SettingEntry) -> dict[str, Any]:
    org_id, g, f, s, k = entry.org_id, entry.game_type, entry.file_type, entry.section, entry.key
    constraints = entry.constraints.model_dump(exclude_none=True) if entry.constraints is not None else None
    return {
        **key(org_id, g, f, s, k), "type": "setting", "orgId": org_id,
        "gameType": g, "fileType": f, "section": s, "key": k, "valueType": entry.value_type,
        "default": json.dumps(entry.default) if entry.default is not None else None,
        "constraints": json.dumps(constraints) if constraints else None,
        "description": entry.description, "updatedAt": entry.updated_at,
        "gameTypeNorm": norm(g), "fileTypeNorm": norm(f), "sectionNorm": norm(s), "keyNorm": norm(k),
        "GSI1PK": f"ORG#{org_id}#SETKEY#{_q(s)}#{_q(k)}", "GSI1SK": f"{_q(g)}#{_q(f)}",
        "GSI2PK": f"ORG#{org_id}#SETTINGS", "GSI2SK": f"{_q(g)}#{_q(f)}#{_q(s)}#{_q(k)}",
    }


def _entity(item: dict[str, Any]) -> SettingEntry:
    return SettingEntry(
        org_id=item["orgId"], game_type=item["gameType"], file_type=item["fileType"], section=item["section"],
        key=item["key"], value_type=item["valueType"],
        default=json.loads(item["default"]) if item.get("default") is not None else None,
        constraints=json.loads(item["constraints"]) if item.get("constraints") is not None else None,
        description=item.get("description"), updated_at=item["updatedAt"])


@dataclass(frozen=True)
class EntryPage:
    items: list[SettingEntry]
    last_key: dict[str, Any] | None


def entry_put(entry: SettingEntry) -> dynamo.Put:
    """An entry's unconditional put (an upsert), for a bulk unit of work (BatchWriteItem, 25 per call)."""
    return dynamo.Put(_table(), _item(entry))


def delete_op(org_id: str, game_type: str, file_type: str, section: str, key_name: str) -> dynamo.Delete:
    return dynamo.Delete(_table(), key(org_id, game_type, file_type, section, key_name),
                         condition="attribute_exists(PK)")


def of_file(org_id: str, game_type: str, file_type: str) -> list[SettingEntry]:
    """Every entry of one (gameType, fileType): what /settings/validate checks against."""
    pk = key(org_id, game_type, file_type, "", "")["PK"]
    # Strongly consistent: validating right after seeding the registry is the common sequence.
    return [_entity(i) for i in dynamo.query_all(_table(), "PK = :pk", {":pk": pk}, consistent=True)]


@dataclass
class Plan:
    index: str | None
    condition: str
    values: dict[str, Any]
    filters: dict[str, str]  # attribute -> casefolded name


def plan(org_id: str, names: dict[str, str | None]) -> Plan:
    """The query for a registry listing (see the module doc)."""
    g, f, s, k = (names.get(n) for n in ("gameType", "fileType", "section", "key"))
    if g and f:
        values = {":pk": f"ORG#{org_id}#SETTINGS#{_q(g)}#{_q(f)}"}
        if s and k:
            values[":sk"] = f"{_q(s)}#{_q(k)}"
            return Plan(None, "PK = :pk AND SK = :sk", values, {})
        if s:
            values[":sk"] = f"{_q(s)}#"
            return Plan(None, "PK = :pk AND begins_with(SK, :sk)", values, {})
        return Plan(None, "PK = :pk", values, {"keyNorm": norm(k)} if k else {})
    if s and k:
        values = {":pk": f"ORG#{org_id}#SETKEY#{_q(s)}#{_q(k)}"}
        if g:
            values[":sk"] = f"{_q(g)}#"
            return Plan("GSI1", "GSI1PK = :pk AND begins_with(GSI1SK, :sk)", values, {})
        return Plan("GSI1", "GSI1PK = :pk", values, {"fileTypeNorm": norm(f)} if f else {})
    values = {":pk": f"ORG#{org_id}#SETTINGS"}
    filters = {NORMS[n]: norm(v) for n, v in (("fileType", f), ("section", s), ("key", k)) if v}
    if g:
        values[":sk"] = f"{_q(g)}#"
        return Plan("GSI2", "GSI2PK = :pk AND begins_with(GSI2SK, :sk)", values, filters)
    return Plan("GSI2", "GSI2PK = :pk", values, filters)


def _start_key(item: dict[str, Any], index: str | None) -> dict[str, Any]:
    start = {"PK": item["PK"], "SK": item["SK"]}
    if index:
        start[f"{index}PK"], start[f"{index}SK"] = item[f"{index}PK"], item[f"{index}SK"]
    return start


def list_page(org_id: str, names: dict[str, str | None], limit: int, start: dict[str, Any] | None) -> EntryPage:
    found = _list_items(org_id, names, limit, start)
    return EntryPage([_entity(i) for i in found.items], found.last_key)


def _list_items(org_id: str, names: dict[str, str | None], limit: int, start: dict[str, Any] | None) -> dynamo.Page:
    p = plan(org_id, names)
    if not p.filters:
        return dynamo.query(_table(), p.condition, p.values, index=p.index, limit=limit, start_key=start)
    names_expr = {f"#f{i}": attr for i, attr in enumerate(p.filters)}
    values = {**p.values, **{f":f{i}": v for i, v in enumerate(p.filters.values())}}
    filter_expr = " AND ".join(f"#f{i} = :f{i}" for i in range(len(p.filters)))
    items: list[dict[str, Any]] = []
    while True:
        page = dynamo.query(_table(), p.condition, values, names=names_expr, index=p.index,
                            limit=max(limit, FILTERED_PAGE), start_key=start, filter=filter_expr)
        items.extend(page.items)
        if len(items) >= limit:
            if len(items) == limit and page.last_key is None:
                return dynamo.Page(items, None)
            kept = items[:limit]
            return dynamo.Page(kept, _start_key(kept[-1], p.index))
        if page.last_key is None:
            return dynamo.Page(items, None)
        start = page.last_key
