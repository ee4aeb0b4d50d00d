"""The engine's fast path (FastFile: one string plus pending line edits) gives exactly what the
line-list path (TextFile, the reference semantics) gives (for ASCII files on bytes, FastBytes),
results and bytes, for any batch."""
from hypothesis import given, settings, strategies as st

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


@settings(max_examples=1500, deadline=None)
@given(batches())
def test_fast_path_matches_line_list_path(case):
    text, ops = case
    assert _run(text, ops, fast=True) == _run(text, ops, fast=False)
