"""No secret reaches the local stack's log: API keys, bearer tokens and ?token= values are masked.

Everything the stack prints goes through `RedactingStream` (stdout and stderr
are wrapped before logging is configured or the app is imported), so uvicorn's
access log of `/ws?token=...`, the app's own loggers, Powertools' JSON lines
and tracebacks are all covered by one rule. A minted key keeps its public
keyId (`cpk.<keyId>.[redacted]`) so a log line still says which key it was.
"""
from __future__ import annotations

import io
import os
import re
from typing import Any, TextIO

MASK = "[redacted]"
_PATTERNS = [
    (re.compile(r"\b(cpk\.[0-9A-Za-z]{26}\.)[A-Za-z0-9_\-]+"), r"\g<1>" + MASK),
    (re.compile(r"((?:[?&]|\b)token=)[^&\s\"'\\]+", re.IGNORECASE), r"\g<1>" + MASK),
    (re.compile(r"(\bBearer\s+)[^\s\"',\\]+", re.IGNORECASE), r"\g<1>" + MASK),
    (re.compile(r"((?:authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)(?!Bearer)[^\s\"',\\]+", re.IGNORECASE),
     r"\g<1>" + MASK),
]


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    for secret in extra:
        if secret:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that masks secrets in everything written through it."""

    def __init__(self, inner: TextIO, extra: tuple[str, ...] = ()) -> None:
        self._inner = inner
        self._extra = tuple(s for s in extra if s)

    def write(self, text: str) -> int:
        self._inner.write(redact(text, self._extra))
        return len(text)

    def flush(self) -> None:
        self._inner.flush()

    def fileno(self) -> int:
        return self._inner.fileno()

    def isatty(self) -> bool:
        return self._inner.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._inner, "encoding", "utf-8")

    @property
    def raw_stream(self) -> TextIO:
        """The unmasked stream: only for what must be shown once (a generated root key)."""
        return self._inner


def install() -> None:
    """Wrap sys.stdout and sys.stderr (idempotent); ADMIN_API_KEY is masked whatever its format."""
    import sys

    extra = (os.environ.get("ADMIN_API_KEY", ""),)
    for name in ("stdout", "stderr"):
        stream: Any = getattr(sys, name)
        if not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream, extra))
