"""The patch engine: pure Python, no AWS. The control plane's worker and the agent CLI both use it.

    outcome = apply_batch(ops, read)        # read(path) -> bytes | None (None: no such file)
    outcome.ok, outcome.results, outcome.files   # files: path -> new bytes, only when ok
    apply_batch(ops, read, on_file=write)   # write(path, new bytes) per changed file, as soon as
                                            # its last op applied (tentative until outcome.ok)

Semantics (binding, API.md "Patches"; examples in docs/PATCHES.md):

- Text is handled as lines. A line is its text plus its own ending (`\\n` or `\\r\\n`); the
  last line may have none (a file without a final newline). Endings are never rewritten:
  untouched lines keep theirs byte for byte, inserted lines take the file's ending (the
  first line's; `\\n` for a new or one-line file), and a file without a final newline still
  has none after the batch. Bytes that are not UTF-8 survive (surrogateescape).
- Anchors select lines: `marker` (a regex, searched in each line without its ending) selects
  the first matching line, and when a later line matches too, everything up to that second
  match (a marker pair encloses a block); `lines` {start, end} (1-based, inclusive); `line` n;
  `search` the exact text, which must occur exactly once (overlapping occurrences count).
- `replace-block` replaces the selection with `content` (for `search` the exact text, verbatim;
  otherwise the whole lines); `insert-before` / `insert-after` insert `content` as whole lines
  before the first / after the last selected line; `append` / `prepend` add `content` as
  whole lines at the end / start, creating a missing file. Every other op on a missing file
  fails (FILE_NOT_FOUND). `content` inserted as lines gets a final newline when it has none.
- Operations apply in batch order; an op on a file sees the result of the previous ops on it.
  `expectedSha256` is compared with the file as it was before the batch (drift detection).
- A batch is all or nothing: when any op fails, `files` is empty; every op still gets a
  result (later ops are evaluated against the state the successful ops produced).
- A marker regex is checked before it is compiled (markers.py: length, nesting, counted repeats
  and their expansion, repeated ambiguous groups; MARKER_INVALID), compiled once into a bounded
  LRU cache, and matched with the `regex` module's timeout: at most MARKER_TIMEOUT_SECONDS per
  op (MARKER_TIMEOUT) and BATCH_REGEX_SECONDS for all the batch's compiles and searches together
  (RegexBudget; REGEX_BUDGET_EXCEEDED for the op that finds it spent, and for every later marker
  op of the batch), so no batch holds the worker longer than that on regexes.

Two representations, one semantics: TextFile (a list of lines) defines it and takes every
case; FastFile / FastBytes (the text as one string, or the bytes of an ASCII file, plus pending
whole-line edits, spliced once) take the common ones and hand anything else to TextFile
(tests/unit/test_patch_engine_fastpath.py checks that both give the same bytes).
"""
from __future__ import annotations

import hashlib
import threading
import time
from bisect import bisect_right, insort
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import regex

from patch_engine import markers
from patch_engine.paths import PathError as PathError  # the path rule, here for every user of the engine
from patch_engine.paths import normalize_path as normalize_path

MARKER_TIMEOUT_SECONDS = 0.5  # one op's marker search
BATCH_REGEX_SECONDS = 2.0  # every marker compile and search of one batch together
# compiled markers kept: at most this many, and at most this much expansion (markers.check)
# together; measured ~185 bytes of compiled pattern per element, so about 6 MB at most
MARKER_CACHE_SIZE = 128
MARKER_CACHE_WEIGHT = 32_000
MARK_BYTES = 2048  # FastFile: a line-start mark about every 4 KB of counted text
_META = set(".^$*+?{}[]\\|()")

# error codes (the part before ':' in an error message)
FILE_NOT_FOUND = "FILE_NOT_FOUND"
MARKER_NOT_FOUND = "MARKER_NOT_FOUND"
MARKER_INVALID = "MARKER_INVALID"
MARKER_TIMEOUT = "MARKER_TIMEOUT"
REGEX_BUDGET_EXCEEDED = "REGEX_BUDGET_EXCEEDED"
SEARCH_NOT_FOUND = "SEARCH_NOT_FOUND"
SEARCH_AMBIGUOUS = "SEARCH_AMBIGUOUS"
LINE_OUT_OF_RANGE = "LINE_OUT_OF_RANGE"
SHA256_MISMATCH = "SHA256_MISMATCH"
INVALID_OPERATION = "INVALID_OPERATION"

OPS = ("replace-block", "insert-before", "insert-after", "append", "prepend")
ANCHORED = ("replace-block", "insert-before", "insert-after")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class OpError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


# --- text as lines ---------------------------------------------------------------

def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")  # the fast path; surrogateescape only when needed
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


# str.splitlines also splits at these; a text without them (and without a lone \r) splits
# the same way with splitlines (C speed) as with our "\n"-only rule
_OTHER_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _plain_breaks(text: str) -> bool:
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return False
    return not any(ch in text for ch in _OTHER_BREAKS)


def split_lines(text: str) -> list[str]:
    """Lines with their own endings; the last has none when the text has no final newline.
    Only "\n" ends a line ("\r\n" is a line ending in "\r\n"; a lone "\r" is text)."""
    if not text:
        return []
    if _plain_breaks(text):
        return text.splitlines(keepends=True)
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _strip(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    return line


class TextFile:
    """A file being patched: its lines, each with its own ending except, when the file has no
    final newline, the last. After every operation the state is exactly what parsing the
    rendered text would give, so an op sees the same file whether it runs in a batch or alone."""

    __slots__ = ("lines", "eol", "no_final_newline", "_text")

    def __init__(self, text: str):
        self.lines = split_lines(text)
        self.no_final_newline = bool(self.lines) and not self.lines[-1].endswith("\n")
        self._text: str | None = text
        self._detect_eol()

    def _detect_eol(self) -> None:
        """Inserted lines take the ending of the file's first line ("\n" when it has none)."""
        first = self.lines[0] if self.lines else ""
        self.eol = "\r\n" if first.endswith("\r\n") else "\n"

    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self.lines)
        return self._text

    render = text

    def opened(self) -> tuple[list[str], str | None]:
        """The lines (the same list: operations splice it in place, after their anchor resolved,
        so a failing op never touches it) with the last one given an ending so whole lines can
        follow it, and that line as it was (None when it had an ending already)."""
        lines = self.lines
        if self.no_final_newline and lines:
            last = lines[-1]
            lines[-1] = last + self.eol
            return lines, last
        return lines, None

    def set_lines(self, lines: list[str], open_last: str | None = None, opened: str | None = None) -> None:
        """The spliced lines; a file without a final newline keeps having none."""
        if not lines:
            self.no_final_newline = False
        elif self.no_final_newline:
            last = lines[-1]
            if opened is not None and last == opened and open_last is not None:
                lines[-1] = open_last  # the original last line, exactly (a trailing "\r" stays)
            elif last.endswith("\r\n"):
                lines[-1] = last[:-2]
            elif last.endswith("\n"):
                lines[-1] = last[:-1]
        self.lines = lines
        self._text = None
        self._detect_eol()

    def as_lines(self, content: str) -> list[str]:
        """`content` as whole lines in this file's line ending, with a final newline."""
        if not content:
            return []
        body = content.replace("\r\n", "\n")
        if not body.endswith("\n"):
            body += "\n"
        if self.eol != "\n":
            body = body.replace("\n", self.eol)
        return split_lines(body)

    def replace_text(self, sel: "Selection", content: str) -> None:
        """Replace the exact text sel.start..sel.end by `content`, re-splitting only the lines the
        match touches."""
        lines = self.lines
        offset = sel.line_offset
        segment = "".join(lines[sel.first:sel.last + 1])
        segment = segment[:sel.start - offset] + content + segment[sel.end - offset:]
        rest = lines[sel.last + 1:]
        new = split_lines(segment)
        if new and rest and not new[-1].endswith("\n"):
            new[-1] += rest[0]  # the match ate the segment's last ending: it joins the next line
            rest = rest[1:]
        elif not new and rest and sel.first > 0 and not lines[sel.first - 1].endswith("\n"):
            pass  # cannot happen: every line but the last has an ending
        out = lines[:sel.first] + new + rest
        self.no_final_newline = bool(out) and not out[-1].endswith("\n")
        self.lines = out
        self._text = None
        self._detect_eol()


# --- anchors ----------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    first: int  # 0-based line index, inclusive
    last: int   # 0-based, inclusive
    matched_by: str
    start: int = -1  # search: character span in the rendered text
    end: int = -1
    line_offset: int = 0  # search: where line `first` starts in the rendered text


def _anchor(op: Mapping[str, Any]) -> tuple[str, Any]:
    anchor = op.get("anchor") or {}
    given = [(k, anchor[k]) for k in ("marker", "lines", "line", "search") if anchor.get(k) is not None]
    if len(given) != 1:
        raise OpError(INVALID_OPERATION, "an anchor has exactly one of marker, lines, line, search")
    return given[0]


class RegexBudget:
    """The regex time one batch may spend: every marker compile and search of the batch draws
    on it, each search also stopping at `per_op` seconds."""

    __slots__ = ("seconds", "per_op", "spent")

    def __init__(self, seconds: float = BATCH_REGEX_SECONDS, per_op: float = MARKER_TIMEOUT_SECONDS):
        self.seconds, self.per_op, self.spent = seconds, per_op, 0.0

    def remaining(self) -> float:
        return self.seconds - self.spent

    def exceeded(self) -> OpError:
        return OpError(REGEX_BUDGET_EXCEEDED, f"the batch's regex time budget ({self.seconds:g}s for all "
                                              f"its markers) is spent")


def _budget(timeout: "float | RegexBudget") -> RegexBudget:
    return timeout if isinstance(timeout, RegexBudget) else RegexBudget(timeout, timeout)


class _MarkerCache:
    """Compiled markers, least recently used first out: at most `size` of them and at most
    `weight` expansion (markers.check) together. Only markers that passed markers.check are
    compiled, so each entry is bounded too; a refused or invalid marker is never kept."""

    def __init__(self, size: int, weight: int):
        self.size, self.weight, self.held, self.compiles = size, weight, 0, 0
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()  # the local stack serves requests on threads

    def get(self, marker: str) -> Any:
        with self._lock:
            found = self._items.get(marker)
            if found is None:
                return None
            self._items.move_to_end(marker)
            return found[0]

    def put(self, marker: str, pattern: Any, weight: int) -> None:
        with self._lock:
            old = self._items.pop(marker, None)
            if old is not None:
                self.held -= old[1]
            self._items[marker] = (pattern, weight)
            self.held += weight
            self.compiles += 1
            while len(self._items) > self.size or (self.held > self.weight and len(self._items) > 1):
                _, (_, dropped) = self._items.popitem(last=False)
                self.held -= dropped
            purge = self.compiles % self.size == 0
        if purge:
            regex.purge()  # even uncached, the regex module notes each pattern's locale use, unbounded

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.held = 0


_compiled = _MarkerCache(MARKER_CACHE_SIZE, MARKER_CACHE_WEIGHT)


def _literal(marker: str) -> bool:
    """A marker without regex syntax (the usual ###NAME### template marker): found by substring
    search, never compiled."""
    return not _META.intersection(marker) and "\n" not in marker and "\r" not in marker


def check_marker(marker: str) -> str | None:
    """Why the marker cannot be used (out of bounds, or not a valid regex), or None. Compiles a
    regex marker (into the cache) when it is within bounds: the submit path's check, so a batch
    with a bad marker is refused before it is queued."""
    try:
        if _literal(marker):
            markers.check(marker)
            return None
        compile_marker(marker)
    except markers.MarkerRefused as e:
        return f"marker {e}"
    except OpError as e:
        return str(e).split(": ", 1)[1]
    return None


def compile_marker(marker: str, budget: RegexBudget | None = None) -> Any:
    """The compiled marker (cached); OpError MARKER_INVALID when it is out of bounds or invalid.
    The compile time is charged to `budget`."""
    found = _compiled.get(marker)
    if found is not None:
        return found
    try:
        weight = markers.check(marker)
    except markers.MarkerRefused as e:
        raise OpError(MARKER_INVALID, f"marker {e}") from None
    started = time.monotonic()
    try:
        # not into the regex module's own cache (500 patterns, kept until it fills: 200+ MB
        # of compile bombs stayed there); ours above is the only one
        found = regex.compile(marker, cache_pattern=False)
    except Exception as e:  # noqa: BLE001 - regex.error, and RecursionError/OverflowError on odd input
        raise OpError(MARKER_INVALID, f"marker is not a valid regex: {str(e)[:200]}") from None
    finally:
        if budget is not None:
            budget.spent += time.monotonic() - started
    _compiled.put(marker, found, weight)
    return found


def compiled_markers() -> list[str]:
    """The markers held compiled, least recently used first (tests, diagnostics)."""
    return _compiled.keys()


def _marker_lines(f: TextFile, marker: str, timeout: "float | RegexBudget") -> list[int]:
    """Indexes of the first two lines the marker matches."""
    lines = f.lines
    if _literal(marker):
        # A literal marker (the usual ###NAME### template marker): a substring search of the
        # whole text finds the lines the per-line regex search would, without a call per line.
        found: list[int] = []
        text, pos, prev_at = f.text(), 0, 0
        while len(found) < 2:
            at = text.find(marker, pos)
            if at < 0:
                break
            index = text.count("\n", 0, at) if not found else found[-1] + text.count("\n", prev_at, at)
            found.append(index)
            prev_at = at
            pos = text.find("\n", at)
            if pos < 0:
                break
            pos += 1
        return found
    budget = _budget(timeout)
    pattern = compile_marker(marker, budget)
    if budget.remaining() <= 0:
        raise budget.exceeded()
    limit = min(budget.per_op, budget.remaining())
    started = time.monotonic()
    deadline = started + limit
    found = []
    try:
        for index, line in enumerate(lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if pattern.search(_strip(line), timeout=remaining) is not None:
                found.append(index)
                if len(found) == 2:
                    break
    except TimeoutError:
        if limit < budget.per_op:
            raise budget.exceeded() from None
        raise OpError(MARKER_TIMEOUT, f"marker matching took over {budget.per_op:g}s") from None
    finally:
        budget.spent += time.monotonic() - started
    return found


def select(f: TextFile, op: Mapping[str, Any], timeout: "float | RegexBudget" = MARKER_TIMEOUT_SECONDS) -> Selection:
    kind, value = _anchor(op)
    count = len(f.lines)
    if kind == "marker":
        hits = _marker_lines(f, value, timeout)
        if not hits:
            raise OpError(MARKER_NOT_FOUND, f"no line matches marker {value!r}")
        return Selection(hits[0], hits[-1], "marker")
    if kind == "lines":
        start, end = int(value["start"]), int(value["end"])
        if start < 1 or end < start or end > count:
            raise OpError(LINE_OUT_OF_RANGE, f"lines {start}..{end} outside 1..{count}")
        return Selection(start - 1, end - 1, "lines")
    if kind == "line":
        n = int(value)
        if n < 1 or n > count:
            raise OpError(LINE_OUT_OF_RANGE, f"line {n} outside 1..{count}")
        return Selection(n - 1, n - 1, "line")
    text = f.text()
    at = text.find(value)
    if at < 0:
        raise OpError(SEARCH_NOT_FOUND, "search text found 0 times (must be exactly once)")
    if text.find(value, at + 1) >= 0:
        n = max(2, text.count(value))
        raise OpError(SEARCH_AMBIGUOUS, f"search text found {n} times (must be exactly once)")
    end = at + len(value)
    first = text.count("\n", 0, at)
    last = first + value.count("\n", 0, len(value) - 1)
    line_offset = text.rfind("\n", 0, at) + 1
    return Selection(first, last, "search", at, end, line_offset)



# --- the fast path: a file as one string and pending line edits ------------------

class _Fallback(Exception):
    """The fast path cannot decide this op exactly; the line-list path (TextFile) takes it."""


class FastFile:
    """A file ending with a newline, kept as its text (`base`) plus pending edits that replace
    whole lines: (start, end, body, first_line, end_line) with start/end offsets of line starts in
    `base`, sorted and never touching each other. Nothing is split into lines: line numbers are
    found with str.count / str.find from known line starts (C speed), and the text is spliced
    once, when it is needed (a search or marker op, or the end). Anything unusual (a line inside
    an edit's new lines, touching edits, a regex marker, an error) goes to the TextFile path,
    which defines the semantics; both give the same bytes."""

    __slots__ = ("base", "edits", "mark_lines", "mark_offs", "_eol")
    # str here, bytes in FastBytes: the same code runs on either (Any, as a TypeVar'd class would
    # cost a generic parameter on every use for no caller's benefit).
    NL: Any = "\n"
    CR: Any = "\r"

    def __init__(self, text: Any):
        self.base: Any = text
        self.edits: list[tuple[int, int, str, int, int]] = []
        self.mark_lines: list[int] = [0]  # marks: line index and offset of its start, in base
        self.mark_offs: list[int] = [0]
        self._eol: str | None = None

    def pieces(self) -> list[Any]:
        """The current text in order, unjoined: the stretches of base between the pending edits
        (memoryview slices of bytes: no copies) and the edits' new lines; no empty piece."""
        base, parts, pos = self.base, [], 0
        if isinstance(base, bytes):
            base = memoryview(base)
        for start, end, body, _, _ in self.edits:
            if start > pos:
                parts.append(base[pos:start])
            if body:
                parts.append(body)
            pos = end
        if pos < len(base):
            parts.append(base[pos:])
        return parts

    def text(self) -> Any:  # str, or bytes in FastBytes
        if self.edits:
            text = self.NL[:0].join(self.pieces())  # join copies each byte once
            first = self.edits[0][0]
            self._forget_marks(first)
            self.base, self.edits = text, []
        return self.base

    render = text

    def eol(self) -> str:
        if self._eol is None:
            if self.edits and self.edits[0][0] == 0:
                self.text()
            base = self.base
            nl = base.find(self.NL)
            self._eol = "\r\n" if nl > 0 and base[nl - 1:nl] == self.CR else "\n"
        return self._eol

    def body(self, content: str) -> str:
        if not content:
            empty: str = self.NL[:0]  # "" here, b"" for FastBytes: the class is written for both
            return empty
        body = content.replace("\r\n", "\n")
        if not body.endswith("\n"):
            body += "\n"
        eol = self.eol()
        return self.enc(body.replace("\n", eol) if eol != "\n" else body)

    def enc(self, value: str) -> str:
        return value

    def as_text_file(self) -> "TextFile":
        return TextFile(self.text())

    # line starts in base: marks (line index, offset of its start) every MARK_BYTES or so from the
    # start of base up to a frontier, each newline counted once; a line is found from the mark
    # at or before it (at most one chunk of lines to step over, with find), an offset's line from
    # the mark at or before it (at most one chunk to count)
    def _extend(self, line: int, offset: int) -> None:
        """Count on from the frontier until it passes base line `line` or offset `offset`."""
        base, nl, lines, offs = self.base, self.NL, self.mark_lines, self.mark_offs
        at, pos, size = lines[-1], offs[-1], len(base)
        while (at < line or pos <= offset) and pos < size:
            end = pos + MARK_BYTES
            if end >= size:
                end = size
            else:  # on to the next line start (memchr), so every mark is one
                end = base.find(nl, end) + 1 or size
            at += base.count(nl, pos, end)
            pos = end
            lines.append(at)
            offs.append(pos)

    def _start(self, k: int) -> int | None:
        """Offset of the start of base line k (len(base) for the line after the last); None past it."""
        lines = self.mark_lines
        if k > lines[-1]:
            self._extend(k, -1)
        i = bisect_right(lines, k) - 1
        at, pos = lines[i], self.mark_offs[i]
        find, nl = self.base.find, self.NL
        while at < k:
            end = find(nl, pos)
            if end < 0:
                return None
            pos, at = end + 1, at + 1
        return pos

    def _line_of(self, offset: int) -> tuple[int, int]:
        """(index, start offset) of the base line holding `offset`."""
        offs = self.mark_offs
        if offset >= offs[-1]:
            self._extend(-1, offset)
        i = bisect_right(offs, offset) - 1
        pos = offs[i]
        base = self.base
        last = base.rfind(self.NL, pos, offset)
        if last < 0:
            return self.mark_lines[i], pos
        return self.mark_lines[i] + base.count(self.NL, pos, last + 1), last + 1

    def _forget_marks(self, offset: int) -> None:
        """Base changes from `offset` on: marks past it no longer hold."""
        offs = self.mark_offs
        keep = bisect_right(offs, offset)
        del offs[keep:], self.mark_lines[keep:]

    def _base_line(self, n: int) -> int:
        """The base line that is current line n; _Fallback when n is one of an edit's new lines."""
        delta = 0
        for _, _, body, first, end in self.edits:
            if n < first + delta or first < 0:  # first < 0: an append, after every base line
                break
            added = body.count(self.NL)
            if n < first + delta + added:
                raise _Fallback
            delta += added - (end - first)
        return n - delta

    def _add(self, start: int, end: int, body: str, first: int, last_end: int) -> None:
        edits = self.edits
        index = 0
        for index, edit in enumerate(edits):  # noqa: B007
            if edit[1] >= start and edit[0] <= end:
                raise _Fallback  # touching another edit: which comes first is the TextFile's call
            if edit[0] > end:
                break
        else:
            index = len(edits)
        if start != end or body:
            edits.insert(index, (start, end, body, first, last_end))
        if start == 0:
            self._eol = None

    def apply(self, op: Mapping[str, Any], timeout: "float | RegexBudget") -> str | None:
        name, content = op.get("op"), op.get("content") or ""
        body = self.body(content)  # first: finding the line ending may splice the edits
        if name == "append":
            size = len(self.base)
            if self.edits and self.edits[-1][1] >= size:
                self.text()
                size = len(self.base)
            if body:
                self.edits.append((size, size, body, -1, -1))  # past every line: maps nothing
            return None
        if name == "prepend":
            self._add(0, 0, body, 0, 0)
            return None
        if name not in ANCHORED:
            raise _Fallback
        kind, value = _anchor(op)
        if kind in ("line", "lines"):
            if kind == "line":
                first = last = int(value)
            else:
                first, last = int(value["start"]), int(value["end"])
            if first < 1 or last < first:
                raise _Fallback
            bf, bl = self._base_line(first - 1), self._base_line(last - 1)
            if bl - bf != last - first:
                raise _Fallback
            start, end = self._start(bf), self._start(bl + 1)
            if start is None or end is None or start >= len(self.base):
                raise _Fallback
            self._line_edit(name, start, end, bf, bl + 1, body)
            return kind
        if kind == "search":
            if not value:
                raise _Fallback
            if "\n" in value[:-1]:
                self.text()  # it could span an edit's boundary: search the spliced text
            value = self.enc(value)
            hits = self._find(value, 0, 2, overlapping=True)
            if len(hits) != 1 or hits[0] < 0:
                raise _Fallback  # none, several, or inside an edit's new lines: the TextFile says
            base, at = self.base, hits[0]
            end = at + len(value)
            first, start = self._line_of(at)
            stop = base.find(self.NL, end - 1) + 1
            last_end = first + base.count(self.NL, start, stop)
            if name == "replace-block":
                # the lines the match touches, with the match replaced: whole lines again when
                # they still end with a newline (or vanish); otherwise splice the text now
                content = self.enc(content)
                lines = base[start:at] + content + base[end:stop]
                if not lines or lines.endswith(self.NL):
                    self._add(start, stop, lines, first, last_end)
                else:
                    # the match ate its line's ending: the replaced line runs into the next, so it
                    # is no whole-line edit; splice it in now, together with the pending edits
                    self._splice(start, stop, lines)
                return "search"
            self._line_edit(name, start, stop, first, last_end, body)
            return "search"
        if _META.intersection(value) or "\n" in value or "\r" in value or not value:
            raise _Fallback
        value = self.enc(value)
        hits = self._find(value, 0, 1)
        if not hits or hits[0] < 0:
            raise _Fallback
        base, at = self.base, hits[0]
        after = base.find(self.NL, at) + 1
        second = self._find(value, after, 1)
        if second and second[0] < 0:
            raise _Fallback
        last_at = second[0] if second else at
        first, start = self._line_of(at)
        last_line, _ = self._line_of(last_at)
        stop = base.find(self.NL, last_at) + 1
        self._line_edit(name, start, stop, first, last_line + 1, body)
        return "marker"

    def _find(self, value: str, offset: int, limit: int, overlapping: bool = False) -> list[int]:
        """Up to `limit` occurrences of `value` (without a newline before its last character) in
        the current text from base offset `offset` on: base offsets, or -1 for one in an edit's
        new lines. Every edit starts and ends at a line start, so such a value never spans one."""
        base, pos = self.base, offset
        found: list[int] = []
        step = 1 if overlapping else len(value)
        for start, end, body, _, _ in self.edits:
            if end < offset:
                continue
            if start >= pos and _occurrences(base, value, pos, start, step, limit, found):
                return found
            if body.find(value) >= 0 and start >= offset:
                found.append(-1)
                if len(found) >= limit:
                    return found
                if body.find(value, body.find(value) + step) >= 0:
                    found.append(-1)
                    return found
            pos = max(pos, end)
        _occurrences(base, value, pos, len(base), step, limit, found)
        return found

    def _splice(self, start: int, stop: int, new: Any) -> None:
        """Replace base[start:stop] by `new` (which need not end with a newline) and splice it
        with every pending edit into a new base, all of them in base offsets: offsets found in
        base hold only until base is spliced. start..stop are the lines of a hit _find made in base
        between the pending edits, whose every boundary is a line start: no edit overlaps them
        (one that ends at start or begins at stop sorts to its side)."""
        insort(self.edits, (start, stop, new, -1, -1), key=lambda edit: (edit[0], edit[1]))
        self.text()  # apply_batch moves it to a TextFile when it no longer ends with a newline
        self._eol = None

    def _line_edit(self, name: str, start: int, stop: int, first: int, last_end: int, body: str) -> None:
        if name == "replace-block":
            self._add(start, stop, body, first, last_end)
        elif name == "insert-before":
            self._add(start, start, body, first, first)
        else:
            self._add(stop, stop, body, last_end, last_end)


class FastBytes(FastFile):
    """FastFile on the bytes of an ASCII file: no decoding or encoding of the text. Every value
    and content is UTF-8 (strict), so the file stays valid UTF-8, where a byte search finds
    exactly what a character search does."""

    __slots__ = ()
    NL, CR = b"\n", b"\r"

    def enc(self, value: str) -> bytes:  # type: ignore[override]
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Fallback from None

    def as_text_file(self) -> "TextFile":
        return TextFile(decode(self.text()))


# A long needle is looked for by its first PROBE characters, each hit checked in full: the
# substring search (two-way with a Horspool skip) skips at most a needle's length per step
# anyway, and a long needle with a repetitive tail (a line ending in a run of one character)
# makes it verify at nearly every position (measured: a 74-character line, 0.56 ms per
# 330 KB file; its first 32 characters, 0.26 ms). A probe that keeps hitting without a match
# (a common prefix such as indentation) hands over to the whole needle after PROBE_MISSES.
PROBE, PROBE_MISSES = 32, 8


# The substring search of the C library (memmem) where there is one: glibc's (2.29 on) skips
# by the hash of the haystack's byte pairs, several bytes per step where CPython's bytes.find
# steps one byte at a time through text whose bytes are mostly in the needle's 64-class filter
# (measured on 330 KB of source-like text: 74 us against 228 us for two full scans). The
# answers are the same (tests/unit/test_patch_engine_probe.py); bytes.find where ctypes cannot
# reach a memmem (Windows) and for str haystacks.
_MEMMEM: Any = None
_MEMMEM_LOADED = False


def _load_memmem() -> Any:
    """(memmem, ctypes), or None; looked up once (a race only looks it up twice)."""
    global _MEMMEM, _MEMMEM_LOADED
    if not _MEMMEM_LOADED:
        found = None
        try:
            import ctypes  # here, not at import: only a search pays for it

            function = ctypes.CDLL(None).memmem
            function.restype = ctypes.c_void_p
            function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
            probe = b"xy"
            address = ctypes.cast(ctypes.c_char_p(probe), ctypes.c_void_p).value or 0
            if function(address, 2, b"y", 1) == address + 1:  # else not the memmem we know
                found = (function, ctypes)
        except (OSError, AttributeError, TypeError):
            pass
        _MEMMEM, _MEMMEM_LOADED = found, True
    return _MEMMEM


def finder(hay: Any) -> Callable[[Any, int, int], int]:
    """hay.find(needle, pos, stop) for a non-empty needle, with the C library's memmem for bytes."""
    loaded = _load_memmem() if isinstance(hay, bytes) else None
    if loaded is None:
        python_find: Callable[[Any, int, int], int] = hay.find
        return python_find
    memmem, ctypes = loaded
    # c_char_p of a bytes object points at the object's own buffer (no copy); `find` keeps a
    # reference to `hay` (find.hay below), so the address stays valid as long as `find` can be called
    address = ctypes.cast(ctypes.c_char_p(hay), ctypes.c_void_p).value
    size = len(hay)

    def find(needle: bytes, pos: int, stop: int) -> int:
        if stop > size:
            stop = size
        length = len(needle)
        if stop - pos < length:
            return -1
        hit = memmem(address + pos, stop - pos, needle, length)
        return -1 if hit is None else hit - address

    find.hay = hay  # type: ignore[attr-defined]
    return find


def _occurrences(hay: Any, value: Any, pos: int, stop: int, step: int, limit: int, found: list[int]) -> bool:
    """Append the offsets of `value` in hay[pos:stop] (each next one searched from the last plus
    `step`) to `found`; True when `found` reached `limit`."""
    find = finder(hay)
    if len(value) > PROBE:
        probe, misses = value[:PROBE], 0
        at = find(probe, pos, stop)
        while at >= 0:
            if hay.startswith(value, at, stop):
                found.append(at)
                if len(found) >= limit:
                    return True
                pos = at + step
            else:
                misses += 1
                pos = at + 1
                if misses >= PROBE_MISSES:
                    break
            at = find(probe, pos, stop)
        else:
            return False
    at = find(value, pos, stop)
    while at >= 0:
        found.append(at)
        if len(found) >= limit:
            return True
        at = find(value, at + step, stop)
    return False


# --- operations -------------------------------------------------------------------

def apply_op(f: TextFile, op: Mapping[str, Any],
             timeout: "float | RegexBudget" = MARKER_TIMEOUT_SECONDS) -> str | None:
    """Apply one operation to a file in place; returns matchedBy (None for append/prepend)."""
    name, content = op.get("op"), op.get("content") or ""
    if name in ("append", "prepend"):
        added = f.as_lines(content)
        lines, original_last = f.opened()
        opened_last = lines[-1] if original_last is not None else None
        if name == "append":
            lines.extend(added)
        else:
            lines[0:0] = added
        f.set_lines(lines, original_last, opened_last)
        return None
    if name not in ANCHORED:
        raise OpError(INVALID_OPERATION, f"unknown op {name!r}")
    sel = select(f, op, timeout)
    if name == "replace-block" and sel.matched_by == "search":
        f.replace_text(sel, content)
        return sel.matched_by
    lines, original_last = f.opened()
    opened_last = lines[-1] if original_last is not None else None
    added = f.as_lines(content)
    if name == "replace-block":
        lines[sel.first:sel.last + 1] = added
    elif name == "insert-before":
        lines[sel.first:sel.first] = added
    else:
        lines[sel.last + 1:sel.last + 1] = added
    f.set_lines(lines, original_last, opened_last)
    return sel.matched_by


@dataclass
class Result:
    index: int
    file: str
    op: str
    ok: bool
    matched_by: str | None = None
    error: str | None = None
    code: str | None = None


@dataclass
class Outcome:
    results: list[Result]
    files: dict[str, bytes] = field(default_factory=dict)  # new content of changed files (only when ok)
    regex_seconds: float = 0.0  # spent compiling and matching marker regexes

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def drift(self) -> bool:
        return any(r.code == SHA256_MISMATCH for r in self.results)


def _get(op: Any, key: str, alias: str | None = None) -> Any:
    if isinstance(op, Mapping):
        return op.get(key, op.get(alias) if alias else None)
    return getattr(op, key, None)


def as_dict(op: Any) -> dict[str, Any]:
    """An operation as the engine reads it (accepts the pydantic models and plain dicts)."""
    if isinstance(op, Mapping):
        anchor = op.get("anchor")
        return {"op": op.get("op"), "file": op.get("file"), "content": op.get("content") or "",
                "anchor": dict(anchor) if anchor else None,
                "expectedSha256": op.get("expectedSha256", op.get("expected_sha256"))}
    dumped = op.model_dump(by_alias=True, exclude_none=True)
    return as_dict(dumped)


def apply_batch(ops: Iterable[Any], read: Callable[[str], bytes | None],
                timeout: float = MARKER_TIMEOUT_SECONDS,
                on_file: Callable[[str, list[Any]], None] | None = None,
                regex_seconds: float = BATCH_REGEX_SECONDS) -> Outcome:
    """Apply every op in order to the files `read` returns; all or nothing (see module doc).
    Marker regexes get `timeout` seconds per op and `regex_seconds` for the whole batch.

    on_file(path, buffers), when given, receives each changed file as soon as the batch's last
    op on it has applied (while no op has failed), instead of `outcome.files`: its new content
    as a list of buffers (bytes / memoryview slices of the original, valid during the call), in
    order, to write with os.writev or join. The engine then holds one file at a time, not the
    whole batch, and never copies a file's unchanged parts. What it receives is tentative until
    the batch is done: a later op can still fail it (outcome.ok False), and the caller drops
    what it got (a committer writes temporary files as they come and renames them only when
    outcome.ok)."""
    ops = [as_dict(o) for o in ops]
    budget = RegexBudget(regex_seconds, timeout)
    before: dict[str, bytes | None] = {}
    working: dict[str, FastFile | TextFile | None] = {}
    digests: dict[str, str | None] = {}  # sha256 of each file before the batch, hashed once
    results: list[Result] = []
    normalized: dict[str, str] = {}
    paths: list[str | PathError] = []
    for op in ops:
        try:
            paths.append(normalized.get(op["file"]) or normalized.setdefault(op["file"], normalize_path(op["file"])))
        except PathError as e:
            paths.append(e)
    last_op = {path: index for index, path in enumerate(paths) if isinstance(path, str)} if on_file else {}
    failed = False
    fast: FastFile | None = None
    for index, op in enumerate(ops):
        name, path = op["op"], paths[index]
        if isinstance(path, PathError):
            results.append(Result(index, str(op["file"]), name, False, None, f"{INVALID_OPERATION}: file {path}",
                                  INVALID_OPERATION))
            failed = True
            continue
        if path not in before:
            data = before[path] = read(path)
            working[path] = _open(data) if data is not None else None
            data = None  # held by `before` only: see the end of the loop
        try:
            expected = op.get("expectedSha256")
            if expected:
                if path not in digests:
                    original = before[path]
                    digests[path] = sha256(original) if original is not None else None
                actual = digests[path]
                if actual != expected.lower():
                    raise OpError(SHA256_MISMATCH, f"{path} has sha256 {actual or 'none (missing)'}, "
                                                   f"expected {expected.lower()}")
            f = working[path]
            if f is None:
                if name not in ("append", "prepend"):
                    raise OpError(FILE_NOT_FOUND, f"{path} does not exist")
                f = TextFile("")
            # ops on one file see the previous result; a failing op fails before it changes
            # anything (its anchor is resolved first), so the file stays as it was
            matched_by: str | None = None
            applied = False
            if isinstance(f, FastFile):
                fast = f
                try:
                    matched_by, applied = fast.apply(op, budget), True
                    if not fast.edits and not fast.base.endswith(fast.NL):
                        f = fast.as_text_file()
                except _Fallback:
                    f = fast.as_text_file()
            if not applied:
                assert isinstance(f, TextFile)
                matched_by = apply_op(f, op, budget)
            working[path] = f
            results.append(Result(index, path, name, True, matched_by))
        except OpError as e:
            matched = _anchor_kind(op)
            results.append(Result(index, path, name, False, matched, str(e), e.code))
            failed = True
        if on_file is not None and not failed and last_op[path] == index:
            buffers = _finish_buffers(working, before, path)
            if buffers is not None:
                on_file(path, buffers)
            # nothing here may hold the file now: the next file's read can then take its memory
            # (glibc hands a freed block back out), where a block still held makes the heap grow
            # into fresh pages, a page fault per 4 KB (measured: 3,242 per 100 files read)
            del buffers, f
            fast = None
    outcome = Outcome(results, regex_seconds=budget.spent)
    if outcome.ok and on_file is None:
        for path in list(working):
            data = _finish(working, before, path)
            if data is not None:
                outcome.files[path] = data
    return outcome


def _finish(working: dict[str, "FastFile | TextFile | None"], before: dict[str, bytes | None],
            path: str) -> bytes | None:
    """A file's new bytes (None when unchanged or never there), letting go of its original: the
    allocator can then give that memory to the next file's new bytes, where holding both
    would need fresh memory (a page fault per 4 KB) for every file."""
    f, original = working.pop(path), before.pop(path)
    if f is None:
        return None
    rendered = f.render()
    del f
    data = rendered if isinstance(rendered, bytes) else encode(rendered)
    del rendered
    if original is None or data != original:
        return data
    return None


def _finish_buffers(working: dict[str, "FastFile | TextFile | None"], before: dict[str, bytes | None],
                    path: str) -> list[Any] | None:
    """A file's new content as buffers (None when unchanged or never there): for an ASCII file,
    slices of its original between the pending edits and the edits' new lines, so no new copy
    of the file is made (nor fresh memory taken for it)."""
    f, original = working[path], before[path]
    if not isinstance(f, FastBytes) or not f.edits:
        data = _finish(working, before, path)
        return None if data is None else [data]
    del working[path], before[path]
    buffers = f.pieces()
    if original is not None and sum(len(b) for b in buffers) == len(original):
        whole, at = memoryview(original), 0
        for b in buffers:
            if whole[at:at + len(b)] != b:
                break
            at += len(b)
        else:
            return None  # the edits gave back the same bytes
    return buffers


def _open(data: bytes) -> "FastFile | TextFile":
    if data.isascii() and data.endswith(b"\n"):
        return FastBytes(data)
    text = decode(data)
    return FastFile(text) if text.endswith("\n") else TextFile(text)


def _anchor_kind(op: Mapping[str, Any]) -> str | None:
    anchor = op.get("anchor") or {}
    return next((k for k in ("marker", "lines", "line", "search") if anchor.get(k) is not None), None)
