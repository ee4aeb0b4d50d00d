"""Workspaces' adapter to S3 (the domain keeps no DynamoDB item): files per organization and workspace.

  orgs/{org}/blobs/{sha256}                   file contents, content-addressed (immutable)
  orgs/{org}/workspaces/{ws}/manifest.json    {"v", "files": {path: {sha256, size}}, "batches": [...]}

The manifest is the workspace: a file exists when the manifest names it. A change writes
its blobs first (invisible until named) and then replaces the manifest with a conditional
write (If-Match the ETag it read, If-None-Match for a new workspace). The manifest write is
the commit point: a reader sees every file of a batch or none, and of two writers that read
the same manifest only one commits; the other re-reads and tries again, so no change is lost.
`batches` remembers the last batch ids committed (with their time), so a worker that died
after the commit knows, on redelivery, that its batch is already in.
"""
from __future__ import annotations

from typing import Any

import json
from dataclasses import dataclass, field

from chalicelib.aws import blobs as s3
from chalicelib.core.config import settings

KEEP_BATCHES = 200
# What a lost conditional manifest write raises; named here so the service catches it without importing chalicelib.aws.
PreconditionFailed = s3.PreconditionFailed


def _bucket() -> str:
    return settings().workspace_bucket


def manifest_key(org_id: str, workspace: str) -> str:
    return f"orgs/{org_id}/workspaces/{workspace}/manifest.json"


def blob_key(org_id: str, digest: str) -> str:
    return f"orgs/{org_id}/blobs/{digest}"


@dataclass
class Manifest:
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    batches: list[dict[str, Any]] = field(default_factory=list)
    etag: str | None = None  # None: the workspace does not exist yet

    def to_bytes(self) -> bytes:
        return json.dumps({"v": 1, "files": self.files, "batches": self.batches[-KEEP_BATCHES:]},
                          separators=(",", ":"), sort_keys=True).encode()

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        return next((b for b in self.batches if b.get("batchId") == batch_id), None)


def read_manifest(org_id: str, workspace: str) -> Manifest:
    found = s3.get(_bucket(), manifest_key(org_id, workspace))
    if found is None:
        return Manifest()
    raw = json.loads(found.data)
    return Manifest(raw.get("files", {}), raw.get("batches", []), found.etag)


def write_manifest(org_id: str, workspace: str, manifest: Manifest) -> str:
    """Replace the manifest if it is still the one read (raises PreconditionFailed otherwise)."""
    return s3.put(_bucket(), manifest_key(org_id, workspace), manifest.to_bytes(),
                     if_match=manifest.etag, if_none_match=manifest.etag is None,
                     content_type="application/json")


def put_blob(org_id: str, digest: str, data: bytes) -> None:
    s3.put(_bucket(), blob_key(org_id, digest), data)


def get_blob(org_id: str, digest: str) -> bytes:
    found = s3.get(_bucket(), blob_key(org_id, digest))
    if found is None:  # a manifest names only blobs written before it
        raise RuntimeError(f"blob {digest} named by a manifest is missing")
    return found.data


# --- orphaned blobs (the retention sweep) -------------------------------------------

def org_after(org_id: str | None) -> str | None:
    """The next organization (by id) with anything in the bucket after `org_id` (None: the first)."""
    start = f"orgs/{org_id}/" if org_id else None
    _, prefixes, _ = s3.list_page(_bucket(), "orgs/", start_after=start, limit=2, delimiter="/")
    for prefix in prefixes:
        org = prefix[len("orgs/"):-1]
        if org != org_id:
            return org
    return None


def referenced_digests(org_id: str) -> set[str]:
    """Every blob digest a manifest of the organization names (every workspace's manifest)."""
    digests: set[str] = set()
    start = None
    while True:
        objects, _, more = s3.list_page(_bucket(), f"orgs/{org_id}/workspaces/", start_after=start)
        for obj in objects:
            if obj.key.endswith("/manifest.json"):
                found = s3.get(_bucket(), obj.key)
                if found is not None:
                    digests.update(e["sha256"] for e in json.loads(found.data).get("files", {}).values())
        if not more or not objects:
            return digests
        start = objects[-1].key


def blobs_after(org_id: str, after: str | None, limit: int) -> tuple[list[tuple[str, float]], str | None]:
    """One page of the organization's blobs after digest `after`: [(digest, lastModified)], and the
    digest to go on from (None: that was the last page)."""
    prefix = f"orgs/{org_id}/blobs/"
    objects, _, more = s3.list_page(_bucket(), prefix, start_after=prefix + after if after else None, limit=limit)
    found = [(o.key[len(prefix):], o.last_modified) for o in objects]
    return found, (found[-1][0] if more and found else None)


def delete_blob_unless_touched(org_id: str, digest: str, written_before: float) -> bool:
    """Delete a blob unless it was (re)written at or after `written_before`: a writer that puts a blob
    again before naming it in a manifest refreshes it, so the sweep leaves it alone."""
    modified = s3.last_modified(_bucket(), blob_key(org_id, digest))
    if modified is None or modified >= written_before:
        return False
    s3.delete(_bucket(), blob_key(org_id, digest))
    return True
