"""Pure decisions of the ops scan: what a failure is, its fingerprint, its severity, the issue text.

No store, no AWS, no HTTP here: the scan (scan.py) reads failures from their
sources, these rules group them, the store keeps the groups, github.py files them.

Normalization (docs/OPS.md shows examples): the parts of a message that change
from one occurrence to the next (timestamps, UUIDs, ULIDs, hex, temporary
paths, IPs, numbers, quoted values) become placeholders; a traceback keeps
only its stable part (exception type, the normalized final message and the
frames as `file:function`, without line numbers or the caller's own paths).
The fingerprint is a hash of (kind, normalized text): one group, one GitHub
issue, per fingerprint.

Untrusted text (issue 18, docs/SECURITY.md): a Failure is redacted when it is
made (chalicelib/core/redaction.py), so no secret is grouped, stored, shown
by the API or sent to Bedrock; everything it carries is quoted by
chalicelib/ops/quoting.py when an issue, title or comment is written. The
marker that ties an issue to its group is keyed (an HMAC with a secret of
the deployment) and is read only from the body's first line, where only the
scan writes.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.redaction import redact
from chalicelib.ops import quoting

# Failure kinds: where a failure came from. Part of the fingerprint, so a job
# error and a log line with the same words stay two groups.
JOB, JOB_DLQ, LOG, PATCH, CLOUDWATCH = "job", "job-dlq", "log", "patch", "cloudwatch"
CONFIG_DRIFT = "config-drift"   # fleet configuration drift (ops/config_drift.py): one group per pool
CI = "ci"                 # failed GitHub Actions runs of allow-listed repositories (ops/ci.py)
KINDS: tuple[str, ...] = (JOB, JOB_DLQ, LOG, PATCH, CLOUDWATCH, CONFIG_DRIFT, CI)
# Kinds whose subject names the group itself (a pool of an org), so it is hashed as it is: normalizing
# would fold "edge-1" and "edge-2", or two organizations' pools, into one group.
VERBATIM_SUBJECT_KINDS = (CONFIG_DRIFT,)

SEVERITIES = ("critical", "high", "medium", "low")
STATUSES = ("open", "in_progress", "closed")
MAX_SAMPLES = 5
MARKER_PREFIX = "ops-fingerprint:"
SAMPLE_MESSAGE_CHARS = 500      # a sample's message as stored
WHERE_VALUE_CHARS = 200         # one "where" value (a workspace, a file path, a pool) as stored
TRACEBACK_CHARS = 6000          # the latest traceback a group keeps (head and tail)
MAC_HEX = 32                    # the marker's HMAC, in hex characters (128 bits)


@dataclass(frozen=True)
class Failure:
    """One failure read from a source; `cursor` is what the source's watermark becomes after it."""

    kind: str
    source_id: str          # the job id, log entry id, patch event id, CloudWatch event id
    at: str                 # ISO 8601 UTC
    message: str
    org_id: str | None = None
    subject: str = ""       # what failed: a job type, a patch op, a function name
    traceback: str | None = None
    cursor: str = ""
    # Where it failed, for the operator who acts on it (not part of the fingerprint): ("agent", id),
    # ("job", id), ("pool", name); ("workspace", name), ("file", path), ("batch", id); ("instance", id).
    where: tuple[tuple[str, str], ...] = ()
    # A CI job's log tail (ops/ci.py): kept and shown as the group's latest "traceback", never part of the
    # fingerprint (only some occurrences carry it: the scan fetches one log per group, not per run).
    log: str | None = None

    def __post_init__(self) -> None:
        # Redacted from birth: nothing downstream (grouping, the store, the API, Bedrock, GitHub) can see a
        # secret that a tenant's job or log wrote into its error text.
        object.__setattr__(self, "message", redact(self.message))
        object.__setattr__(self, "subject", redact(self.subject))
        if self.traceback is not None:
            object.__setattr__(self, "traceback", redact(self.traceback))
        if self.log is not None:
            object.__setattr__(self, "log", redact(self.log))
        object.__setattr__(self, "where", tuple((k, redact(str(v))[:WHERE_VALUE_CHARS]) for k, v in self.where if v))

    def sample(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "sourceId": self.source_id, "at": self.at,
                               "message": self.message[:SAMPLE_MESSAGE_CHARS]}
        if self.org_id:
            out["orgId"] = self.org_id
        if self.subject:
            out["subject"] = self.subject[:WHERE_VALUE_CHARS]
        if self.where:
            out["where"] = dict(self.where)
        return out


# --- normalization ------------------------------------------------------------------

_RULES: list[tuple[re.Pattern[str], str]] = [
    # ISO 8601 timestamps (date, optional time, fraction, zone) before numbers eat them.
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "<ts>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<ts>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    # ULIDs (this project's ids): 26 Crockford base32 characters starting with a time digit.
    (re.compile(r"\b[0-7][0-9A-HJKMNP-TV-Z]{25}\b"), "<id>"),
    # Temporary paths: the directory part changes on every run.
    (re.compile(r"(?:/private)?/(?:tmp|var/folders|var/tmp|dev/shm)/[^\s'\",:;)\]]*"), "<tmp>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    # Hex runs of 8+ with at least one digit (hashes, request ids, object addresses).
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    # Quoted values: ids and user input inside quotes ('job-17', "abc").
    (re.compile(r"'[^'\n]{0,200}'"), "'<v>'"),
    (re.compile(r'"[^"\n]{0,200}"'), '"<v>"'),
    # Numbers, also inside identifiers (job-42, worker7, 3.5s).
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]
_SPACES = re.compile(r"\s+")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')
# The exception line: an unindented dotted name, optionally `: message` (the last one wins: chained
# exceptions end with the one that escaped).
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s*(?P<msg>.*))?$")


def normalize(text: str) -> str:
    """The stable part of one message: variable parts replaced by placeholders, spaces collapsed."""
    out = text.strip()
    for pattern, placeholder in _RULES:
        out = pattern.sub(placeholder, out)
    return _SPACES.sub(" ", out)[:500]


def _frame_file(path: str) -> str:
    """A frame's file without the machine's prefix: site-packages/x/y.py -> x/y.py, /var/task/a.py -> a.py."""
    for anchor in ("site-packages/", "dist-packages/", "/var/task/", "/var/runtime/"):
        if anchor in path:
            return path.split(anchor, 1)[1]
    parts = path.replace("\\", "/").split("/")
    return "/".join(parts[-2:]) if len(parts) > 1 else path


def normalize_traceback(text: str) -> str:
    """`Type: normalized message @ file:func > file:func` (innermost last), from a Python traceback."""
    frames: list[str] = []
    last_exception = ""
    for line in text.splitlines():
        frame = _FRAME.match(line)
        if frame:
            frames.append(f"{_frame_file(frame['file'])}:{frame['func']}")
            continue
        exc = _EXCEPTION.match(line) if not line[:1].isspace() and not line.startswith("Traceback") else None
        if exc and (exc["msg"] is not None or frames):
            last_exception = exc["type"][:200] + (": " + normalize(exc["msg"]) if exc["msg"] else "")
    # The innermost frames say where it broke; the outer ones are the framework's plumbing.
    stable = " > ".join(frame[:200] for frame in frames[-5:])
    return (f"{last_exception} @ {stable}" if stable else last_exception)[:2000]


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


def group_key(failure: Failure) -> str:
    """What the fingerprint hashes: the kind, what failed, and the normalized message or traceback."""
    body = failure.traceback or (failure.message if has_traceback(failure.message) else None)
    normalized = normalize_traceback(body) if body else normalize(failure.message)
    subject = normalize(failure.subject) if failure.subject else ""
    if failure.kind in VERBATIM_SUBJECT_KINDS:
        subject = failure.subject
    return f"{failure.kind}|{subject}|{normalized}"


def fingerprint(failure: Failure) -> str:
    return fingerprint_of_key(group_key(failure))


def fingerprint_of_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


# --- severity -------------------------------------------------------------------------

_CRITICAL = re.compile(r"Task timed out|Runtime exited|out of memory|MemoryError|Killed", re.IGNORECASE)


def base_severity(failure: Failure) -> str:
    """Dead letters and crashed or timed-out functions are critical; unhandled tracebacks and failed
    jobs high; ERROR logs and failed patches medium; rejected patches (bad input, caught) low."""
    text = f"{failure.message}\n{failure.traceback or ''}"
    if failure.kind == JOB_DLQ or _CRITICAL.search(text):
        return "critical"
    if failure.kind == CLOUDWATCH or failure.kind == JOB or has_traceback(text):
        return "high"
    if failure.kind == PATCH and failure.subject.startswith("rejected"):
        return "low"
    return "medium"


def severity(base: str, count: int) -> str:
    """A group that keeps happening is one step more severe: 100 occurrences or more."""
    index = SEVERITIES.index(base)
    if count >= 100 and index > 0:
        index -= 1
    return SEVERITIES[index]


# --- groups -----------------------------------------------------------------------------

@dataclass
class Aggregate:
    """What one scan learned about one fingerprint."""

    fingerprint: str
    kind: str
    key: str
    title: str
    base_severity: str
    new_count: int = 0      # occurrences after the source's watermark: added to the group's count
    old_count: int = 0      # occurrences at or before it (a full rescan): only rebuild a lost group
    first_seen: str = ""
    last_seen: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    traceback: str | None = None    # the latest occurrence's, redacted, cut to TRACEBACK_CHARS
    traceback_at: str = ""

    def add(self, failure: Failure, is_new: bool) -> None:
        if is_new:
            self.new_count += 1
        else:
            self.old_count += 1
        if not self.first_seen or failure.at < self.first_seen:
            self.first_seen = failure.at
        if failure.at > self.last_seen:
            self.last_seen = failure.at
        self.samples = merge_samples(self.samples, [failure.sample()])
        trace = failure.traceback or failure.log or (failure.message if has_traceback(failure.message) else None)
        if trace and failure.at >= self.traceback_at:
            self.traceback, self.traceback_at = quoting.head_and_tail(trace, TRACEBACK_CHARS), failure.at


def title_of(failure: Failure) -> str:
    key = group_key(failure).split("|", 2)
    what = f" {failure.subject}" if failure.subject else ""
    return f"[ops] {failure.kind}{what}: {key[2]}"[:200]


def aggregate(failures: list[tuple[Failure, bool]]) -> dict[str, Aggregate]:
    """Fold (failure, is_new) pairs into one Aggregate per fingerprint."""
    groups: dict[str, Aggregate] = {}
    for failure, is_new in failures:
        key = group_key(failure)
        fp = fingerprint_of_key(key)
        agg = groups.get(fp)
        if agg is None:
            agg = groups[fp] = Aggregate(fp, failure.kind, key, title_of(failure), base_severity(failure))
        agg.add(failure, is_new)
    return groups


def merge_samples(existing: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest MAX_SAMPLES samples, one per source id."""
    seen: dict[str, dict[str, Any]] = {}
    for s in [*existing, *new]:
        seen[f"{s.get('kind')}:{s.get('sourceId')}"] = s
    return sorted(seen.values(), key=lambda s: s.get("at", ""))[-MAX_SAMPLES:]


def redact_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """A stored sample redacted again (idempotent): samples stored before redaction existed lose their secrets
    the next time their group is written."""
    out = {**sample, "message": redact(str(sample.get("message", "")))}
    if isinstance(sample.get("where"), dict):
        out["where"] = {k: redact(str(v)) for k, v in sample["where"].items()}
    return out


@dataclass(frozen=True)
class GroupState:
    """A stored group, merged with one scan's aggregate."""

    count: int
    first_seen: str
    last_seen: str
    samples: list[dict[str, Any]]
    severity: str
    created: bool
    traceback: str | None = None


def merge(stored: dict[str, Any] | None, agg: Aggregate) -> GroupState:
    """The group after this scan. A group already stored counts only the new occurrences (the
    old ones were counted when it first saw them); a group with no record (new, or its record
    was lost) counts everything this scan saw."""
    if stored is None:
        count = agg.old_count + agg.new_count
        first, last, samples = agg.first_seen, agg.last_seen, agg.samples
    else:
        count = int(stored.get("count", 0)) + agg.new_count
        first = min(filter(None, [stored.get("firstSeen"), agg.first_seen]))
        last = max(filter(None, [stored.get("lastSeen"), agg.last_seen]))
        samples = merge_samples([redact_sample(s) for s in stored.get("samples") or []], agg.samples)
    base = stored.get("baseSeverity", agg.base_severity) if stored else agg.base_severity
    traceback = agg.traceback or (stored.get("traceback") if stored else None)
    return GroupState(count, first, last, samples, severity(base, count), stored is None, traceback)


# --- GitHub issue text ------------------------------------------------------------------
#
# The marker ties an issue to its group: `<!-- ops-fingerprint: {fp} {mac} -->` as the body's FIRST line,
# where `mac` is an HMAC-SHA256 of the fingerprint under a key of the deployment (scan.marker_key). Only
# the scan writes a first line; quoted failure text comes after it, never contains "ops-fingerprint"
# (quoting replaces it) nor a live HTML comment, and cannot know the key: a tenant's text cannot tie
# another tenant's group to its issue, however predictable fingerprints are.

def marker_mac(fp: str, key: bytes) -> str:
    return hmac.new(key, f"ops-issue-marker:{fp}".encode(), hashlib.sha256).hexdigest()[:MAC_HEX]


def marker_text(fp: str, key: bytes) -> str:
    """What the scan searches for on GitHub (the text inside the hidden comment)."""
    return f"{MARKER_PREFIX} {fp} {marker_mac(fp, key)}"


def marker(fp: str, key: bytes) -> str:
    return f"<!-- {marker_text(fp, key)} -->"


_MARKER = re.compile(r"<!-- " + re.escape(MARKER_PREFIX) + r" ([0-9a-f]{16}) ([0-9a-f]{%d}) -->" % MAC_HEX)


def marker_in(body: str | None, key: bytes) -> str | None:
    """The fingerprint of the scan's marker when it is the body's first line and its MAC is right; else None
    (a marker anywhere else is text someone else wrote)."""
    first_line = (body or "").split("\n", 1)[0].rstrip("\r")
    found = _MARKER.fullmatch(first_line)
    if found is None or not hmac.compare_digest(found.group(2), marker_mac(found.group(1), key)):
        return None
    return found.group(1)


_LEGACY_MARKER = re.compile(r"<!-- " + re.escape(MARKER_PREFIX) + r" ([0-9a-f]{16}) -->")


def legacy_marker_in(body: str | None) -> str | None:
    """The unkeyed marker the scan wrote as the LAST line before keyed markers existed. Forgeable by itself:
    the scan uses it only as a pointer that the group's stored issue number must confirm."""
    lines = (body or "").rstrip("\r\n").rsplit("\n", 1)
    found = _LEGACY_MARKER.fullmatch(lines[-1].rstrip("\r"))
    return found.group(1) if found else None


WHERE_LABELS = {"agent": "agent", "job": "job", "pool": "pool", "workspace": "workspace", "file": "file",
                "batch": "batch", "instance": "instance", "function": "function",
                "log stream": "log stream"}


def where_text(where: dict[str, Any] | None, limit: int = 600) -> str:
    """`agent 01J…, job 01J…, pool gpu` (labels are ours, values quoted)."""
    parts = [f"{WHERE_LABELS.get(k, 'at')} {quoting.inline(v, WHERE_VALUE_CHARS)}" for k, v in (where or {}).items()]
    return ", ".join(parts)[:limit]


def _sample_line(s: dict[str, Any]) -> str:
    org = f" · org {quoting.inline(s['orgId'], 64)}" if s.get("orgId") else ""
    where = f" · {where_text(s.get('where'))}" if s.get("where") else ""
    return (f"- {quoting.inline(s.get('at', ''), 64)} · {quoting.inline(s.get('kind', ''), 32)} "
            f"{quoting.inline(s.get('sourceId', ''), 128)}{org}{where}: "
            f"{quoting.inline(s.get('message', ''), 1200)}")


def issue_body(group: dict[str, Any], key: bytes, analysis: str | None = None) -> str:
    """The issue's body: the marker first, every untrusted value quoted, every field bounded, the whole within
    quoting.BODY_LIMIT (GitHub refuses more than 65,536 characters)."""
    samples = group.get("samples") or []
    lines = [
        marker(group["fingerprint"], key),
        f"**Severity:** {quoting.inline(group['severity'], 16)}  ",
        f"**Kind:** {quoting.inline(group['kind'], 16)}  ",
        f"**Occurrences:** {int(group['count'])} (first {quoting.inline(group['firstSeen'], 64)}, "
        f"last {quoting.inline(group['lastSeen'], 64)})  ",
    ]
    latest_where = next((s["where"] for s in reversed(samples) if s.get("where")), None)
    if latest_where:
        lines.append(f"**Where (latest):** {where_text(latest_where)}")
    lines += ["", "**Normalized:**", "", quoting.block(group["key"].split("|", 2)[2], 4000)]
    if analysis:
        lines += ["", "**Probable cause (automated analysis):**", "", quoting.inline(analysis, 2000)]
    lines += ["", "**Samples** (quoted as written, secrets redacted):", ""]
    lines += [_sample_line(s) for s in samples[-MAX_SAMPLES:]]
    if group.get("traceback"):
        heading = "Log tail of the failing job (latest)" if group.get("kind") == CI else "Traceback (latest)"
        lines += ["", f"**{heading}:**", "", quoting.block(group["traceback"], 2 * TRACEBACK_CHARS)]
    lines += ["", "Filed by the control plane's ops scan; it comments here when the failure recurs."]
    body = "\n".join(lines)
    if len(body) > quoting.BODY_LIMIT:  # cannot happen with the bounds above; the limit holds whatever changes
        body = body[:quoting.BODY_LIMIT - 100] + "\n\n… [truncated: the body was over its limit]"
    return body


def issue_title(group: dict[str, Any]) -> str:
    return quoting.title(group["title"])


def recurrence_comment(group: dict[str, Any], previous: int, reopened: bool) -> str:
    head = "Recurred after the issue was closed; reopened. " if reopened else ""
    count = int(group["count"])
    return (f"{head}Occurrences: {count} (+{count - previous} since the last report); "
            f"last seen {quoting.inline(group['lastSeen'], 64)}; severity {quoting.inline(group['severity'], 16)}.")


def claim_comment(claimed_by: str) -> str:
    return f"Claimed by {quoting.inline(claimed_by, 200)}: status in_progress."


_GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")


def github_login(name: str) -> str | None:
    """`name` when it can be a GitHub login (what an assignment may name), else None."""
    return name if _GITHUB_LOGIN.fullmatch(name) else None
