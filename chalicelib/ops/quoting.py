r"""Untrusted text, quoted so that GitHub renders it inert: the ops scan's exit to GitHub (docs/SECURITY.md).

Pure. Everything a tenant or the outside world wrote (failure messages,
tracebacks, job types, pools, workspace and file names, log timestamps,
`claimedBy`, the model's analysis paragraph) goes through one of three
quotes before it is put into an issue's title, body or a comment:

  inline(text, limit)  one line of Markdown: HTML escaped (&lt;), \ ` * _ [ ] | ~ $ backslash-escaped,
                       newlines and controls made spaces (a list item cannot be broken out of)
  block(text, limit)   a fenced code block whose fence is longer than any run of backticks inside
  title(text, limit)   an issue title (plain text on GitHub, not Markdown)

and all three first: redact secrets (chalicelib/core/redaction.py, already
done when the failure was read; done again here for text that did not come
through a Failure), replace marker-like text (`ops-fingerprint`: only the
scan writes markers), drop control and bidirectional-override characters,
and neutralise what GitHub links or notifies even where Markdown is inert:
`@user` and `@org/team` mentions, `#123`, `owner/repo#123` and `GH-123`
references (so `Fixes #1` closes nothing), `http://` and `www.` autolinks,
`javascript:` and `data:` schemes, `![` and `](`, and `<` before a letter
(inside a code fence and in a title, where HTML entities are shown as
typed). Neutralising inserts a ZERO WIDTH JOINER (U+200D): invisible, the
text reads the same, but the pattern GitHub looks for is gone.

Every quote is bounded and says when it cut: GitHub refuses a title over
256 characters and a body or comment over 65,536 (422), and a group refused
would be retried by every scan forever.
"""
from __future__ import annotations

import re

from chalicelib.core.redaction import redact

ZWJ = "\u200d"
GITHUB_TITLE_LIMIT = 256
GITHUB_BODY_LIMIT = 65_536
BODY_LIMIT = 60_000          # what the scan sends at most: GitHub's limit with a margin
MARKER_REPLACEMENT = "[ops marker removed]"

_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_MARKER_LIKE = re.compile(r"ops[\s\-_\u2010-\u2015]*fingerprint", re.IGNORECASE)
_NEUTRALISE = [
    (re.compile(r"@(?=[A-Za-z0-9_\-])"), "@" + ZWJ),                        # @user, @org/team, user@host
    (re.compile(r"#(?=\d)"), "#" + ZWJ),                                    # #1, owner/repo#1, Fixes #1
    (re.compile(r"\b(GH)-(?=\d)", re.IGNORECASE), r"\1" + ZWJ + "-"),     # GH-123
    (re.compile(r"\b([a-z][a-z0-9+.\-]{0,20}):(?=//)", re.IGNORECASE), r"\1:" + ZWJ),   # http:// ftp:// autolinks
    (re.compile(r"\b(javascript|vbscript|data|file):", re.IGNORECASE), r"\1" + ZWJ + ":"),
    (re.compile(r"\b(www)\.", re.IGNORECASE), r"\1" + ZWJ + "."),
    (re.compile(r"!(?=\[)"), "!" + ZWJ),                                     # ![image]
    (re.compile(r"\](?=\()"), "]" + ZWJ),                                    # [text](link)
]
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
# Mid-line (newlines are gone), only these make Markdown: code spans, emphasis, links, tables, strikethrough,
# GitHub's $math$, and the backslash that would build an escape of its own. `#`, `-`, `.`, `(` stay as typed
# (paths read well).
_MARKDOWN_PUNCTUATION = set("\\`*_[]|~$")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_WHITESPACE = re.compile(r"\s+")
_BACKTICKS = re.compile(r"`+")


def clean(text: str) -> str:
    """Secrets redacted, marker-like text replaced, control and bidi characters gone; newlines kept."""
    text = redact(str(text)).replace("\r\n", "\n").replace("\r", "\n")
    text = _MARKER_LIKE.sub(MARKER_REPLACEMENT, text)
    return _INVISIBLE.sub("", text)


def neutralise(text: str) -> str:
    for pattern, replacement in _NEUTRALISE:
        text = pattern.sub(replacement, text)
    return text


def _cut_note(total: int) -> str:
    return f" … [truncated: {total:,} characters in all]"


def inline(text: object, limit: int = 1000) -> str:
    """One line of Markdown showing `text` literally, at most `limit` characters (a cut says so)."""
    source = _WHITESPACE.sub(" ", clean(str(text))).strip()
    pieces = [_HTML.get(c) or ("\\" + c if c in _MARKDOWN_PUNCTUATION else c) for c in neutralise(source)]
    if sum(len(p) for p in pieces) <= limit:
        return "".join(pieces)
    note = _cut_note(len(source))
    out: list[str] = []
    used = len(note)
    for piece in pieces:  # whole pieces only: an escape or an entity is never cut in half
        if used + len(piece) > limit:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + note


def head_and_tail(text: str, limit: int) -> str:
    """`text` within `limit` characters: its head and its tail (a traceback's end says what broke), and a
    line in between saying how much was cut."""
    if len(text) <= limit:
        return text
    room = max(0, limit - 100)
    head, tail = text[:room // 3], text[len(text) - (room - room // 3):]
    note = f"… [truncated: {len(text) - len(head) - len(tail):,} of {len(text):,} characters cut here] …"
    return f"{head}\n{note}\n{tail}"


def block(text: object, limit: int = 8000) -> str:
    """`text` as a fenced code block of at most `limit` characters, fence included; a cut says so."""
    body = _TAG_START.sub("<" + ZWJ, neutralise(clean(str(text)))).strip("\n")
    body = head_and_tail(body, max(200, limit - 2 * 12 - 2))
    longest = max((len(m) for m in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    if len(fence) > 12:  # a run of 12+ backticks: make them visible ticks instead of growing the fence
        body = _BACKTICKS.sub(lambda m: "ˋ" * len(m.group()), body)
        fence = "```"
    return f"{fence}\n{body}\n{fence}"


def title(text: object, limit: int = GITHUB_TITLE_LIMIT) -> str:
    """An issue title: one line, neutralised, at most `limit` characters (… when cut)."""
    line = _TAG_START.sub("<" + ZWJ, neutralise(_WHITESPACE.sub(" ", clean(str(text))).strip()))
    return line if len(line) <= limit else line[:limit - 1] + "…"
