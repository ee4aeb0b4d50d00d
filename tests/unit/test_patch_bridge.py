"""The coordinate resolver and the files-to-patches bridge: the batch it builds, applied by the
engine, turns the current files into the generated ones."""
from __future__ import annotations

from patch_engine import bridge, engine

CURRENT = "head\n###PROMPT_A###\nold a\n###PROMPT_A###\nmiddle\ntail\n"


def test_resolve_new_existing_and_insert():
    assert bridge.resolve(None, "###X###").kind == "new"
    assert bridge.resolve(CURRENT, "###PROMPT_A###") == bridge.Resolution("existing", 2, 4)
    assert bridge.resolve("a\n###S###\nb\n", "###S###") == bridge.Resolution("existing", 2, 2)
    assert bridge.resolve(CURRENT, "###PROMPT_B###", following="tail") == bridge.Resolution("insert", before_line=6)
    assert bridge.resolve(CURRENT, "###PROMPT_B###") == bridge.Resolution("insert", before_line=7)


def _apply(files: dict[str, bytes], batch: dict) -> dict[str, bytes]:
    outcome = engine.apply_batch(batch["operations"], files.get)
    assert outcome.ok, outcome.results
    return {**files, **outcome.files}


def test_bridge_new_files_marker_blocks_and_whole_file_replacement():
    current = {"prompt.txt": CURRENT.encode(), "whole.txt": b"x\ny\n", "same.txt": b"same\n"}
    generated = {
        "new/file.txt": "brand new\n",
        "prompt.txt": "###PROMPT_A###\nnew a\nnew a2\n###PROMPT_A###\n###PROMPT_B###\nb\n###PROMPT_B###\ntail\n",
        "whole.txt": "replaced\n",
        "same.txt": "same\n",
    }
    batch = bridge.files_to_batch("ws", generated, current.get, factory="f1", orderId="o1")
    assert batch["factory"] == "f1" and batch["orderId"] == "o1"
    ops = {(o["file"], o["op"]) for o in batch["operations"]}
    assert ops == {("new/file.txt", "append"), ("prompt.txt", "replace-block"), ("prompt.txt", "insert-before"),
                   ("whole.txt", "replace-block")}
    result = _apply(current, batch)
    assert result["new/file.txt"] == b"brand new\n"
    assert result["whole.txt"] == b"replaced\n"
    assert result["prompt.txt"].decode() == (
        "head\n###PROMPT_A###\nnew a\nnew a2\n###PROMPT_A###\nmiddle\n###PROMPT_B###\nb\n###PROMPT_B###\ntail\n")
    # every op on an existing file guards against drift
    assert all(o.get("expectedSha256") for o in batch["operations"] if o["file"] != "new/file.txt")
    stale = dict(current, **{"whole.txt": b"someone else\n"})
    assert not engine.apply_batch(batch["operations"], stale.get).ok


def test_bridge_on_an_empty_file_appends():
    batch = bridge.files_to_batch("ws", {"e.txt": "a\n"}, {"e.txt": b""}.get)
    assert _apply({"e.txt": b""}, batch)["e.txt"] == b"a\n"


def test_two_new_blocks_before_the_same_line_keep_their_order():
    current = {"p.txt": b"a\nend\n"}
    generated = {"p.txt": "a\n###B1###\n###C2###\nend\n"}
    batch = bridge.files_to_batch("ws", generated, current.get)
    assert _apply(current, batch)["p.txt"] == b"a\n###B1###\n###C2###\nend\n"
