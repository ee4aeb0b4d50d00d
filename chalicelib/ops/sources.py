"""Where the scan's failures come from, each read through its own domain's function.

A Source reads pages of Failures after a cursor; its `key` names its watermark
(`{kind}#{scope}`: per organization for tenant data, per log group for
CloudWatch). Cursors are strings that sort in reading order.

  job         jobs/failures.failed_jobs       sparse GSI6, failure time order
  job-dlq     jobs/failures.dead_letters      peeked, SentTimestamp order
  log         logs/failures.error_entries     sparse GSI2 (ERROR only), entry id order
  patch       patches/service.failed_events   the patch system's failed and rejected events
  config-drift fleetconfig/service.drifting    gateways behind their desired configuration (ops/config_drift.py)
  cloudwatch  aws/cloudwatch_logs             "ERROR", "Task timed out", "Traceback" per function log group
  ci          ops/ci.py (GitHub Actions)       failed workflow runs of each allow-listed repository, run id order

A source that cannot be read this time (GitHub answered 404 for a repository) raises
SourceUnavailable: the scan records the error for that source and goes on with the others.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from chalicelib.core import clock
from chalicelib.ops import adapters, rules
from chalicelib.ops.rules import Failure

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx
    from chalicelib.ops.github import GitHub

log = logging.getLogger(__name__)

COLLATERAL = "BATCH_NOT_APPLIED"  # patches: an op rejected because another op of its batch failed
CLOUDWATCH_PATTERNS = ('"ERROR"', '"Task timed out"', '"Traceback"')  # plain/quoted terms only


class SourceUnavailable(Exception):
    """This source cannot be read now (its message names what and why; no secret in it)."""


@dataclass
class Page:
    failures: list[Failure]   # oldest first (a source may skip items that are not failures of their own)
    cursor: str | None        # the cursor of the last item read (None: nothing read)
    read: int                 # items read
    more: bool                # the source may have more after `cursor`


@dataclass
class Source:
    key: str
    read: Callable[[str | None, int], Page]   # (after cursor, limit) -> one page


def _page(failures: list[Failure], limit: int, read: int | None = None, cursor: str | None = None) -> Page:
    count = len(failures) if read is None else read
    last = cursor if cursor is not None else (failures[-1].cursor if failures else None)
    return Page(failures, last, count, count >= limit)


def _iso_ms(ms: int) -> str:
    return clock.iso(ms / 1000)


def _ms_cursor(ms: int) -> str:
    return f"{ms:015d}"


# --- per organization ----------------------------------------------------------------

def _jobs(ctx: "Ctx") -> Source:
    from chalicelib.jobs import failures

    def read(after: str | None, limit: int) -> Page:
        jobs, _ = failures.failed_jobs(ctx, after, limit)
        out = []
        for j in jobs:
            error = j.get("error") or {}
            if not isinstance(error, dict):
                error = {"message": str(error)}
            message = ": ".join(str(x) for x in (error.get("code"), error.get("message")) if x) or "job failed"
            details = error.get("details")
            trace = details if isinstance(details, str) and rules.has_traceback(details) else None
            where = (("agent", j.get("agentId") or ""), ("job", j["jobId"]), ("pool", j.get("pool") or ""))
            out.append(Failure(rules.JOB, j["jobId"], j["failedAt"], message, ctx.org_id, j.get("jobType") or "",
                               trace, j["cursor"], where))
        return _page(out, limit)

    return Source(f"{rules.JOB}#{ctx.org_id}", read)


def _instance_agents(ctx: "Ctx", instance_ids: set[str]) -> dict[str, str]:
    """The agent of each instance (one read per distinct instance of a page); a deleted instance has none."""
    from chalicelib.core.errors import NotFound
    from chalicelib.instances import service as instances

    agents: dict[str, str] = {}
    for instance_id in instance_ids:
        try:
            agents[instance_id] = instances.get(ctx, instance_id).agent_id
        except NotFound:
            continue
    return agents


def _logs(ctx: "Ctx") -> Source:
    from chalicelib.logs import failures

    def read(after: str | None, limit: int) -> Page:
        entries, _ = failures.error_entries(ctx, after, limit)
        agents = _instance_agents(ctx, {e["instanceId"] for e in entries})
        out = []
        for e in entries:
            fields = e.get("fields") or {}
            trace = fields.get("traceback") if isinstance(fields.get("traceback"), str) else None
            where = (("instance", e["instanceId"]), ("agent", agents.get(e["instanceId"], "")))
            out.append(Failure(rules.LOG, e["id"], e["timestamp"], e["message"], ctx.org_id, "", trace, e["cursor"],
                               where))
        return _page(out, limit)

    return Source(f"{rules.LOG}#{ctx.org_id}", read)


def _field(event: Any, name: str) -> Any:
    """A PatchEvent (pydantic, snake_case attributes) or a dict in the contract's camelCase."""
    row = event if isinstance(event, dict) else event.model_dump(by_alias=True)
    return row.get(name)


def patches_available() -> bool:
    try:
        from chalicelib.patches import service
    except ImportError:
        return False
    return hasattr(service, "failed_events")


def _batch_workspaces(ctx: "Ctx", batch_ids: set[str]) -> dict[str, str]:
    """The workspace of each batch (one read per distinct batch of a page: events do not carry it)."""
    from chalicelib.core.errors import NotFound
    from chalicelib.patches import service

    workspaces: dict[str, str] = {}
    for batch_id in batch_ids:
        try:
            workspaces[batch_id] = service.get_batch(ctx, batch_id).workspace
        except NotFound:
            continue
    return workspaces


def _patches(ctx: "Ctx") -> Source:
    from chalicelib.patches import service

    def read(after: str | None, limit: int) -> Page:
        out = []
        events = service.failed_events(ctx, after, limit)
        workspaces = _batch_workspaces(ctx, {str(_field(e, "batchId")) for e in events
                                             if not str(_field(e, "error") or "").startswith(COLLATERAL)})
        for e in events:
            if str(_field(e, "error") or "").startswith(COLLATERAL):
                continue  # rejected only because another operation of its batch failed: that one is the failure
            status = str(_field(e, "status") or "failed")
            op = str(_field(e, "op") or "")
            message = str(_field(e, "error") or status)
            batch_id = str(_field(e, "batchId") or "")
            where = (("workspace", workspaces.get(batch_id, "")), ("file", str(_field(e, "file") or "")),
                     ("batch", batch_id))
            out.append(Failure(rules.PATCH, str(_field(e, "eventId")), str(_field(e, "at")), message, ctx.org_id,
                               f"{status} {op}".strip(), None, str(_field(e, "eventId")), where))
        return _page(out, limit, len(events), str(_field(events[-1], "eventId")) if events else None)

    return Source(f"{rules.PATCH}#{ctx.org_id}", read)


# --- platform-wide -------------------------------------------------------------------

def _dead_letters() -> Source:
    from chalicelib.jobs import failures

    def read(after: str | None, limit: int) -> Page:
        out = []
        for m in sorted(failures.dead_letters(10), key=lambda m: m["sentAtMs"]):
            body = m["body"] if isinstance(m["body"], dict) else {}
            what = str(body.get("kind") or body.get("type") or "message")
            ids = {k: body[k] for k in ("orgId", "jobId") if k in body}
            message = f"jobs queue message dead-lettered: {what} {ids}".strip()
            out.append(Failure(rules.JOB_DLQ, m["messageId"], _iso_ms(m["sentAtMs"]), message, body.get("orgId"),
                               what, None, _ms_cursor(m["sentAtMs"]), (("job", str(body.get("jobId") or "")),)))
        return Page(out, out[-1].cursor if out else None, len(out), False)  # a peek: no paging

    return Source(f"{rules.JOB_DLQ}#jobs", read)


def _cloudwatch(group: str, prefix: str) -> Source:
    function = group[len(prefix):] if group.startswith(prefix) else group.rsplit("/", 1)[-1]

    def read(after: str | None, limit: int) -> Page:
        start = int(after) + 1 if after else 0
        seen: dict[str, dict[str, Any]] = {}
        for pattern in CLOUDWATCH_PATTERNS:
            token = None
            while True:
                events, token = adapters.filter_log_events(group, pattern, start, limit, token)
                for e in events:
                    seen.setdefault(e["eventId"], e)
                if not token or len(seen) >= limit * 3:
                    break
        out = []
        for e in sorted(seen.values(), key=lambda e: (e["timestamp"], e["eventId"])):
            message = e["message"].strip()
            trace = message if rules.has_traceback(message) else None
            first_line = message.splitlines()[0] if message else ""
            out.append(Failure(rules.CLOUDWATCH, e["eventId"], _iso_ms(e["timestamp"]), first_line,
                               None, function, trace, _ms_cursor(e["timestamp"]),
                               (("function", function), ("log stream", str(e.get("logStreamName") or "")))))
        return Page(out, out[-1].cursor if out else None, len(out), False)  # every match after `after`, at once

    return Source(f"{rules.CLOUDWATCH}#{function}", read)


def all_sources(ctx: "Ctx", org_ids: list[str], log_group_prefix: str, github: "GitHub | None" = None) -> list[Source]:
    """Every source, in reading order: tenants' failures per org (with their repositories' failed CI runs
    when a GitHub client is given), then the platform's own."""
    from chalicelib.core.context import Ctx
    from chalicelib.ops import ci

    sources: list[Source] = []
    with_patches = patches_available()
    org_ctxs = []
    for org_id in org_ids:
        # The system acting for that org (whoever started the scan): each domain reads its own partition.
        org_ctx = Ctx.system(org_id, trace_id=ctx.trace_id)
        org_ctxs.append(org_ctx)
        sources += [_jobs(org_ctx), _logs(org_ctx)]
        if with_patches:
            sources.append(_patches(org_ctx))
    sources += ci.sources(org_ctxs, github, ctx.now())
    sources.append(_dead_letters())
    try:
        groups = adapters.log_groups(log_group_prefix)
    except Exception as error:  # noqa: BLE001 - CloudWatch unavailable must not stop the tenant sources
        log.warning("cloudwatch log groups unavailable: %s", type(error).__name__)
        groups = []
    sources += [_cloudwatch(g, log_group_prefix) for g in groups]
    from chalicelib.ops import config_drift  # its own module: fleet configuration drift, one source per org

    sources += config_drift.sources(ctx, org_ids)
    return sources
