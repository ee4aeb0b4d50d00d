"""Marker regexes: what a marker may be, before it reaches the regex compiler (pure; the engine,
the submit path and the agent CLI share it through the engine).

A marker is a line locator written by a tenant, so every marker is checked by a scanner before
it is compiled (the `regex` module's compiler has no time or size limit and no guard against
deep nesting):

- length at most MAX_LENGTH characters;
- groups nested at most MAX_DEPTH deep (`(?:` x 200 crashes the compiler with a RecursionError);
- every counted repeat `{m}`, `{m,}`, `{m,n}` at most MAX_REPEAT, and the pattern's expansion
  (its size with counted repeats unrolled, alternatives added up, which is what the compiler
  builds and keeps) at most MAX_EXPANSION (`(?:a{1000}){1000}` is 1,000,000: 200+ MB compiled);
- no repeat over a group that can match in more than one way: a group holding an alternation
  or a variable repeat (`*`, `+`, `?`, `{m,n}`) may not itself be repeated (`(a|a)+`, `(a+)+`,
  `(\\w*)*`, `(a|b){30}`): those are the shapes whose backtracking grows exponentially with
  the line. What is left can still be slow (polynomial: `a*a*a*a*b`), which the batch's regex
  time budget bounds (engine.RegexBudget);
- no verbose flag (`(?x)`): a marker locates one line, and verbose comments would hide the
  pattern's shape from this scanner; no unescaped `[` inside a character class (V0 and V1 read
  it differently).

The scanner over-counts where it is unsure (an escape's braces, a conditional's condition),
so it errs towards refusing; it never under-counts a group or a repeat.
"""
from __future__ import annotations

import re

MAX_LENGTH = 1000
MAX_DEPTH = 20
MAX_REPEAT = 1000
MAX_EXPANSION = 2000

_COUNTED = re.compile(r"\{(\d*)(,?)(\d*)\}")
_FLAGS = re.compile(r"\(\?[-a-zA-Z0-9]*[:)]")
_POSIX_CLASS = re.compile(r"\[:\^?[a-zA-Z_]+:\]")
_BRACED_ESCAPES = "pPNxuUgkLXo"  # escapes that may carry {...} or <...>


class MarkerRefused(ValueError):
    """The marker is outside the bounds above (the message says which)."""


class _Group:
    __slots__ = ("branches", "total", "last", "last_ambiguous", "ambiguous")

    def __init__(self) -> None:
        self.branches = 0      # expansion of the finished alternatives
        self.total = 0         # expansion of the current alternative
        self.last = -1         # expansion of the last atom (-1: nothing a quantifier can apply to)
        self.last_ambiguous = False
        self.ambiguous = False  # holds an alternation or a variable repeat

    def atom(self, size: int, ambiguous: bool = False) -> None:
        self.total += size
        self.last, self.last_ambiguous = size, ambiguous
        self.ambiguous = self.ambiguous or ambiguous

    def size(self) -> int:
        return self.branches + self.total


def check(marker: str) -> int:
    """The marker's expansion when it is within bounds; MarkerRefused (saying why) when not.
    Does not compile: a marker that passes can still be invalid regex syntax."""
    if not isinstance(marker, str) or not marker:
        raise MarkerRefused("must be a non-empty string")
    if len(marker) > MAX_LENGTH:
        raise MarkerRefused(f"is {len(marker)} characters long (at most {MAX_LENGTH})")
    stack = [_Group()]
    i, n = 0, len(marker)
    while i < n:
        c = marker[i]
        group = stack[-1]
        if c == "\\":
            i = _escape_end(marker, i)
            group.atom(1)
            continue
        if c == "[":
            end = _class_end(marker, i)
            group.atom(end - i)  # a class's compiled size grows with its text
            i = end
            continue
        if c == "(":
            if marker.startswith("(?#", i):  # a comment: up to the first ')'
                end = marker.find(")", i)
                i = n if end < 0 else end + 1
                continue
            flags = _FLAGS.match(marker, i)
            if flags and "x" in flags.group(0):
                raise MarkerRefused("must not use the verbose flag (?x)")
            stack.append(_Group())
            if len(stack) - 1 > MAX_DEPTH:
                raise MarkerRefused(f"nests groups more than {MAX_DEPTH} deep")
            i += 1
            continue
        if c == ")":
            if len(stack) == 1:
                group.atom(1)  # unbalanced: the compiler refuses it; count it and go on
                i += 1
                continue
            inner = stack.pop()
            stack[-1].atom(inner.size(), inner.ambiguous)
            _bound(stack)
            i += 1
            continue
        if c == "|":
            group.branches += group.total
            group.total, group.last = 0, -1
            group.ambiguous = True
            i += 1
            continue
        if c in "*+?":
            i = _repeat(marker, i + 1, group, low=1 if c == "+" else 0, high=1 if c == "?" else None)
            continue
        if c == "{":
            counted = _COUNTED.match(marker, i)
            if counted and (counted.group(1) or counted.group(3)):
                low = int(counted.group(1) or 0)
                high = int(counted.group(3)) if counted.group(3) else (low if not counted.group(2) else None)
                for value in (low, high):
                    if value is not None and value > MAX_REPEAT:
                        raise MarkerRefused(f"repeats {value} times (a counted repeat is at most {MAX_REPEAT})")
                i = _repeat(marker, counted.end(), group, low=low, high=high)
                _bound(stack)
                continue
        group.atom(1)
        i += 1
    while len(stack) > 1:  # unclosed groups: the compiler refuses them; size them anyway
        inner = stack.pop()
        stack[-1].atom(inner.size(), inner.ambiguous)
    _bound(stack)
    return stack[0].size()


def _bound(stack: list[_Group]) -> None:
    size = sum(g.size() for g in stack)
    if size > MAX_EXPANSION:
        raise MarkerRefused(f"expands to over {MAX_EXPANSION} elements when its counted repeats are "
                            f"unrolled (nested counted repeats multiply)")


def _repeat(marker: str, i: int, group: _Group, low: int, high: int | None) -> int:
    """A quantifier on the group's last atom; returns the index after its lazy/possessive suffix."""
    if i < len(marker) and marker[i] in "?+":
        i += 1
    if group.last < 0:
        return i  # nothing to repeat: the compiler says so
    repeats = high is None or high > 1
    if repeats and group.last_ambiguous:
        raise MarkerRefused("repeats a group that holds an alternation or a variable repeat "
                            "(such as (a|a)+ or (a+)+): its matching time can grow exponentially")
    unrolled = max(1, high if high is not None else low + 1)
    group.total += group.last * (unrolled - 1)
    group.last = group.last * unrolled
    group.last_ambiguous = group.last_ambiguous or (high is None or high != low)
    if high is None or high != low:
        group.ambiguous = True
    return i


def _escape_end(marker: str, i: int) -> int:
    """Index after the escape at i (with its {...} or <...> argument)."""
    if i + 1 >= len(marker):
        return len(marker)
    kind = marker[i + 1]
    j = i + 2
    if kind in _BRACED_ESCAPES and j < len(marker) and marker[j] in "{<":
        close = "}" if marker[j] == "{" else ">"
        end = marker.find(close, j)
        return len(marker) if end < 0 else end + 1
    return j


def _class_end(marker: str, i: int) -> int:
    """Index after the character class opening at i."""
    j, n = i + 1, len(marker)
    if j < n and marker[j] == "^":
        j += 1
    if j < n and marker[j] == "]":
        j += 1  # a leading ']' is a literal
    while j < n:
        c = marker[j]
        if c == "\\":
            j = _escape_end(marker, j)
            continue
        if c == "]":
            return j + 1
        if c == "[":
            posix = _POSIX_CLASS.match(marker, j)
            if posix is None:
                raise MarkerRefused("must escape '[' inside a character class (write \\[)")
            j = posix.end()
            continue
        j += 1
    return n  # unclosed: the compiler refuses it
