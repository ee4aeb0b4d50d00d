"""Long search / marker values are looked for by a prefix probe (engine.PROBE characters), each hit
checked in full, handing over to the whole value after PROBE_MISSES false hits: the occurrences
found are exactly those a plain search finds. Checked with the probe shrunk so that the short
values of the fast-path test exercise it."""
import contextlib

import pytest
from hypothesis import example, given, settings, strategies as st

from patch_engine import engine
from tests.unit.test_patch_engine_fastpath import EATS_ITS_ENDING, _run, batches


def _naive(hay: bytes, value: bytes, pos: int, stop: int, step: int, limit: int) -> list[int]:
    found, at = [], hay.find(value, pos, stop)
    while at >= 0 and len(found) < limit:
        found.append(at)
        at = hay.find(value, at + step, stop)
    return found


@contextlib.contextmanager
def engine_with(**values):
    """The engine's module globals set to `values` for the block (hypothesis runs many examples in
    one test call, so not pytest's function-scoped monkeypatch)."""
    saved = {name: getattr(engine, name) for name in values}
    for name, value in values.items():
        setattr(engine, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(engine, name, value)


def small_probe(probe: int, misses: int):
    return engine_with(PROBE=probe, PROBE_MISSES=misses)


ABC = st.lists(st.sampled_from(b"abc"), max_size=40).map(bytes)


@st.composite
def searches(draw):
    hay = draw(ABC)
    value = draw(st.lists(st.sampled_from(b"abc"), min_size=1, max_size=6).map(bytes))
    pos = draw(st.integers(0, len(hay) + 1))
    return hay, value, pos, draw(st.integers(0, len(hay) + 1))


@settings(max_examples=1500, deadline=None)
@example(case=(b"aaaa", b"aa", 0, 4), overlapping=False, limit=3, probe=1, misses=3)  # a hit's step
@example(case=(b"aab", b"ab", 0, 2), overlapping=True, limit=2, probe=1, misses=3)  # a hit past stop
@example(case=(b"abababac", b"abac", 0, 8), overlapping=True, limit=2, probe=2, misses=2)  # hand-over
@given(case=searches(), overlapping=st.booleans(), limit=st.integers(1, 4), probe=st.integers(1, 5),
       misses=st.integers(1, 3))
def test_probe_finds_exactly_what_a_plain_search_finds(case, overlapping, limit, probe, misses):
    hay, value, pos, stop = case
    step = 1 if overlapping else len(value)
    found: list[int] = []
    with small_probe(probe, misses):
        full = engine._occurrences(hay, value, pos, stop, step, limit, found)
    expected = _naive(hay, value, pos, stop, step, limit)
    assert found == expected and full == (len(expected) >= limit)


@pytest.mark.parametrize("probe,misses", [(1, 1), (2, 8), (3, 2)])
@settings(max_examples=300, deadline=None)
@example(case=EATS_ITS_ENDING)
@given(case=batches())
def test_fast_path_with_a_tiny_probe_matches_line_list_path(probe, misses, case):
    text, ops = case
    with small_probe(probe, misses):
        fast = _run(text, ops, fast=True)
    assert fast == _run(text, ops, fast=False)


def test_a_long_needle_with_a_common_prefix_is_found_once():
    lines = [f"{'    ' * 10}value = {i}\n" for i in range(200)]
    text = "".join(lines)
    needle = lines[150].rstrip("\n")  # 40 spaces of indentation: the probe hits every line
    outcome = engine.apply_batch([{"op": "replace-block", "file": "f", "anchor": {"search": needle},
                                   "content": "X"}], {"f": text.encode()}.get)
    assert outcome.ok and outcome.results[0].matched_by == "search"
    assert outcome.files["f"].decode() == text.replace(needle, "X")
    twice = text + lines[150]
    ambiguous = engine.apply_batch([{"op": "insert-after", "file": "f", "anchor": {"search": needle},
                                     "content": "X"}], {"f": twice.encode()}.get)
    assert ambiguous.results[0].code == engine.SEARCH_AMBIGUOUS


# --- the C library's memmem behind engine.finder ----------------------------------------------

BYTES = st.lists(st.sampled_from(b"ab\x00\n"), max_size=40).map(bytes)


def test_memmem_is_found_on_this_machine():
    """Linux (glibc, musl) and macOS have one: a bench or CI run here is the memmem path, not
    bytes.find by accident."""
    assert engine._load_memmem() is not None
    assert engine.finder(b"abc") is not b"abc".find


@settings(max_examples=2000, deadline=None)
@example(hay=b"aab", needle=b"ab", pos=0, stop=2)  # a hit ending past stop
@example(hay=b"a\x00b", needle=b"\x00b", pos=0, stop=3)  # NUL bytes: lengths, not C strings
@example(hay=b"ab", needle=b"b", pos=3, stop=1)  # pos past stop and past the end
@given(hay=BYTES, needle=st.lists(st.sampled_from(b"ab\x00\n"), min_size=1, max_size=5).map(bytes),
       pos=st.integers(0, 42), stop=st.integers(0, 50))
def test_finder_answers_as_bytes_find(hay, needle, pos, stop):
    assert engine.finder(hay)(needle, pos, stop) == hay.find(needle, pos, stop)


def without_memmem():
    return engine_with(_MEMMEM=None, _MEMMEM_LOADED=True)


@settings(max_examples=300, deadline=None)
@example(case=EATS_ITS_ENDING)  # was saved in a .hypothesis folder only
@given(case=batches())
def test_fast_path_without_memmem_matches_line_list_path(case):
    """Where ctypes finds no memmem (Windows), bytes.find serves: the same results."""
    text, ops = case
    hay = b"x"
    with without_memmem():
        assert engine.finder(hay) == hay.find
        fast = _run(text, ops, fast=True)
    assert fast == _run(text, ops, fast=False)
