"""`python -m agent patch ...`: the control plane's patch engine on local files.

  python -m agent patch apply BATCH.json --root DIR [--dry-run]
      Apply a PatchBatch (the JSON of POST /api/patches/apply) to the files under DIR with the
      same engine the control plane runs. All or nothing: every new file is written to a
      temporary file beside its target first, as soon as the engine has applied the batch's
      last op on it (one file in memory at a time); only when the whole batch applied are they renamed
      over their targets (originals kept as backups until the last rename, and restored if a
      rename fails). A failing batch touches nothing. Prints {"status", "results"}; exit 0 when
      applied (or validated), 1 when it failed.

  python -m agent patch submit BATCH.json --url URL --api-key KEY [--dry-run] [--timeout S]
      Send the batch to POST /api/patches/apply and follow it to its end over the WebSocket (REST
      polling as fallback); prints the batch's final view; exit 0 only when it applied
      (agent/factory.py lists the exit codes). --dry-run prints the per-file results at once.

  With --url and --api-key (or CP_URL and CP_API_KEY) `apply` records its outcome with the control
  plane (POST /api/patches/events), so stats, trends and delivery reports count local work.

  python -m agent patch from-files --generated GEN_DIR --root DIR --workspace WS [--factory F ...]
      Build a PatchBatch that turns the files under DIR into the generated files under GEN_DIR
      (the files-to-patches bridge: new files, marker-block replacements, whole-file
      replacements; expectedSha256 on every op of an existing file). Prints the batch JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from agent import factory
from patch_engine import bridge, engine


class PatchFailed(Exception):
    pass


class _Root:
    """Paths under one root; a path whose real location is outside it (a symlink) is refused.
    Real paths of directories are cached: one check per directory, not per file."""

    def __init__(self, root: Path):
        self.root = root
        self.real = os.path.realpath(root)
        self._dirs: dict[str, bool] = {}

    def target(self, path: str) -> Path:
        relative = engine.normalize_path(path)
        target = self.root / relative
        parent = os.path.dirname(relative)
        inside = self._dirs.get(parent)
        if inside is None:
            real_parent = os.path.realpath(self.root / parent) if parent else self.real
            inside = self._dirs[parent] = real_parent == self.real or real_parent.startswith(self.real + os.sep)
        if not inside or (os.path.islink(target) and not os.path.realpath(target).startswith(self.real + os.sep)):
            raise engine.PathError(f"{path} leaves the root (symlink)")
        return target

    def read(self, path: str) -> bytes | None:
        try:
            with open(self.target(path), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None


def apply_batch(batch: dict, root: str | os.PathLike, dry_run: bool = False, durable: bool = True) -> dict:
    """Apply a batch to files under `root`; returns {"status", "results"} (see module doc).

    Each changed file is written to its temporary file as soon as the engine hands it over
    (one file in memory at a time, as buffers: no joined copy); the renames wait for the whole
    batch to apply, and a batch that fails after some files were staged removes them."""
    files = _Root(Path(root))
    staging = _Staging(files, durable)
    try:
        outcome = engine.apply_batch(batch.get("operations") or [], files.read,
                                     on_file=None if dry_run else staging.stage)
    except engine.PathError as e:
        staging.discard()
        return {"status": "failed", "results": [], "error": str(e)}
    except BaseException:
        staging.discard()
        raise
    # As the control plane's worker says it: when the batch does not apply, the operations that would
    # have applied are `rejected` and name the first failure (nothing of theirs was written).
    first = next((r for r in outcome.results if not r.ok), None)

    def status_of(r: engine.Result) -> tuple[str, str | None]:
        if not r.ok:
            return "failed", r.error
        if dry_run:
            return "validated", None
        return ("applied", None) if first is None else ("rejected", f"BATCH_NOT_APPLIED: operation {first.index} failed")

    results = []
    for r in outcome.results:
        status, error = status_of(r)
        results.append({"index": r.index, "file": r.file, "op": r.op, "status": status,
                        **({"matchedBy": r.matched_by} if r.matched_by else {}), **({"error": error} if error else {})})
    if not outcome.ok:
        staging.discard()
        return {"status": "failed", "results": results}
    if not dry_run:
        staging.publish()
    return {"status": "validated" if dry_run else "applied", "results": results}


_IOV_MAX = (os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 0) or 1024


def _write_all(fd: int, buffers: list) -> None:
    """Every byte of `buffers`, in order: os.writev in runs of at most IOV_MAX buffers, carrying
    on after a short write (os.write one by one where there is no writev)."""
    views = [memoryview(b) for b in buffers if len(b)]
    if not hasattr(os, "writev"):
        for view in views:
            while view:
                view = view[os.write(fd, view):]
        return
    i = 0
    while i < len(views):
        written = os.writev(fd, views[i:i + _IOV_MAX])
        while written and i < len(views):
            if written >= len(views[i]):
                written -= len(views[i])
                i += 1
            else:
                views[i], written = views[i][written:], 0


class _Staging:
    """Write every file or none: temporary files beside their targets first (`stage`), then
    renames with backups to roll back (`publish`), or the temporary files removed (`discard`).
    `durable`: fsync each temporary file before the renames (a power cut cannot leave an empty
    file)."""

    def __init__(self, root: _Root, durable: bool):
        self.root, self.durable = root, durable
        self.staged: list[tuple[Path, Path]] = []
        self.created_dirs: list[Path] = []

    def stage(self, path: str, buffers: list) -> None:
        target = self.root.target(path)
        missing = []
        parent = target.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            directory.mkdir()
            self.created_dirs.append(directory)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.patch-tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.staged.append((tmp, target))  # from here on, discard() removes it
        try:
            _write_all(fd, buffers)
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        except FileNotFoundError:
            pass

    def discard(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        for directory in reversed(self.created_dirs):
            _rmdir(directory)
        self.staged, self.created_dirs = [], []

    def publish(self) -> None:
        backups: list[tuple[Path, Path | None]] = []  # (target, backup or None when it was new)
        try:
            for tmp, target in self.staged:
                backup = target.with_name(f".{target.name}.{os.getpid()}.patch-bak")
                try:
                    os.replace(target, backup)
                    backups.append((target, backup))
                except FileNotFoundError:
                    backups.append((target, None))
                os.replace(tmp, target)
        except BaseException:
            for swapped, kept in reversed(backups):
                if kept is not None:
                    os.replace(kept, swapped)
                else:
                    swapped.unlink(missing_ok=True)
            self.discard()
            raise
        for _, kept in backups:
            if kept is not None:
                kept.unlink(missing_ok=True)


def _rmdir(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:
        pass


def from_files(generated_dir: str | os.PathLike, root: str | os.PathLike, workspace: str, **meta: str | None) -> dict:
    source, files = Path(generated_dir), _Root(Path(root))
    generated = {}
    for path in sorted(source.rglob("*")):
        if path.is_file():
            generated[path.relative_to(source).as_posix()] = engine.decode(path.read_bytes())
    return bridge.files_to_batch(workspace, generated, files.read, **meta)


def _add_control_plane(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("CP_URL"), help="the control plane's REST URL (CP_URL)")
    parser.add_argument("--api-key", default=os.environ.get("CP_API_KEY"), help="an agent or operator key (CP_API_KEY)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent patch", description="Patch batches on local files.",
                                epilog="Exit codes: 0 applied, 1 failed, 2 invalid input, 3 rejected, "
                                       "4 unreachable, 5 refused, 6 timed out (docs/FACTORY.md).")
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("apply", help="apply a PatchBatch JSON file to --root, all or nothing")
    a.add_argument("batch", help="the batch JSON file ('-' for stdin)")
    a.add_argument("--root", required=True)
    a.add_argument("--dry-run", action="store_true")
    a.add_argument("--no-fsync", action="store_true", help="skip fsync of the new files (faster, not power-cut safe)")
    _add_control_plane(a)
    a.add_argument("--no-report", action="store_true",
                   help="do not record the outcome with the control plane (it is recorded when --url and "
                        "--api-key, or CP_URL and CP_API_KEY, are given)")
    s = sub.add_parser("submit", help="send a PatchBatch to the control plane and follow it to its end")
    s.add_argument("batch", help="the batch JSON file ('-' for stdin)")
    s.add_argument("--dry-run", action="store_true", help="validate against the workspace; print per-file results")
    _add_control_plane(s)
    s.add_argument("--ws-url", default=os.environ.get("CP_WS_URL"),
                   help="the WebSocket URL (CP_WS_URL; default: the REST URL's /ws)")
    s.add_argument("--no-websocket", action="store_true", help="follow by REST polling only")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the batch's end (exit 6 after)")
    s.add_argument("--poll", type=float, default=2.0, help="seconds between REST reads of the batch")
    f = sub.add_parser("from-files", help="build a PatchBatch from generated files")
    f.add_argument("--generated", required=True, help="directory of generated files")
    f.add_argument("--root", required=True, help="directory holding the current files")
    f.add_argument("--workspace", required=True)
    for name in ("task-id", "order-id", "factory", "phase"):
        f.add_argument(f"--{name}")
    f.add_argument("--out", help="write the batch here instead of stdout")
    args = p.parse_args(argv)
    if args.command == "apply":
        return _apply(args)
    if args.command == "submit":
        return _submit(args)
    batch = from_files(args.generated, args.root, args.workspace, taskId=args.task_id, orderId=args.order_id,
                       factory=args.factory, phase=args.phase)
    text = json.dumps(batch, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _apply(args: argparse.Namespace) -> int:
    try:
        batch = factory.read_batch(args.batch)
    except factory.InvalidInput as e:
        _say(str(e))
        return factory.EXIT_INVALID
    dry_run = args.dry_run or bool(batch.get("dryRun"))
    started = time.monotonic()
    result = apply_batch(batch, args.root, dry_run=dry_run, durable=not args.no_fsync)
    duration_ms = int((time.monotonic() - started) * 1000)
    code = factory.EXIT_CODES.get(result["status"], factory.EXIT_FAILED)
    client = None if (args.no_report or dry_run) else factory.client_or_none(args.url, args.api_key)
    if client is not None and result["results"]:
        # The files changed (or, for a failed batch, did not) whatever the control plane answers:
        # a report that does not land says so on stderr and in the exit code (4 or 5).
        try:
            result["reported"] = factory.report(client, batch, result, duration_ms)
        except (factory.ApiError, OSError, factory.Stopped) as e:
            result["reported"] = None
            _say(f"the outcome was not recorded with the control plane: {e}")
            code = factory.exit_code_of(e) if code == factory.EXIT_APPLIED else code
    print(json.dumps(result, indent=2))
    return code


def _submit(args: argparse.Namespace) -> int:
    if not args.url or not args.api_key:
        _say("submit needs --url and --api-key (or CP_URL and CP_API_KEY)")
        return factory.EXIT_INVALID
    try:
        batch = factory.read_batch(args.batch)
    except factory.InvalidInput as e:
        _say(str(e))
        return factory.EXIT_INVALID
    if args.dry_run:
        batch["dryRun"] = True
    client = factory.Client(args.url, args.api_key)
    socket_url = None if args.no_websocket else (args.ws_url or factory.ws_url(args.url))
    try:
        code, shown = factory.submit(client, batch, socket_url=socket_url, timeout=args.timeout,
                                     poll=args.poll, log=_say)
    except (factory.ApiError, OSError, factory.Stopped) as e:
        _say(f"submit failed: {e}")
        body = getattr(e, "body", None)
        if body is not None:
            print(json.dumps(body, indent=2))
        return factory.exit_code_of(e)
    print(json.dumps(shown, indent=2))
    return code
