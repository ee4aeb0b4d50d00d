"""The engine's bounds on what a tenant writes (pure, no AWS): marker regexes checked before they
reach the compiler (nesting, counted repeats and their expansion, repeated ambiguous groups),
the bounded cache of compiled markers, the batch's shared regex time budget, and the workspace
path rule (look-alikes, Windows device names, streams, controls)."""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from patch_engine import engine, markers
from patch_engine.engine import PathError, apply_batch, normalize_path

CRASH = "(?:" * 200 + "a" + ")" * 200  # a RecursionError inside regex.compile
BOMB = "(?:a{1000}){1000}"              # 200+ MB compiled
BACKTRACK = r"(a|a)+$"                 # exponential in the line's length
POLYNOMIAL = r"a*a*a*a*a*a*a*[ab]$"     # passes the checks, still slow on "aaa...c": the budget's case


def replace(marker: str, file: str = "f.txt") -> dict:
    return {"op": "replace-block", "file": file, "anchor": {"marker": marker}, "content": "X"}


@pytest.mark.parametrize("marker, why", [
    (CRASH, "nests groups"),
    (BOMB, "expands"),
    ("(?:" + "a" * 10 + "){1000}", "expands"),
    ("a{5000}", "at most 1000"),
    (BACKTRACK, "exponentially"),
    (r"(a+)+b", "exponentially"),
    (r"(\w*)*x", "exponentially"),
    ("(a|b){30}", "exponentially"),
    ("((a|b))+", "exponentially"),
    ("(?x)a b", "verbose"),
    ("[[]", "escape '['"),
    ("a" * 1001, "characters long"),
])
def test_markers_out_of_bounds_are_refused_before_compiling(marker, why):
    with pytest.raises(markers.MarkerRefused, match=re.escape(why)):
        markers.check(marker)
    assert why.split()[0] in (engine.check_marker(marker) or "")


@pytest.mark.parametrize("marker", [
    "###FINAL_MILE_PROMPT__NAME###", r"^#+X#+$", r"^\s*// region (\w+)$", "(?:ab)+", "a{1000}",
    "(?:a{10}){10}", "(foo|bar)?", r"[[:alpha:]]+\d{2,4}", r"\p{Lu}+", "(?i)todo:", "(a|b)",
])
def test_usual_markers_pass(marker):
    assert engine.check_marker(marker) is None


@pytest.mark.parametrize("marker", [CRASH, BOMB, BACKTRACK])
def test_each_attack_fails_its_op_fast_and_is_never_cached(marker):
    text = ("a" * 40 + "!\n").encode()
    started = time.monotonic()
    outcome = apply_batch([replace(marker)], {"f.txt": text}.get)
    assert time.monotonic() - started < 0.5
    assert outcome.results[0].code == engine.MARKER_INVALID and not outcome.files
    assert marker not in engine.compiled_markers()


def test_a_marker_the_compiler_rejects_is_an_op_failure_not_an_exception():
    outcome = apply_batch([replace("(unclosed")], {"f.txt": b"x\n"}.get)
    assert outcome.results[0].code == engine.MARKER_INVALID


def test_the_compiled_marker_cache_is_a_bounded_lru():
    engine._compiled.clear()
    keep = r"^keep\d+$"
    for i in range(engine.MARKER_CACHE_SIZE * 2):
        engine.compile_marker(rf"^m{i}\d+$")
        engine.compile_marker(keep)  # used all along: never the least recently used
    held = engine.compiled_markers()
    assert len(held) == engine.MARKER_CACHE_SIZE
    assert keep in held and rf"^m{engine.MARKER_CACHE_SIZE * 2 - 1}\d+$" in held
    assert r"^m0\d+$" not in held


def test_the_cache_is_bounded_by_the_markers_expansion_too():
    engine._compiled.clear()
    big = [f"(?:a{{990}}b){{2}}{i}" for i in range(40)]  # each near markers.MAX_EXPANSION
    for marker in big:
        assert markers.check(marker) > markers.MAX_EXPANSION * 0.9
        engine.compile_marker(marker)
    assert engine._compiled.held <= engine.MARKER_CACHE_WEIGHT
    assert len(engine.compiled_markers()) <= engine.MARKER_CACHE_WEIGHT // (markers.MAX_EXPANSION * 0.9) + 1
    assert big[-1] in engine.compiled_markers()


def test_the_batch_shares_one_regex_time_budget():
    """Ten slow markers: the first takes the per-op timeout, the budget then runs out, and every
    later marker op fails at once, so the batch spends its budget, not 10 x the per-op timeout."""
    text = ("a" * 3000 + "c\n").encode()
    ops = [replace(POLYNOMIAL) for _ in range(10)]
    started = time.monotonic()
    outcome = apply_batch(ops, {"f.txt": text}.get, timeout=0.3, regex_seconds=0.5)
    took = time.monotonic() - started
    codes = [r.code for r in outcome.results]
    assert codes[0] == engine.MARKER_TIMEOUT
    assert codes[1:] == [engine.REGEX_BUDGET_EXCEEDED] * 9, codes
    assert "budget" in (outcome.results[1].error or "")
    # The codes above are the proof: nine ops never ran a regex. The time is wall time (the regex
    # module checks its timeout coarsely, and a loaded 2-core machine stretches it: 1.5 s seen under
    # load), so it is only held below what the batch would take without a budget: 10 x the per-op timeout.
    assert outcome.regex_seconds < 10 * 0.3
    assert took < 10 * 0.3 + 1.0
    assert not outcome.files


def test_literal_markers_cost_no_regex_time():
    outcome = apply_batch([replace("###X###")], {"f.txt": b"a\n###X###\n"}.get, regex_seconds=0.0)
    assert outcome.ok and outcome.regex_seconds == 0.0


# --- workspace paths ---------------------------------------------------------------------

LOOK_ALIKES = [
    "\u2024\u2024/x",            # ONE DOT LEADER x 2: '..' after NFKC
    "a/\u2024\u2024/b",
    "\uff0e\uff0e/x",            # FULLWIDTH FULL STOP
    "a\uff0fb/../../x",          # FULLWIDTH SOLIDUS
    "a\uff3cb",                  # FULLWIDTH REVERSE SOLIDUS
    "a.txt.", "dir./a.txt", "a.txt ", "dir /a", "...",
    "CON", "con", "nul.txt", "Nul.tar.gz", "COM1", "com9.log", "LPT9", "lpt1.txt", "aux", "PRN.md",
    "COM\u00b9.txt",            # COM + SUPERSCRIPT ONE
    "CONIN$", "dir/CON/x.txt", "ｃｏｎ.txt",
    "a.txt::$DATA", "a.txt:stream", "a:b", "C:x", "c:/x",
    "a\u202eb.txt",             # RIGHT-TO-LEFT OVERRIDE
    "a\u200db.txt",             # ZERO WIDTH JOINER (ignored by HFS+)
    "a\ufeffb", "a\u2028b", "a\x7fb", "a\x85b", "a\x00b", "a\nb", "a\tb",
    "a\\b", "a<b", "a>b", 'a"b', "a|b", "a?b", "a*b",
    ".git/config", ".GIT/hooks/pre-commit", "sub/.Git/x", "git~1/config",
    "cafe\u0301.md",            # decomposed: macOS takes it for the composed name
    "a/" + "x" * 256,
    "../x", "/etc/passwd", "a/../../b", "", "a/",
]


@pytest.mark.parametrize("path", LOOK_ALIKES)
def test_unsafe_and_look_alike_paths_are_refused(path):
    with pytest.raises(PathError):
        normalize_path(path)


@pytest.mark.parametrize("path, normalized", [
    ("./a//b/./c.txt", "a/b/c.txt"), ("café.md", "café.md"), ("CONFIG.txt", "CONFIG.txt"),
    ("icon.txt", "icon.txt"), ("COM10.txt", "COM10.txt"), ("nullable/x.py", "nullable/x.py"),
    (".gitignore", ".gitignore"), (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
    ("ｆｏｏ.txt", "ｆｏｏ.txt"), ("a b/c d.txt", "a b/c d.txt"), (".env", ".env"), ("日本語.txt", "日本語.txt"),
])
def test_ordinary_paths_pass(path, normalized):
    assert normalize_path(path) == normalized


def test_a_look_alike_path_fails_its_op_in_the_engine():
    outcome = apply_batch([{"op": "append", "file": "\u2024\u2024/x", "content": "x"}], {}.get)
    assert not outcome.ok and outcome.results[0].code == engine.INVALID_OPERATION
    assert "'..'" in (outcome.results[0].error or "")


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(list("()[]{}|*+?\\a1,:^$-xP<>=!#") + ["(?:", "{1000}", "{2,}", "[:alpha:]"]),
                max_size=60).map("".join))
def test_any_marker_is_either_refused_with_a_reason_or_compiled_quickly(marker):
    started = time.monotonic()
    problem = engine.check_marker(marker)  # never raises
    assert problem is None or problem.startswith("marker")
    assert time.monotonic() - started < 0.5


@settings(max_examples=800, deadline=None)
@given(st.text(max_size=40) | st.lists(st.sampled_from(["a", ".", "/", " ", ":", "\u2024", "\uff0e", "\uff0f", "con",
                                                         "\u202e", "\u0301", "\u2100", "\\"]), max_size=12).map("".join))
def test_any_path_is_either_refused_with_a_path_error_or_safe_after_nfkc(path):
    import unicodedata

    try:
        normalized = normalize_path(path)
    except PathError:
        return
    folded = unicodedata.normalize("NFKC", normalized)
    parts = folded.split("/")
    assert all(p not in ("", ".", "..") and not p.endswith((".", " ")) for p in parts)
    assert not set(folded) & set('\\:<>"|?*') and not folded.startswith("/")
    assert all(unicodedata.category(c) not in ("Cc", "Cf") for c in folded)
