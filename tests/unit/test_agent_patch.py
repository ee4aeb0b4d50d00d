"""`python -m agent patch`: the engine on local files, all or nothing, and the bridge."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import patch
from devstack.testing import REPO_ROOT


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "ws"
    r.mkdir()
    (r / "a.txt").write_bytes(b"one\r\n###M###\r\nold\r\n###M###\r\n")
    (r / "b.txt").write_bytes(b"b")
    return r


def test_apply_changes_every_file(root):
    batch = {"workspace": "w", "operations": [
        {"op": "replace-block", "file": "a.txt", "anchor": {"marker": "###M###"}, "content": "###M###\nnew\n###M###"},
        {"op": "append", "file": "b.txt", "content": "c"},
        {"op": "append", "file": "new/dir/c.txt", "content": "created"}]}
    result = patch.apply_batch(batch, root)
    assert result["status"] == "applied" and [r["matchedBy"] for r in result["results"][:1]] == ["marker"]
    assert tree(root) == {"a.txt": b"one\r\n###M###\r\nnew\r\n###M###\r\n", "b.txt": b"b\nc",
                          "new/dir/c.txt": b"created\n"}


def test_a_failing_batch_leaves_every_file_byte_identical(root):
    before = tree(root)
    batch = {"operations": [{"op": "append", "file": "b.txt", "content": "c"},
                            {"op": "append", "file": "x/new.txt", "content": "n"},
                            {"op": "replace-block", "file": "a.txt", "anchor": {"search": "nope"}, "content": ""}]}
    result = patch.apply_batch(batch, root)
    assert result["status"] == "failed" and result["results"][2]["error"].startswith("SEARCH_NOT_FOUND")
    assert tree(root) == before and not (root / "x").exists()


def test_a_rename_failing_midway_rolls_every_file_back(root, monkeypatch):
    before = tree(root)
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 4:  # after the first file was swapped in
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(patch.os, "replace", flaky)
    batch = {"operations": [{"op": "append", "file": "a.txt", "content": "x"},
                            {"op": "append", "file": "b.txt", "content": "y"},
                            {"op": "append", "file": "z/new.txt", "content": "z"}]}
    with pytest.raises(OSError):
        patch.apply_batch(batch, root)
    assert tree(root) == before
    assert not [p for p in root.rglob("*") if "patch-" in p.name] and not (root / "z").exists()


def test_paths_leaving_the_root_fail(root, tmp_path):
    (root / "link").symlink_to(tmp_path)
    for path in ("../x", "/etc/passwd", "link/escape.txt"):
        result = patch.apply_batch({"operations": [{"op": "append", "file": path, "content": "x"}]}, root)
        assert result["status"] == "failed"
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "x").exists()


def test_cli_from_files_then_apply(root, tmp_path):
    generated = tmp_path / "gen"
    (generated / "sub").mkdir(parents=True)
    (generated / "a.txt").write_text("###M###\nfrom generator\n###M###\n")
    (generated / "sub" / "n.txt").write_text("new file\n")
    out = tmp_path / "batch.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    built = subprocess.run([sys.executable, "-m", "agent", "patch", "from-files", "--generated", str(generated),
                            "--root", str(root), "--workspace", "w", "--factory", "gen", "--out", str(out)],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    batch = json.loads(out.read_text())
    assert batch["factory"] == "gen" and {o["op"] for o in batch["operations"]} == {"replace-block", "append"}
    applied = subprocess.run([sys.executable, "-m", "agent", "patch", "apply", str(out), "--root", str(root)],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["status"] == "applied"
    assert (root / "a.txt").read_bytes() == b"one\r\n###M###\r\nfrom generator\r\n###M###\r\n"
    assert (root / "sub" / "n.txt").read_text() == "new file\n"
    again = subprocess.run([sys.executable, "-m", "agent", "patch", "apply", str(out), "--root", str(root)],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1  # drift: the files are no longer what the batch was built from


def test_a_write_failing_while_staging_leaves_nothing_behind(root, monkeypatch):
    """Files are staged as the engine hands them over: a write failing on the second one
    removes the first one's temporary file and the directories made for it."""
    before = tree(root)
    real, calls = os.writev, []

    def full_disk(fd, buffers):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(fd, buffers)

    monkeypatch.setattr(patch.os, "writev", full_disk)
    batch = {"operations": [{"op": "append", "file": "made/here/new.txt", "content": "n"},
                            {"op": "append", "file": "b.txt", "content": "y"}]}
    with pytest.raises(OSError):
        patch.apply_batch(batch, root)
    assert tree(root) == before and not (root / "made").exists()


def test_write_all_survives_short_writes_and_more_buffers_than_iov_max(tmp_path, monkeypatch):
    real, seen = os.writev, []

    def short(fd, buffers):  # the kernel may write less than asked: at most 5 bytes here
        seen.append(len(buffers))
        first = bytes(buffers[0])[:5]
        return real(fd, [first])

    monkeypatch.setattr(patch.os, "writev", short)
    monkeypatch.setattr(patch, "_IOV_MAX", 3)
    buffers = [b"alpha-", memoryview(b"xxbravo-")[2:], b"", b"charlie-", b"d" * 11, b"end\n"]
    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        patch._write_all(fd, buffers)
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"".join(bytes(b) for b in buffers)
    assert max(seen) <= 3


@pytest.mark.parametrize("path", ["nul.txt", "\u2024\u2024/x", "a.txt::$DATA", "a\u202eb.txt", "CON/x", "a.txt."])
def test_the_cli_refuses_look_alike_paths_and_writes_nothing(root, path):
    before = tree(root)
    result = patch.apply_batch({"workspace": "w", "operations": [
        {"op": "append", "file": "b.txt", "content": "c"}, {"op": "append", "file": path, "content": "x"}]}, root)
    assert result["status"] == "failed"
    assert result["results"][1]["error"].startswith("INVALID_OPERATION")
    assert tree(root) == before
