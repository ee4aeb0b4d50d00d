"""Workspace paths: the one rule for every path a tenant names (pure; used by patch operations'
`file`, the workspace file API's `?path=`, and the agent CLI through the engine).

A workspace is checked out on Linux, Windows and macOS machines, so a path must mean one safe
file on each of them. It is refused (PathError, saying why) when, after NFKC normalisation
(which turns look-alikes into what they look like: U+2024 and U+FF0E into '.', U+FF0F into
'/', superscript digits into digits), it:

- is empty, absolute (`/x`, `C:x`), names a directory (`a/`), or has a `..` component;
- holds a backslash (a separator on Windows), a colon (a drive, or an NTFS alternate data
  stream: `a.txt::$DATA`), or one of `< > " | ? *` (invalid on Windows);
- holds a control or format character (Unicode Cc and Cf: NUL, newlines, bidi overrides such
  as U+202E, zero-width joiners that macOS ignores in names), a line or paragraph separator,
  or a lone surrogate;
- has a component ending in '.' or ' ' (Windows drops them: `a.txt.` is `a.txt`);
- has a component that is a Windows device name, whatever its case and extension: CON, PRN,
  AUX, NUL, COM0-9, LPT0-9, CONIN$, CONOUT$ (`nul.txt`, `Com1.log`);
- has a `.git` component (any case) or `git~1` (its 8.3 short name): a checkout would take it
  for the repository's own metadata, as git itself refuses;
- has a component over 255 UTF-8 bytes;
- is not in NFC (composed) form: macOS treats the composed and decomposed spellings of a name
  as one file, so two such paths would collide there.

The path itself is kept as written (after `./` and `//` are folded), not its NFKC form.
"""
from __future__ import annotations

import unicodedata

# A workspace's name (the patches API's `workspace`, the workspace file API's path segment, the
# agent CLI's --workspace): one rule beside the path rule, so both domains take it from here.
WORKSPACE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_COMPONENT_BYTES = 255
_WINDOWS_INVALID = set('<>:"|?*\\')
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_DEVICES = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789"}


class PathError(ValueError):
    pass


def normalize_path(path: str) -> str:
    """A workspace-relative path, normalized (`./a//b` -> `a/b`); PathError for anything that
    could leave the workspace or mean a different (or unsafe) file on another system."""
    if not isinstance(path, str) or not path:
        raise PathError("must be a non-empty relative path")
    if path.isascii():  # the usual case: NFKC leaves ASCII as it is, and its only Cc are these
        if not path.isprintable():
            raise PathError("must not contain control characters")
        folded = path
    else:
        for ch in path:
            if unicodedata.category(ch) in _REFUSED_CATEGORIES:
                name = unicodedata.name(ch, "a control character")
                raise PathError(f"must not contain control or format characters (U+{ord(ch):04X} {name})")
        if unicodedata.normalize("NFC", path) != path:
            raise PathError("must be in Unicode NFC (composed) form: macOS would take it for another name")
        folded = unicodedata.normalize("NFKC", path)
        if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in folded):
            raise PathError(f"must not contain control or format characters (read as {folded!r} after "
                            f"Unicode NFKC normalisation)")
    said = f" (read as {folded!r} after Unicode NFKC normalisation)" if folded != path else ""
    if "\\" in folded:
        raise PathError(f"must use '/' (a backslash is not allowed){said}")
    if folded.startswith("/"):
        raise PathError(f"must be relative (no absolute path){said}")
    if ":" in folded:
        raise PathError(f"must not contain ':' (a drive or an NTFS alternate data stream){said}")
    bad = sorted(_WINDOWS_INVALID.intersection(folded))
    if bad:
        raise PathError(f"must not contain {' '.join(bad)} (not allowed in Windows file names){said}")
    if folded.endswith("/"):
        raise PathError("must name a file")
    raw_parts, parts = path.split("/"), folded.split("/")
    if len(raw_parts) != len(parts):
        raise PathError(f"must not contain a look-alike of '/'{said}")
    kept: list[str] = []
    for raw, part in zip(raw_parts, parts, strict=True):
        if part in ("", "."):
            if raw not in ("", "."):  # a look-alike of '.' is not folded away: refuse it
                raise PathError(f"must not contain a look-alike of '.'{said}")
            continue
        if part == "..":
            raise PathError(f"must not contain '..'{said}")
        _check_component(part, said)
        if len(raw.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise PathError(f"must not have a component over {MAX_COMPONENT_BYTES} bytes")
        kept.append(raw)
    if not kept:
        raise PathError("must name a file")
    return "/".join(kept)


def _check_component(part: str, said: str) -> None:
    if part.endswith((".", " ")):
        raise PathError(f"must not have a component ending in '.' or ' ' (Windows drops them){said}")
    stem = part.split(".", 1)[0].rstrip(" ").upper()
    if stem in _DEVICES:
        raise PathError(f"must not use the Windows device name {stem} (in any case, with any extension){said}")
    if part.casefold() in (".git", "git~1"):
        raise PathError(f"must not have a .git component (a checkout would take it for its repository){said}")
