"""The patch engine (pure): every op x anchor, drift, search failures, overlaps, line endings,
empty files, missing final newlines, marker timeouts, and all-or-nothing as a property."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from patch_engine import engine
from patch_engine.engine import apply_batch, normalize_path, sha256

F = "one\n###X###\ntwo\n###X###\nthree\n"
ANCHORS = {
    "marker": {"marker": "###X###"},           # literal: the substring fast path
    "marker-regex": {"marker": r"^#+X#+$"},    # a real regex: per-line search with a timeout
    "lines": {"lines": {"start": 2, "end": 4}},
    "line": {"line": 3},
    "search": {"search": "two"},
}
BLOCK = {  # what each anchor selects, as the expected outputs below
    "marker": "block", "marker-regex": "block", "lines": "block", "line": "two", "search": "two"}
EXPECTED = {
    ("replace-block", "block"): "one\nNEW\nthree\n",
    ("replace-block", "two"): "one\n###X###\nNEW\n###X###\nthree\n",
    ("insert-before", "block"): "one\nNEW\n###X###\ntwo\n###X###\nthree\n",
    ("insert-before", "two"): "one\n###X###\nNEW\ntwo\n###X###\nthree\n",
    ("insert-after", "block"): "one\n###X###\ntwo\n###X###\nNEW\nthree\n",
    ("insert-after", "two"): "one\n###X###\ntwo\nNEW\n###X###\nthree\n",
}


def run(ops, files):
    files = {k: (v.encode() if isinstance(v, str) else v) for k, v in files.items()}
    return apply_batch(ops, files.get)


def one(op, anchor=None, content="NEW", file="f.txt", **kw):
    out = {"op": op, "file": file, "content": content, **kw}
    if anchor is not None:
        out["anchor"] = anchor
    return out


@pytest.mark.parametrize("op", ["replace-block", "insert-before", "insert-after"])
@pytest.mark.parametrize("anchor", list(ANCHORS))
def test_every_op_with_every_anchor(op, anchor):
    outcome = run([one(op, ANCHORS[anchor])], {"f.txt": F})
    assert outcome.ok, outcome.results
    assert outcome.files["f.txt"].decode() == EXPECTED[(op, BLOCK[anchor])]
    assert outcome.results[0].matched_by == anchor.split("-")[0]


@pytest.mark.parametrize("op,expected", [("append", F + "NEW\n"), ("prepend", "NEW\n" + F)])
def test_append_and_prepend(op, expected):
    outcome = run([one(op)], {"f.txt": F})
    assert outcome.files["f.txt"].decode() == expected
    assert outcome.results[0].matched_by is None


@pytest.mark.parametrize("op", ["append", "prepend"])
def test_append_and_prepend_create_a_missing_file(op):
    outcome = run([one(op, content="a\nb")], {})
    assert outcome.files == {"f.txt": b"a\nb\n"}


@pytest.mark.parametrize("op", ["replace-block", "insert-before", "insert-after"])
def test_anchored_ops_on_a_missing_file_fail(op):
    outcome = run([one(op, {"line": 1})], {})
    assert not outcome.ok and outcome.results[0].code == engine.FILE_NOT_FOUND
    assert outcome.results[0].matched_by == "line"


def test_search_replace_is_exact_text_and_can_span_lines():
    outcome = run([one("replace-block", {"search": "o\n###X###\nt"}, content="-")], {"f.txt": F})
    assert outcome.files["f.txt"].decode() == "one\n###X###\ntw-hree\n"


def test_missing_and_ambiguous_search_report_the_count():
    missing = run([one("replace-block", {"search": "nowhere"})], {"f.txt": F})
    assert missing.results[0].code == engine.SEARCH_NOT_FOUND and "0 times" in missing.results[0].error
    ambiguous = run([one("replace-block", {"search": "###X###"})], {"f.txt": F})
    assert ambiguous.results[0].code == engine.SEARCH_AMBIGUOUS and "2 times" in ambiguous.results[0].error
    overlapping = run([one("replace-block", {"search": "aa"})], {"f.txt": "aaa\n"})
    assert overlapping.results[0].code == engine.SEARCH_AMBIGUOUS
    assert not missing.files and not ambiguous.files


def test_marker_single_line_and_missing_marker():
    outcome = run([one("replace-block", {"marker": "^two$"})], {"f.txt": F})
    assert outcome.files["f.txt"].decode() == "one\n###X###\nNEW\n###X###\nthree\n"
    missing = run([one("replace-block", {"marker": "###Y###"})], {"f.txt": F})
    assert missing.results[0].code == engine.MARKER_NOT_FOUND


def test_marker_pair_takes_the_first_two_matches_only():
    text = "a\n#M\nb\n#M\nc\n#M\n"
    outcome = run([one("replace-block", {"marker": "#M"}, content="X")], {"f.txt": text})
    assert outcome.files["f.txt"].decode() == "a\nX\nc\n#M\n"


def test_invalid_and_pathological_markers_fail_their_op_quickly():
    invalid = run([one("replace-block", {"marker": "(unclosed"})], {"f.txt": F})
    assert invalid.results[0].code == engine.MARKER_INVALID
    text = "a" * 3000 + "c\n"
    started = time.monotonic()  # polynomial backtracking (exponential shapes are refused: test_patch_engine_bounds)
    outcome = apply_batch([one("replace-block", {"marker": r"a*a*a*a*a*a*a*[ab]$"})], {"f.txt": text.encode()}.get,
                          timeout=0.2)
    assert time.monotonic() - started < 2
    assert outcome.results[0].code == engine.MARKER_TIMEOUT and not outcome.files


def test_lines_out_of_range():
    for anchor in ({"line": 6}, {"lines": {"start": 5, "end": 6}}):
        outcome = run([one("replace-block", anchor)], {"f.txt": F})
        assert outcome.results[0].code == engine.LINE_OUT_OF_RANGE


def test_drift_is_detected_against_the_file_before_the_batch():
    good = sha256(F.encode())
    ops = [one("append", content="x"), one("append", content="y", expectedSha256=good)]
    assert run(ops, {"f.txt": F}).ok  # the second op compares with the file before the batch
    drifted = run([one("append", expectedSha256="0" * 64)], {"f.txt": F})
    assert drifted.drift and drifted.results[0].code == engine.SHA256_MISMATCH and not drifted.files
    missing = run([one("append", expectedSha256=good)], {})
    assert missing.results[0].code == engine.SHA256_MISMATCH


def test_ops_on_one_file_see_the_previous_result_and_overlapping_edits_compose():
    ops = [one("replace-block", {"lines": {"start": 2, "end": 3}}, content="B\nC\nD"),
           one("replace-block", {"lines": {"start": 3, "end": 5}}, content="Z"),  # overlaps the first edit
           one("insert-after", {"search": "Z"}, content="after Z")]
    outcome = run(ops, {"f.txt": "a\nb\nc\nd\ne\n"})
    assert outcome.files["f.txt"].decode() == "a\nB\nZ\nafter Z\ne\n"


def test_a_search_replacement_may_eat_its_line_ending_after_earlier_edits():
    """`search` content replaces the exact text verbatim, a line ending included: the line runs
    into the next one (or the file loses its final newline), whatever edits came before."""
    ops = [one("append", content=""),
           one("replace-block", {"line": 1}, content=""),
           one("replace-block", {"line": 2}, content=""),  # the file is now a\r\nline b\r\n
           one("replace-block", {"search": "b\r\n"}, content="")]
    outcome = run(ops, {"f.txt": "a\r\na\r\na\r\nline b\r\n"})
    assert outcome.ok and [r.matched_by for r in outcome.results] == [None, "line", "line", "search"]
    assert outcome.files == {"f.txt": b"a\r\nline "}
    joined = run([one("replace-block", {"line": 2}, content=""), one("replace-block", {"search": "x\n"}, content="Y")],
                 {"f.txt": "a\nb\nc x\nd\n"})
    assert joined.files == {"f.txt": b"a\nc Yd\n"}


def test_crlf_files_keep_their_endings_and_inserted_lines_take_them():
    text = "a\r\nb\r\nc\r\n"
    ops = [one("insert-after", {"line": 1}, content="x\ny"), one("append", content="z\n"),
           one("replace-block", {"marker": "^c$"}, content="C")]
    outcome = run(ops, {"f.txt": text})
    assert outcome.files["f.txt"] == b"a\r\nx\r\ny\r\nb\r\nC\r\nz\r\n"


def test_mixed_endings_survive_untouched_lines():
    text = "a\r\nb\nc\r\n"
    outcome = run([one("replace-block", {"line": 2}, content="B")], {"f.txt": text})
    assert outcome.files["f.txt"] == b"a\r\nB\r\nc\r\n"
    outcome = run([one("insert-before", {"line": 3}, content="x")], {"f.txt": text})
    assert outcome.files["f.txt"] == b"a\r\nb\nx\r\nc\r\n"


def test_empty_files():
    assert run([one("append", content="x")], {"f.txt": ""}).files == {"f.txt": b"x\n"}
    assert run([one("prepend", content="")], {"f.txt": ""}).files == {}  # no change, nothing to write
    failed = run([one("replace-block", {"line": 1})], {"f.txt": ""})
    assert failed.results[0].code == engine.LINE_OUT_OF_RANGE
    assert run([one("replace-block", {"search": "x"})], {"f.txt": ""}).results[0].code == engine.SEARCH_NOT_FOUND
    # replacing every line with nothing leaves an empty file
    assert run([one("replace-block", {"lines": {"start": 1, "end": 2}}, content="")],
               {"f.txt": "a\nb\n"}).files == {"f.txt": b""}


def test_a_missing_final_newline_survives():
    text = "a\nb"
    assert run([one("append", content="c")], {"f.txt": text}).files["f.txt"] == b"a\nb\nc"
    assert run([one("prepend", content="z")], {"f.txt": text}).files["f.txt"] == b"z\na\nb"
    assert run([one("replace-block", {"line": 2}, content="B")], {"f.txt": text}).files["f.txt"] == b"a\nB"
    assert run([one("insert-after", {"line": 2}, content="x")], {"f.txt": text}).files["f.txt"] == b"a\nb\nx"
    # search sees the real text: there is no newline after b
    assert run([one("replace-block", {"search": "b\n"})], {"f.txt": text}).results[0].code == engine.SEARCH_NOT_FOUND
    crlf = "a\r\nb"
    assert run([one("append", content="c")], {"f.txt": crlf}).files["f.txt"] == b"a\r\nb\r\nc"


def test_non_utf8_bytes_survive():
    data = b"caf\xe9\nx\n"
    outcome = apply_batch([one("insert-after", {"line": 1}, content="y")], {"f.txt": data}.get)
    assert outcome.files["f.txt"] == b"caf\xe9\ny\nx\n"


def test_a_failing_batch_changes_nothing_and_reports_every_op():
    ops = [one("append", content=f"line {i}", file=f"f{i % 2}.txt") for i in range(4)]
    ops.append(one("replace-block", {"marker": "NOPE"}, file="f0.txt"))
    ops.append(one("append", content="after", file="f1.txt"))
    outcome = run(ops, {"f0.txt": "x\n", "f1.txt": "y\n"})
    assert not outcome.ok and outcome.files == {}
    assert [r.ok for r in outcome.results] == [True, True, True, True, False, True]
    assert outcome.results[4].code == engine.MARKER_NOT_FOUND and outcome.results[4].index == 4


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a\\b", "a\x00b", "a/../../b", "", "a/", "C:/x"])
def test_bad_paths_are_refused(path):
    with pytest.raises(engine.PathError):
        normalize_path(path)


def test_paths_are_normalized():
    assert normalize_path("./a//b/./c.txt") == "a/b/c.txt"


# --- the property: all or nothing ------------------------------------------------------

line_text = st.text(alphabet=st.sampled_from(list("ab#X \t\r")), max_size=6)
file_text = st.lists(st.tuples(line_text, st.sampled_from(["\n", "\r\n"])), max_size=8).flatmap(
    lambda lines: st.booleans().map(
        lambda final: "".join(t + e for t, e in lines)[: None if final or not lines else -len(lines[-1][1])]))
anchor = st.one_of(
    st.builds(lambda m: {"marker": m}, st.sampled_from(["X", "^a", "b$", "#+", "(", "zz"])),
    st.builds(lambda a, b: {"lines": {"start": min(a, b), "end": max(a, b)}}, st.integers(1, 9), st.integers(1, 9)),
    st.builds(lambda n: {"line": n}, st.integers(1, 9)),
    st.builds(lambda s: {"search": s}, st.sampled_from(["a", "ab", "X\n", "b\r\n", "zz", "#"])),
)
operation = st.builds(
    lambda op, f, a, c: {"op": op, "file": f, "content": c, **({"anchor": a} if op in engine.ANCHORED else {})},
    st.sampled_from(engine.OPS), st.sampled_from(["f0", "f1", "f2"]), anchor, line_text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(st.sampled_from(["f0", "f1", "f2"]), file_text),
       ops=st.lists(operation, min_size=1, max_size=8))
def test_a_batch_applies_completely_or_leaves_every_file_byte_identical(files, ops):
    store = {k: v.encode() for k, v in files.items()}
    snapshot = dict(store)
    outcome = apply_batch(ops, store.get)
    store.update(outcome.files)  # what a committer does with an outcome
    if not outcome.ok:
        assert store == snapshot and outcome.files == {}
        return
    # complete: the same as applying each operation alone, in order
    stepwise = dict(snapshot)
    for op in ops:
        single = apply_batch([op], stepwise.get)
        assert single.ok
        stepwise.update(single.files)
    assert store == stepwise
    assert all(r.ok for r in outcome.results) and len(outcome.results) == len(ops)
