"""The coordinate resolver and the files-to-patches bridge (pure: no AWS, used by the agent CLI).

    resolve(text, marker)        -> Resolution: "new" (no file), "existing" (the marker's span),
                                    or "insert" (the marker is absent: insert before line N)
    files_to_batch(workspace, generated, read, ...) -> a PatchBatch as JSON
    operation_problems(operations) -> [{field, message}]: what the submit path refuses (400)

The bridge turns a set of generated files into operations:
- a file that does not exist: `append` of the whole content (append creates the file);
- an existing file whose generated content holds template markers (`###NAME###` lines; a pair
  of the same marker encloses a block): one `replace-block` per marker whose span exists in
  the file (anchor: the marker), one insertion per marker that does not (before the line that
  follows the block in the generated file when the current file has that line, else appended);
- any other existing file that differs: a whole-file `replace-block` (lines 1..n);
- an identical file: nothing.
Every operation on an existing file carries `expectedSha256` of the file as read, so a batch
built from a stale view is refused (drift) instead of overwriting someone's change.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from patch_engine import engine
from patch_engine.paths import PathError, normalize_path

TEMPLATE_MARKER = re.compile(r"###[A-Za-z0-9_]+###")


@dataclass(frozen=True)
class Resolution:
    kind: str                     # "new" | "existing" | "insert"
    start: int | None = None      # existing: 1-based inclusive span
    end: int | None = None
    before_line: int | None = None  # insert: 1-based line to insert before (len+1: at the end)


def _strip(line: str) -> str:
    return line.rstrip("\n").rstrip("\r")


def resolve(text: str | None, marker: str, following: str | None = None) -> Resolution:
    """Where `marker` (a template marker, matched literally) is in `text`.

    `following`: the line that comes after the marker's block in the generated file; when the
    marker is absent and that line exists, the answer is to insert before it."""
    if text is None:
        return Resolution("new")
    lines = [_strip(line) for line in engine.split_lines(text)]
    hits = [i for i, line in enumerate(lines) if marker in line][:2]
    if hits:
        return Resolution("existing", hits[0] + 1, hits[-1] + 1)
    if following is not None:
        for i, line in enumerate(lines):
            if line == following:
                return Resolution("insert", before_line=i + 1)
    return Resolution("insert", before_line=len(lines) + 1)


@dataclass(frozen=True)
class Block:
    marker: str
    content: str          # the block's lines, markers included, with endings
    following: str | None  # the first generated non-marker line after the block


def marker_blocks(text: str) -> list[Block]:
    """Template-marker blocks of a generated file, in order: a marker pair encloses a block; a
    marker seen once is a one-line block."""
    lines = engine.split_lines(text)
    stripped = [_strip(line) for line in lines]
    blocks, i = [], 0
    while i < len(lines):
        found = TEMPLATE_MARKER.search(stripped[i])
        if not found:
            i += 1
            continue
        marker = found.group(0)
        end = next((j for j in range(i + 1, len(lines)) if marker in stripped[j]), i)
        # the next generated line that is not a marker line: where a new block belongs
        following = next((stripped[j] for j in range(end + 1, len(lines))
                          if not TEMPLATE_MARKER.search(stripped[j])), None)
        blocks.append(Block(marker, "".join(lines[i:end + 1]), following))
        i = end + 1
    return blocks


def file_ops(path: str, generated: str, current: bytes | None) -> list[dict[str, Any]]:
    """The operations that turn `current` into `generated` (see module doc)."""
    path = normalize_path(path)
    if current is None:
        return [{"op": "append", "file": path, "content": generated}]
    text = engine.decode(current)
    if text == generated:
        return []
    digest = engine.sha256(current)
    blocks = marker_blocks(generated)
    if blocks:
        # Insertions use line numbers of the file as read, so they go first, bottom-up (each
        # leaves the lines above it where they were); replacements anchor on their marker and
        # do not care where the insertions moved it.
        count = len(engine.split_lines(text))
        inserts: list[tuple[tuple[int, int], dict[str, Any]]] = []
        replaces: list[dict[str, Any]] = []
        appends: list[dict[str, Any]] = []
        for block in blocks:
            where = resolve(text, block.marker, block.following)
            if where.kind == "existing":
                replaces.append({"op": "replace-block", "file": path, "anchor": {"marker": block.marker},
                                 "content": block.content, "expectedSha256": digest})
            elif where.before_line is not None and where.before_line <= count:
                inserts.append(((where.before_line, len(inserts)), {"op": "insert-before", "file": path,
                                                    "anchor": {"line": where.before_line},
                                                    "content": block.content, "expectedSha256": digest}))
            else:
                appends.append({"op": "append", "file": path, "content": block.content, "expectedSha256": digest})
        ordered = [op for _, op in sorted(inserts, key=lambda pair: (-pair[0][0], -pair[0][1]))]
        return ordered + replaces + appends
    count = len(engine.split_lines(text))
    if count == 0:
        return [{"op": "append", "file": path, "content": generated, "expectedSha256": digest}]
    return [{"op": "replace-block", "file": path, "anchor": {"lines": {"start": 1, "end": count}},
             "content": generated, "expectedSha256": digest}]


def files_to_batch(workspace: str, generated: Mapping[str, str], read: Callable[[str], bytes | None],
                   **meta: str | None) -> dict[str, Any]:
    """A PatchBatch (JSON) for a set of generated files; `meta`: taskId, orderId, factory, phase."""
    operations: list[dict[str, Any]] = []
    for path in sorted(generated):
        operations.extend(file_ops(path, generated[path], read(normalize_path(path))))
    batch = {"workspace": workspace, "operations": operations}
    batch.update({k: v for k, v in meta.items() if v is not None})
    return batch


MAX_PROBLEMS = 50  # details listed in one 400 (a 1000-op batch of bad markers is not a 1000-line answer)


def operation_problems(operations: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every operation's unusable `file` (paths.py's rule) or anchor marker (markers.py's bounds, or
    not a valid regex), as error details naming the field: `operations[3].file`,
    `operations[3].anchor.marker`. Normalizes each op's `file` in place. Compiling a marker
    that passed the bounds is part of the check (engine.check_marker), so a batch whose marker
    the compiler refuses is never queued."""
    problems: list[dict[str, str]] = []
    checked: dict[str, str | None] = {}
    for index, op in enumerate(operations):
        try:
            op["file"] = normalize_path(op.get("file"))  # type: ignore[arg-type]
        except PathError as e:
            problems.append({"field": f"operations[{index}].file", "message": str(e)})
        marker = (op.get("anchor") or {}).get("marker")
        if marker is not None:
            if marker not in checked:
                checked[marker] = engine.check_marker(marker)
            if checked[marker] is not None:
                problems.append({"field": f"operations[{index}].anchor.marker", "message": checked[marker] or ""})
        if len(problems) >= MAX_PROBLEMS:
            break
    return problems
