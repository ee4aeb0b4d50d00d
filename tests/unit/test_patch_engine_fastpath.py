"""The engine's fast path (FastFile: one string plus pending line edits) gives exactly what the
line-list path (TextFile, the reference semantics) gives (for ASCII files on bytes, FastBytes),
results and bytes, for any batch."""
import pytest
from hypothesis import example, given, settings, strategies as st

from patch_engine import engine

LINES = st.sampled_from(["a", "b", "###M###", "x y", "", "a\r", "line b", "ab", "é b", "v\x0bt", "\u2028", "\x85c"])
CONTENT = st.sampled_from(["", "new", "n1\nn2", "n\n", "###M###", "c\r\n", "a\nb\n\n", "é", "\udcff x"])


@st.composite
def batches(draw):
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    body = draw(st.lists(LINES, min_size=0, max_size=12))
    text = eol.join(body) + draw(st.sampled_from([eol, "", eol, eol]))
    ops = []
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(engine.OPS))
        op = {"op": name, "file": "f.txt", "content": draw(CONTENT)}
        if name in engine.ANCHORED:
            kind = draw(st.sampled_from(["line", "lines", "search", "marker", "marker"]))
            if kind == "line":
                op["anchor"] = {"line": draw(st.integers(-1, 16))}
            elif kind == "lines":
                start = draw(st.integers(0, 16))
                op["anchor"] = {"lines": {"start": start, "end": start + draw(st.integers(-1, 4))}}
            elif kind == "search":
                values = ["a", "b\n", "x y", "line b", "\na", "ab", "b\r\n", "", "é", "\udcff"]
                op["anchor"] = {"search": draw(st.sampled_from(values))}
            else:
                op["anchor"] = {"marker": draw(st.sampled_from(["###M###", "a", "^b$", "x y", "line", "é"]))}
        ops.append(op)
    return text, ops


def _run(text, ops, fast):
    saved = engine._open
    if not fast:
        engine._open = lambda data: engine.TextFile(engine.decode(data))
    try:
        out = engine.apply_batch(ops, {"f.txt": text.encode()}.get)
    finally:
        engine._open = saved
    return [(r.ok, r.matched_by, r.error) for r in out.results], out.files


# A search replacement that eats its line's ending (`b\r\n` -> ``) after line edits that are
# still pending (lines 1 and 2 deleted): the fast path spliced the pending edits and then cut the
# new text at the match's offsets in the old one, so the edit was lost (reported applied).
EATS_ITS_ENDING = ("a\r\na\r\na\r\nline b\r\n", [
    {"op": "append", "file": "f.txt", "content": ""},
    {"op": "replace-block", "file": "f.txt", "content": "", "anchor": {"line": 1}},
    {"op": "replace-block", "file": "f.txt", "content": "", "anchor": {"line": 2}},
    {"op": "replace-block", "file": "f.txt", "content": "", "anchor": {"search": "b\r\n"}}])


@settings(max_examples=1500, deadline=None)
@example(EATS_ITS_ENDING)
@given(batches())
def test_fast_path_matches_line_list_path(case):
    text, ops = case
    assert _run(text, ops, fast=True) == _run(text, ops, fast=False)


def _search_eats_ending(first, content="Y"):
    return [first, {"op": "replace-block", "file": "f.txt", "content": content, "anchor": {"search": "x\n"}}]


@pytest.mark.parametrize("text,ops,expected", [
    # a pending edit before the match (not at offset 0: nothing splices it earlier)
    ("a\nb\nc x\nd\n", _search_eats_ending({"op": "replace-block", "file": "f.txt", "content": "",
                                                "anchor": {"line": 2}}), b"a\nc Yd\n"),
    ("a\nb\nc x\nd\n", _search_eats_ending({"op": "insert-after", "file": "f.txt", "content": "new",
                                                "anchor": {"line": 1}}), b"a\nnew\nb\nc Yd\n"),
    # pending edits touching the matched line: an insertion before it, one after it (the
    # replacement runs into the inserted line, as it would into any next line), one after the file
    ("a\nb\nc x\nd\n", _search_eats_ending({"op": "insert-before", "file": "f.txt", "content": "new",
                                                "anchor": {"line": 3}}), b"a\nb\nnew\nc Yd\n"),
    ("a\nb\nc x\nd\n", _search_eats_ending({"op": "insert-after", "file": "f.txt", "content": "new",
                                                "anchor": {"line": 3}}), b"a\nb\nc Ynew\nd\n"),
    ("a\nb\nc x\nd\n", _search_eats_ending({"op": "replace-block", "file": "f.txt", "content": "D",
                                                "anchor": {"line": 4}}), b"a\nb\nc YD\n"),
    ("a\nb\nc x\n", _search_eats_ending({"op": "replace-block", "file": "f.txt", "content": "",
                                           "anchor": {"line": 2}}), b"a\nc Y"),
    # not ASCII: FastFile on the decoded text, not FastBytes
    ("é\nb\nc x\nd\n", _search_eats_ending({"op": "replace-block", "file": "f.txt", "content": "",
                                                "anchor": {"line": 2}}), "é\nc Yd\n".encode()),
    (*EATS_ITS_ENDING, b"a\r\nline "),
])
def test_a_search_replacement_eating_its_line_ending_after_pending_edits(text, ops, expected):
    fast = _run(text, ops, fast=True)
    assert fast == _run(text, ops, fast=False)
    assert all(ok for ok, _, _ in fast[0]) and fast[1] == {"f.txt": expected}
