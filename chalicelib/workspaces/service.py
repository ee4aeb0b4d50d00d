"""Workspaces: read and write files, and commit a set of file changes at once.

Used by the file API (routes.py) and by the patches worker (`snapshot` + `commit`): a batch
reads one snapshot, computes every new file, and commits them with one conditional manifest
write. See blobs.py for why that is atomic and loses no concurrent change.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, TYPE_CHECKING, Callable

from chalicelib.core.errors import NotFound, Unavailable, ValidationError
from chalicelib.workspaces import blobs
from chalicelib.workspaces.blobs import PreconditionFailed
from chalicelib.workspaces.models import FileContent, FileEntry, Files, FileWritten

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 25  # each failed attempt means another writer committed: progress is made
__all__ = ["PreconditionFailed", "Snapshot", "snapshot", "commit", "put_file", "get_file", "list_files"]


@dataclass
class Snapshot:
    """One workspace as of one manifest; `read` fetches (and caches) file contents."""

    org_id: str
    workspace: str
    manifest: blobs.Manifest
    _cache: dict[str, bytes] = field(default_factory=dict)

    def read(self, path: str) -> bytes | None:
        entry = self.manifest.files.get(path)
        if entry is None:
            return None
        if path not in self._cache:
            self._cache[path] = blobs.get_blob(self.org_id, entry["sha256"])
        return self._cache[path]

    def committed_batch(self, batch_id: str) -> dict[str, Any] | None:
        return self.manifest.batch(batch_id)


def snapshot(ctx: "Ctx", workspace: str) -> Snapshot:
    return Snapshot(ctx.org_id, workspace, blobs.read_manifest(ctx.org_id, workspace))


def commit(ctx: "Ctx", snap: Snapshot, files: dict[str, bytes], batch: dict[str, Any] | None = None,
           after_blob: Callable[[int], None] | None = None) -> str:
    """Write the changed files' blobs, then the manifest if it is still the snapshot's.
    Raises PreconditionFailed when another writer committed first (re-read and retry).
    `after_blob(n)` runs after the n-th blob is written (fault injection in tests)."""
    manifest = blobs.Manifest(dict(snap.manifest.files), list(snap.manifest.batches), snap.manifest.etag)
    known = {entry["sha256"] for entry in snap.manifest.files.values()}
    for count, (path, data) in enumerate(sorted(files.items()), start=1):
        digest = hashlib.sha256(data).hexdigest()
        if digest not in known:  # content-addressed: a blob the workspace already has is there
            blobs.put_blob(ctx.org_id, digest, data)
            known.add(digest)
        manifest.files[path] = {"sha256": digest, "size": len(data)}
        if after_blob is not None:
            after_blob(count)
    if batch is not None:
        manifest.batches.append(batch)
    return blobs.write_manifest(ctx.org_id, snap.workspace, manifest)


def _workspace(workspace: str) -> str:
    import re

    from patch_engine.paths import WORKSPACE_NAME_PATTERN

    if not re.fullmatch(WORKSPACE_NAME_PATTERN, workspace or ""):
        raise ValidationError.field("workspace", "1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
    return workspace


def _path(path: str | None) -> str:
    from patch_engine.paths import PathError, normalize_path

    if path is None:
        raise ValidationError.field("path", "required")
    try:
        return normalize_path(path)
    except PathError as e:
        raise ValidationError.field("path", str(e)) from None


AUDIT_ENTITY = "workspaceFile"
MAX_ENTITY_ID = 256  # GET /audit's entityId


def file_entity_id(workspace: str, path: str) -> str:
    """The audit trail's entityId of a workspace file: `{workspace}/{path}`, or, for a path too
    long to query by, `{workspace}/sha256:{digest of the path}` (the details carry the path)."""
    entity = f"{workspace}/{path}"
    if len(entity) <= MAX_ENTITY_ID:
        return entity
    return f"{workspace}/sha256:{hashlib.sha256(path.encode()).hexdigest()}"


def put_file(ctx: "Ctx", workspace: str, path: str | None, data: bytes) -> FileWritten:
    """Write one file (a commit of one file); retried when another writer got there first.

    Audited: `workspaceFile` created|updated by the caller, with the file's sha256 before (absent
    when new) and after. The commit point is the workspace's manifest in S3 and the audit trail
    is in DynamoDB, so the two cannot commit in one transaction: the event is written right
    after the commit, from exactly what that commit replaced. If that write fails the answer is
    503 (retrying the same PUT is safe and records the write again) and the lost event is
    logged at ERROR in full, never dropped silently."""
    workspace, path = _workspace(workspace), _path(path)
    digest = hashlib.sha256(data).hexdigest()
    for attempt in range(WRITE_ATTEMPTS):
        snap = snapshot(ctx, workspace)
        before = snap.manifest.files.get(path)
        try:
            commit(ctx, snap, {path: data})
        except PreconditionFailed:
            time.sleep(random.uniform(0.005, 0.03) * min(attempt + 1, 8))  # jittered, capped
            continue
        _audit_write(ctx, workspace, path, before["sha256"] if before else None, digest, len(data))
        return FileWritten(workspace=workspace, path=path, sha256=digest, size=len(data))
    raise Unavailable("the workspace is busy with other writes; retry", headers={"Retry-After": "1"})


def _audit_write(ctx: "Ctx", workspace: str, path: str, before: str | None, after: str, size: int) -> None:
    details: dict[str, Any] = {"workspace": workspace, "path": path, "sha256After": after, "size": size}
    if before is not None:  # a new file has no sha256Before
        details["sha256Before"] = before
    entity_id = file_entity_id(workspace, path)
    action = "created" if before is None else "updated"
    tx = ctx.tx()
    tx.audit(AUDIT_ENTITY, entity_id, action, details)
    try:
        tx.commit()
    except Exception:
        log.exception("AUDIT WRITE FAILED: lost the workspace file event %s",
                      {"orgId": ctx.org_id, "entityId": entity_id, "action": action, "actor": ctx.actor,
                       "traceId": ctx.trace_id, **details})
        raise Unavailable("the file was written but its audit event could not be recorded; retry the same PUT",
                          headers={"Retry-After": "1"}) from None


def get_file(ctx: "Ctx", workspace: str, path: str | None) -> FileContent:
    workspace, path = _workspace(workspace), _path(path)
    snap = snapshot(ctx, workspace)
    data = snap.read(path)
    if data is None:
        raise NotFound(f"no file {path} in workspace {workspace}")
    entry = snap.manifest.files[path]
    return FileContent(workspace=workspace, path=path, sha256=entry["sha256"], size=entry["size"],
                       content=data.decode("utf-8", "replace"))


def list_files(ctx: "Ctx", workspace: str) -> Files:
    workspace = _workspace(workspace)
    manifest = blobs.read_manifest(ctx.org_id, workspace)
    return Files(workspace=workspace,
                 items=[FileEntry(path=p, sha256=e["sha256"], size=e["size"]) for p, e in sorted(manifest.files.items())])


def read_files(ctx: "Ctx", workspace: str) -> dict[str, bytes]:
    """Every file of a workspace (tests, small workspaces)."""
    snap = snapshot(ctx, _workspace(workspace))
    files: dict[str, bytes] = {}
    for path in snap.manifest.files:
        data = snap.read(path)
        if data is not None:  # always: the manifest names the path
            files[path] = data
    return files


# --- orphaned blobs -------------------------------------------------------------------

def sweep_orphans(org_id: str, after: str | None, limit: int, written_before: float) -> tuple[int, str | None]:
    """Delete one page of the organization's blobs no manifest names and written before `written_before`
    (the grace that keeps a blob written for a commit still in flight). Returns (deleted, the digest to
    go on from, None when the organization is done). The manifests are read after the page is listed:
    a blob named by a manifest committed meanwhile is seen as named."""
    page, following = blobs.blobs_after(org_id, after, limit)
    named = blobs.referenced_digests(org_id)
    deleted = 0
    for digest, modified in page:
        if digest not in named and modified < written_before:
            deleted += blobs.delete_blob_unless_touched(org_id, digest, written_before)
    return deleted, following


def org_with_blobs_after(org_id: str | None) -> str | None:
    """The next organization in the bucket after `org_id` (None: the first; answers None after the last)."""
    return blobs.org_after(org_id)
