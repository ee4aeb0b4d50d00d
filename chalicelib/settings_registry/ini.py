"""INI text as Unreal Engine game servers (ARK: Survival Ascended, ...) write it. Pure.

- `[Section]` headers; section and key names are case-insensitive (compared casefolded).
- `Key=Value`, split at the first `=`, whitespace around both trimmed; the value keeps
  everything else (`;` inside a value is not a comment: ARK values are often
  `(ItemClassString="...",Quantity=(...))`). A value wrapped in double quotes is unquoted.
- Repeated keys are kept, each with its line (UE arrays: OverridePlayerLevelEngramPoints=...
  once per level); UE's array operators `+Key=`, `-Key=`, `.Key=`, `!Key=` name `Key`.
- Full-line comments start with `;`, `#` or `//`; blank lines are skipped; a UTF-8 BOM and
  CRLF line ends are accepted.
- Anything else (a line with no `=`, a key before the first section, an unclosed header)
  is a Problem with its line number; parsing goes on.
"""
from __future__ import annotations

from dataclasses import dataclass

COMMENT_PREFIXES = (";", "#", "//")
ARRAY_OPERATORS = "+-.!"


@dataclass(frozen=True)
class Setting:
    line: int
    section: str
    key: str
    value: str


@dataclass(frozen=True)
class Problem:
    line: int
    section: str
    key: str
    message: str


def parse(text: str) -> tuple[list[Setting], list[Problem]]:
    settings: list[Setting] = []
    problems: list[Problem] = []
    section: str | None = None
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(COMMENT_PREFIXES):
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                problems.append(Problem(number, section or "", "", f"line {number}: malformed section header {_clip(line)}"))
                section = None
                continue
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if key[:1] in ARRAY_OPERATORS and len(key) > 1:
            key = key[1:].strip()
        if not sep or not key:
            problems.append(Problem(number, section or "", (key or line)[:80],
                                    f"line {number}: expected Key=Value, got {_clip(line)}"))
            continue
        if section is None:
            problems.append(Problem(number, "", key, f"line {number}: {key} is outside any [section]"))
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        settings.append(Setting(number, section, key, value))
    return settings, problems


def _clip(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")
