"""chalicelib/workspaces (service) on the fake unit of work and an in-memory S3 manifest, no moto:
a write commits the manifest and records its audit event; reads answer what the routes declare."""
from __future__ import annotations

import hashlib

import pytest

import chalicelib.workspaces.routes  # noqa: F401 - registers the routes assert_declared looks up
from chalicelib.core.errors import NotFound, Unavailable, ValidationError
from chalicelib.workspaces import blobs, models, service
from tests.unit.declared import assert_declared
from tests.unit.fakes import fake_ctx, principal


@pytest.fixture
def bucket(monkeypatch):
    """Manifests and blobs in memory, with the manifest's conditional write (etag) kept."""
    objects: dict[str, bytes] = {}
    manifests: dict[str, blobs.Manifest] = {}

    def read_manifest(org, ws):
        m = manifests.get(f"{org}/{ws}")
        return blobs.Manifest(dict(m.files), list(m.batches), m.etag) if m else blobs.Manifest()

    def write_manifest(org, ws, manifest):
        current = manifests.get(f"{org}/{ws}")
        if (current.etag if current else None) != manifest.etag:
            raise blobs.PreconditionFailed("changed")
        etag = f"e{len(manifests) + 1}-{len(manifest.files)}"
        manifests[f"{org}/{ws}"] = blobs.Manifest(dict(manifest.files), list(manifest.batches), etag)
        return etag

    monkeypatch.setattr(blobs, "read_manifest", read_manifest)
    monkeypatch.setattr(blobs, "write_manifest", write_manifest)
    monkeypatch.setattr(blobs, "put_blob", lambda org, digest, data: objects.__setitem__(digest, data))
    monkeypatch.setattr(blobs, "get_blob", lambda org, digest: objects[digest])
    return objects


def test_put_file_commits_and_audits_created_then_updated(bucket):
    ctx, ledger = fake_ctx(principal())
    written = service.put_file(ctx, "ws", "dir/a.txt", b"one\n")
    body = assert_declared("PUT", "/api/workspaces/{workspace}/files", written)
    digest = hashlib.sha256(b"one\n").hexdigest()
    assert body == {"workspace": "ws", "path": "dir/a.txt", "sha256": digest, "size": 4}
    [created] = ledger.audits()
    assert created["action"] == "created" and created["entityId"] == "ws/dir/a.txt"
    service.put_file(ctx, "ws", "dir/a.txt", b"two\n")
    [updated] = ledger.audits()
    assert updated["action"] == "updated"


def test_get_and_list_answer_the_file_models(bucket):
    ctx, _ = fake_ctx(principal())
    service.put_file(ctx, "ws", "b.txt", b"b\n")
    service.put_file(ctx, "ws", "a.txt", b"a\n")
    content = service.get_file(ctx, "ws", "a.txt")
    assert isinstance(content, models.FileContent) and content.content == "a\n" and content.size == 2
    files = service.list_files(ctx, "ws")
    assert isinstance(files, models.Files) and [f.path for f in files.items] == ["a.txt", "b.txt"]
    with pytest.raises(NotFound):
        service.get_file(ctx, "ws", "c.txt")
    with pytest.raises(ValidationError):
        service.get_file(ctx, "ws", "../etc/passwd")


def test_a_lost_audit_write_is_a_503_not_a_silent_success(bucket):
    ctx, ledger = fake_ctx(principal())
    ledger.fail["audit:workspaceFile:ws/a.txt:created"] = 1
    with pytest.raises(Unavailable):
        service.put_file(ctx, "ws", "a.txt", b"a\n")
