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
