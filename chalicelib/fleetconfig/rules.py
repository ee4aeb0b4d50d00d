"""Fleet configuration: the layers of an agent's document, its version, the delta, drift. Pure.

An agent's effective (merged) document comes from layers, lowest first: the documents of its pools
in the order the agent lists them, then its own (the merge rule is fleet_config/merge.py). Each
layer has its own version, bumped by one on every write (optimistic locking: a write names the
version it replaces, 0 for the first).

The merged document's version is the sum of its layers' versions. An agent's pools never change
(agents/store.py), so its set of layers is fixed and every write to any of them adds exactly one:
the merged version rises by one on every change of any input and never repeats, and a gateway can
compare two versions (the larger is newer) without knowing the layers. An agent with no layer at
all has version 0 and the empty document.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fleet_config import diff, merge

POOL: Literal["pool"] = "pool"
AGENT: Literal["agent"] = "agent"
APPLIED, FAILED = "applied", "failed"
MAX_ERROR_CHARS = 2000
# A pool write's config:changed events ride in its own transaction up to this many agents (the rest,
# a big pool's, follow in bulk right after: they are hints, the gateways also poll).
EVENTS_IN_TRANSACTION = 90


@dataclass(frozen=True)
class Layer:
    """One input document: a pool's or the agent's own."""

    scope: Literal["pool", "agent"]
    name: str                 # the pool's name or the agent's id
    version: int
    document: dict[str, Any]  # as stored (explicit nulls and removal entries kept)
    updated_at: str


@dataclass(frozen=True)
class Reported:
    """What the gateway last reported, and the last document it applied (the base of `delta`)."""

    version: int
    status: str
    at: str
    error: str | None = None
    applied_version: int | None = None
    applied_document: dict[str, Any] | None = None  # None: not known (see report())


def ordered_layers(pools: list[str], pool_layers: dict[str, Layer], agent_layer: Layer | None) -> list[Layer]:
    """The agent's layers, lowest precedence first: its pools in its own order, then itself."""
    layers = [pool_layers[p] for p in pools if p in pool_layers]
    return layers + ([agent_layer] if agent_layer is not None else [])


def version_of(layers: list[Layer]) -> int:
    return sum(layer.version for layer in layers)


def desired_of(layers: list[Layer]) -> dict[str, Any]:
    return merge(layer.document for layer in layers)


def changed_at(layers: list[Layer]) -> str | None:
    """When the merged document last changed: the newest write among its layers (None: no layer)."""
    return max((layer.updated_at for layer in layers), default=None)


def delta(desired: dict[str, Any], reported: Reported | None) -> dict[str, Any]:
    """What the gateway still has to change: a JSON merge patch (RFC 7396) from the last document it
    applied to `desired`. `{}` when it runs the desired document; the whole document when no applied
    document is known."""
    return diff(reported.applied_document if reported is not None else None, desired)


def check_report(reported_version: int, current_version: int) -> str | None:
    """Why a report cannot be right (a version never desired yet), or None."""
    if reported_version > current_version:
        return f"version {reported_version} is newer than the desired version {current_version}"
    return None


def after_report(previous: Reported | None, version: int, status: str, error: str | None, at: str,
                 current_version: int, current_desired: dict[str, Any]) -> Reported:
    """The reported state after a report. An applied report of the current version makes the current
    document the applied one; a failed report keeps the last applied one (the gateway keeps running
    it); an applied report of an older version (a write landed between the gateway's fetch and its
    report) leaves the applied document unknown, so `delta` shows the whole desired document until
    the next report."""
    applied_version = previous.applied_version if previous is not None else None
    applied_document = previous.applied_document if previous is not None else None
    if status == APPLIED:
        applied_version = version
        applied_document = current_desired if version == current_version else None
    text = error[:MAX_ERROR_CHARS] if error else None
    return Reported(version=version, status=status, at=at, error=text if status == FAILED else None,
                    applied_version=applied_version, applied_document=applied_document)


def in_sync(version: int, reported: Reported | None) -> bool:
    """The gateway runs the desired version (nothing configured at all counts as in sync)."""
    if reported is None:
        return version == 0
    return reported.version == version and reported.status == APPLIED


def drifting(version: int, reported: Reported | None, since: str | None, threshold_iso: str) -> bool:
    """Drift: not in sync, and the desired document last changed at or before `threshold_iso` (now
    minus CONFIG_DRIFT_MINUTES): the gateway had that long to catch up with the latest change. A
    failed report of the desired version is drift too (the gateway runs an older document)."""
    if in_sync(version, reported) or since is None:
        return False
    return since <= threshold_iso
