"""The merge rule: how an agent's effective document comes from its pools' and its own.

Layers, lowest first: the agent's pools in the order the agent lists them (`pools` of
POST /agents), then the agent's own document. So a later pool wins over an earlier one and the
agent wins over every pool. Per top-level key:

- absent in a layer: the layer leaves the key as the lower layers made it;
- `null`: removes the key (the gateway's own default applies again);
- `logLevel`, `uplink`, `buffer`: the layer's value replaces the lower one as a whole (`uplink` and
  `buffer` are not merged field by field: each object is complete, so a reader never has to
  assemble one from several layers);
- `adapters`: merged by `name`. An entry replaces the lower layers' adapter of that name as a whole
  (keeping its position in the list), a new name is appended, `{"name": n, "remove": true}` drops
  the adapter named n (no error if there is none). `"adapters": null` drops every adapter the lower
  layers set. The merged document has `adapters` only when at least one adapter is left.

The merged document is itself a valid AgentConfig without nulls or removals.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

WHOLE_KEYS = ("logLevel", "uplink", "buffer")


def merge(layers: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The merged document of `layers` (documents as JSON, lowest precedence first; None: no document)."""
    merged: dict[str, Any] = {}
    adapters: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if not layer:
            continue
        for key in WHOLE_KEYS:
            if key in layer:
                if layer[key] is None:
                    merged.pop(key, None)
                else:
                    merged[key] = _copy(layer[key])
        if "adapters" in layer:
            if layer["adapters"] is None:
                adapters.clear()
                continue
            for entry in layer["adapters"]:
                if entry.get("remove"):
                    adapters.pop(entry["name"], None)
                else:
                    adapters[entry["name"]] = _copy(entry)  # a known name keeps its position
    ordered = {key: merged[key] for key in WHOLE_KEYS if key in merged}
    if adapters:
        ordered["adapters"] = list(adapters.values())
    return ordered


def diff(applied: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7396) that turns `applied` into `desired`: `{}` when they are equal,
    every key of `desired` when nothing was applied. Objects are compared key by key (a removed key
    is null), lists (adapters) are replaced whole."""
    if applied is None:
        return {key: _copy(value) for key, value in desired.items()}
    patch: dict[str, Any] = {}
    for key in applied:
        if key not in desired:
            patch[key] = None
    for key, value in desired.items():
        old = applied.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            inner = diff(old, value)
            if inner:
                patch[key] = inner
        elif key not in applied or old != value:
            patch[key] = _copy(value)
    return patch


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
