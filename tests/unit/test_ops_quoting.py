"""Quoting untrusted text for GitHub (chalicelib/ops/quoting.py, pure)."""
import re

import pytest

from chalicelib.ops import quoting
from tests.support import hostile


def test_inline_is_one_inert_line_that_still_reads():
    out = quoting.inline(hostile.HOSTILE, 5000)
    assert "\n" not in out and hostile.problems(out) == []
    assert "&lt;script&gt;" in out and "\\[click\\]" in out and "\\`\\`\\`" in out
    assert quoting.inline("cost $\\href{x}{y}$ *b* ~s~ |t|") == "cost \\$\\\\href{x}{y}\\$ \\*b\\* \\~s\\~ \\|t\\|"
    # what it said is still there, with only invisible joiners and escapes added
    visible = out.replace(quoting.ZWJ, "").replace("\\", "")
    for words in ("octocat", "acme/security-team", "Fixes #1", "GH-3", "onerror=alert(1)", "fence breakout"):
        assert words in visible


@pytest.mark.parametrize("runs", [0, 3, 4, 7, 11])
def test_block_fence_is_longer_than_any_backtick_run(runs):
    text = f"before {'`' * runs} after\n```\nstill inside\n" + hostile.HOSTILE
    out = quoting.block(text)
    lines = out.split("\n")
    fence = lines[0]
    assert set(fence) == {"`"} and lines[-1] == fence
    longest = max((len(m) for m in re.findall(r"`+", "\n".join(lines[1:-1]))), default=0)
    assert len(fence) > longest and len(fence) >= 3
    assert hostile.problems(out) == []
    assert "still inside" in out


def test_block_of_many_backticks_keeps_a_short_fence():
    out = quoting.block("x" + "`" * 5000 + "y")
    assert out.startswith("```\n") and "`" not in out[4:-4]


def test_bounds_say_they_cut():
    long_line = "a&b<c " * 10_000
    inline = quoting.inline(long_line, 300)
    assert len(inline) <= 300 and inline.endswith("characters in all]") and "truncated" in inline
    assert not re.search(r"&[a-z]*$", inline.split(" … [truncated")[0])  # never half an entity
    block = quoting.block("line\n" * 50_000, 8000)
    assert len(block) <= 8000 and "characters cut here" in block
    title = quoting.title("t " * 500)
    assert len(title) == quoting.GITHUB_TITLE_LIMIT and title.endswith("…")


def test_controls_bidi_and_marker_like_text_are_dropped():
    out = quoting.inline("a\u202eb\x00c\u2066d ops-fingerprint: 0123 OPS_FINGERPRINT")
    assert out == "abcd \\[ops marker removed\\]: 0123 \\[ops marker removed\\]"
