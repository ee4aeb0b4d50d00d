"""GitHub tools: the allow-list of repositories per organization, the tool registry, invocations.

An invocation (POST /github/tools/{name}/invoke) goes:

  input validated (400 naming input.<field>) -> the repository allow-listed for the tool, the
  branch under the caller's prefix, paths and commit size (4xx, audited, nothing sent to GitHub)
  -> the organization's rate limit (429) -> either
     - a person must approve (the repository's requireApproval): a task with a pending approval
       (the tasks domain) whose payload is the invocation; 202 {approvalId, status: awaiting_approval};
       the outbox stream's `approval:decided` runs it (`on_outbox_items`);
     - or it runs now: 200 {result}; when GitHub rate-limits it, 202 {invocationId, status: queued}
       and it runs again from the retry queue after GitHub's wait (`retry_record`).
  A deferred run is claimed once (store.claim_invocation) and announces `github:invoked`. The claim is
  a lease (rules.LEASE_SECONDS): a run that died holding it is taken over by a redelivery after it.

Every outcome is audited (entity `github-invocation`, the invocation's id: tool, repo, actor).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable

import pydantic

from chalicelib.core import clock, ids
from chalicelib.core.context import Ctx
from chalicelib.core.errors import (ApiError, Conflict, Forbidden, NotFound, RateLimited, Unavailable,
                                    ValidationError)
from chalicelib.core.tx import Tx, TxFailed
from chalicelib.github_tools import adapters, credentials, models, rules, store, tools
from chalicelib.github_tools.client import GitHubError
from chalicelib.github_tools.client import RateLimited as GitHubRateLimited
from chalicelib.patches import service as patches
from chalicelib.sessions import service as sessions
from chalicelib.tasks import service as tasks
from chalicelib.tasks.rules import TaskStatus
from chalicelib.workspaces import service as workspaces

log = logging.getLogger(__name__)

ENTITY = "github-invocation"
REPOS_ENTITY = "github-repos"
TASK_TYPE = "github:invoke"
MAX_ATTEMPTS = 6          # runs of one invocation GitHub may rate-limit before it is failed
# A result larger than this as JSON is not carried by github:invoked (an event must fit a WebSocket
# message, 128 KB, and an outbox item); the event says so and the agent invokes the read again.
EVENT_RESULT_LIMIT = 60_000


# --- the allow-list ------------------------------------------------------------------------

def put_repos(ctx: Ctx, command: models.RepoListPut) -> models.RepoList:
    """Replace the organization's allow-list (admin): one item, audited in the same commit."""
    listing = models.RepoList(
        repos=[models.AllowedRepo(repo=r.repo, tools=r.tools, require_approval=r.require_approval)
               for r in command.repos],
        updated_at=ctx.iso(), updated_by=ctx.actor)
    tx = ctx.tx()
    tx.put("repos", store.repos_put(ctx.org_id, listing))
    tx.audit(REPOS_ENTITY, ctx.org_id, "replaced", {"repos": [r.repo for r in listing.repos][:50],
                                                     "count": len(listing.repos)})
    tx.commit()
    return listing


def get_repos(ctx: Ctx) -> models.RepoList:
    return store.repos(ctx.org_id)


def allowed_repositories(org_id: str) -> list[models.AllowedRepo]:
    """The organization's allow-listed repositories, for other domains (the ops scan's CI-failures
    source reads which repositories it may look at). One strongly consistent GetItem."""
    return store.repos(org_id).repos


def allowed_repository(org_id: str, repo: str) -> models.AllowedRepo | None:
    """One repository's entry (names compared case-insensitively, as GitHub does), or None."""
    wanted = repo.lower()
    return next((r for r in allowed_repositories(org_id) if r.repo.lower() == wanted), None)


# --- the registry ----------------------------------------------------------------------------

def list_tools(ctx: Ctx) -> list[models.ToolSpec]:
    return [models.ToolSpec(name=t.name, description=t.description, input_schema=t.input_schema())
            for t in tools.TOOLS.values()]


# --- invoking ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Invoke:
    tool: str
    input: dict[str, Any]
    session_id: str | None = None


@dataclass(frozen=True)
class Invoked:
    status: int                 # 200 (ran), 202 (awaiting approval or queued)
    body: models.InvokeResult


def _input_error(error: pydantic.ValidationError) -> ValidationError:
    details = [{"field": ".".join(["input", *(str(p) for p in e["loc"])]), "message": e["msg"]}
               for e in error.errors(include_url=False)][:20]
    return ValidationError("invalid tool input: " + "; ".join(f"{d['field']}: {d['message']}" for d in details[:3]),
                           details)


def _audit(ctx: Ctx, invocation_id: str, action: str, details: dict[str, Any]) -> None:
    tx = ctx.tx()
    tx.audit(ENTITY, invocation_id, action, details)
    tx.commit()


def _deny(ctx: Ctx, spec: dict[str, Any], error: ApiError) -> ApiError:
    """Audit a refusal (nothing was sent to GitHub) and hand the error back to raise."""
    _audit(ctx, spec["invocationId"], "denied", {"tool": spec["tool"], "repo": spec.get("repo"),
                                                 "actor": ctx.actor, "code": error.code,
                                                 "reason": error.message[:300]})
    return error


def _principal_agent(ctx: Ctx) -> str | None:
    return ctx.principal.agent_id if ctx.principal is not None else None


def invoke(ctx: Ctx, command: Invoke) -> Invoked:
    tool = tools.TOOLS.get(command.tool)
    if tool is None:
        raise NotFound(f"no tool {command.tool[:64]}; GET /github/tools lists them")
    try:
        parsed = tool.model.model_validate(command.input)
    except pydantic.ValidationError as e:
        raise _input_error(e) from None
    agent_id = _principal_agent(ctx)
    if command.session_id is not None:
        if not sessions.could_exist(command.session_id):
            raise ValidationError.field("sessionId", "is not a session id")
        session = sessions.get(ctx, command.session_id)
        if agent_id and session.owner_agent_id and session.owner_agent_id != agent_id:
            raise Forbidden("the session belongs to another agent",
                            [{"field": "sessionId", "message": "another agent's session"}])
    spec: dict[str, Any] = {
        "invocationId": ids.new_id(), "orgId": ctx.org_id, "tool": tool.name, "repo": parsed.repo,
        "input": parsed.model_dump(mode="json", by_alias=True, exclude_none=True),
        "prefix": rules.branch_prefix(command.session_id, agent_id, ctx.actor), "actor": ctx.actor,
        "agentId": agent_id, "sessionId": command.session_id, "traceId": ctx.trace_id, "attempt": 1,
    }
    entry = allowed_repository(ctx.org_id, parsed.repo)
    if entry is None:
        raise _deny(ctx, spec, Forbidden(f"{parsed.repo} is not on the organization's allow-list",
                                         [{"field": "input.repo", "message": "not allow-listed"}]))
    if tool.name not in entry.tools:
        raise _deny(ctx, spec, Forbidden(f"{tool.name} is not allowed on {entry.repo}",
                                         [{"field": "input.repo", "message": f"{tool.name} not allowed here"}]))
    spec["repo"] = entry.repo  # as the allow-list spells it
    if tool.writes_branch:
        branch = getattr(parsed, tool.writes_branch)
        if not branch.startswith(spec["prefix"]) or branch == spec["prefix"]:
            raise _deny(ctx, spec, Forbidden(
                f"branches you write must start with {spec['prefix']}",
                [{"field": f"input.{tool.writes_branch}", "message": f"must start with {spec['prefix']}"}]))
    files: list[tuple[str, bytes]] | None = None
    if isinstance(parsed, tools.CommitFilesInput):
        try:
            spec["files"], spec["workspace"], files = _commit_source(ctx, parsed)
        except ApiError as refused:
            raise _deny(ctx, spec, refused) from None
    _take_rate(ctx)
    if tool.name in entry.require_approval:
        return _await_approval(ctx, spec)
    return _run_now(ctx, spec, files)


def _commit_source(ctx: Ctx, parsed: tools.CommitFilesInput) -> tuple[dict[str, str], str, list[tuple[str, bytes]]]:
    """({path: sha256}, workspace, [(path, content)]) of a commit, checked: paths inside the repository,
    at most 100 files and 1 MiB (400 naming the field)."""
    if parsed.batch_id is not None:
        batch = patches.get_batch(ctx, parsed.batch_id)
        if batch.status != "applied":
            raise Conflict(f"batch {parsed.batch_id} is {batch.status}: only an applied batch's files are committed",
                           [{"field": "input.batchId", "message": f"batch is {batch.status}"}])
        paths = list(dict.fromkeys(r.file for r in batch.results if r.status == "applied"))
        workspace, field = batch.workspace, "input.batchId"
    else:
        assert parsed.workspace is not None  # the model requires one source
        paths, workspace, field = list(dict.fromkeys(parsed.paths)), parsed.workspace, "input.paths"
    for index, path in enumerate(paths):
        problem = rules.path_problem(path)
        if problem:
            raise ValidationError.field(f"{field}.{index}" if field == "input.paths" else field, f"{path[:200]}: {problem}")
    too_many = rules.commit_problem([0] * len(paths))
    if too_many:
        raise ValidationError.field(field, too_many)
    snap = workspaces.snapshot(ctx, workspace)
    sizes = {p: int(snap.manifest.files[p]["size"]) for p in paths if p in snap.manifest.files}
    missing = [p for p in paths if p not in sizes]
    if missing:
        raise ValidationError.field(field, f"no file {missing[0][:200]} in workspace {workspace}")
    too_big = rules.commit_problem(list(sizes.values()))  # on the manifest, before any content is read
    if too_big:
        raise ValidationError.field(field, too_big)
    digests = {p: str(snap.manifest.files[p]["sha256"]) for p in paths}
    return digests, workspace, [(p, snap.read(p) or b"") for p in paths]


def _files_now(ctx: Ctx, spec: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The commit's files as they are now; 409 when one changed since the call was checked (and approved)."""
    if spec["tool"] != "commit_files":
        return []
    snap = workspaces.snapshot(ctx, spec["workspace"])
    out = []
    for path, digest in spec["files"].items():
        entry = snap.manifest.files.get(path)
        if entry is None or entry["sha256"] != digest:
            raise Conflict(f"{path} changed in workspace {spec['workspace']} after the call was made; invoke again")
        out.append((path, snap.read(path) or b""))
    return out


def _take_rate(ctx: Ctx) -> None:
    now = ctx.now()
    minute = int(now // 60)
    tx = ctx.tx()
    tx.update("rate", store.take_rate(ctx.org_id, minute, ctx.settings.github_tools_per_minute))
    try:
        tx.commit()
    except TxFailed:
        wait = max(1, math.ceil((minute + 1) * 60 - now))
        raise RateLimited(f"the organization made {ctx.settings.github_tools_per_minute} GitHub tool calls this "
                          f"minute; retry in {wait} s", headers={"Retry-After": str(wait)}) from None


def _await_approval(ctx: Ctx, spec: dict[str, Any]) -> Invoked:
    task, _ = tasks.create(ctx, tasks.CreateTask(
        idempotency_key=f"github:{spec['invocationId']}", to_role="github", type=TASK_TYPE, payload=spec,
        session_id=spec["sessionId"], from_role=ctx.actor, requires_approval=True))
    _audit(ctx, spec["invocationId"], "awaiting_approval", {"tool": spec["tool"], "repo": spec["repo"],
                                                            "actor": ctx.actor, "approvalId": task.approval_id,
                                                            "taskId": task.task_id})
    return Invoked(202, models.InvokeResult(approval_id=task.approval_id, invocation_id=spec["invocationId"],
                                            status="awaiting_approval"))


def github_error(error: GitHubError) -> ApiError:
    """What the caller sees of GitHub's refusal (its message, never our credential)."""
    message = f"GitHub: {tools.untrusted(error.message, 300)}"
    if error.status == 404:
        return NotFound(message)
    if error.status == 409:
        return Conflict(message)
    if error.status == 422:
        details = [{"field": "input." + str(e.get("field") or e.get("resource") or ""),
                    "message": tools.untrusted(e.get("message") or e.get("code") or "invalid", 200)}
                   for e in error.errors]
        return ValidationError(message, details or None)
    if error.status in (401, 403):
        return Unavailable("GitHub refused the control plane's credential for this repository", headers={})
    return Unavailable(f"GitHub could not be reached or failed ({error.status or 'no answer'})",
                       headers={"Retry-After": "30"})


def _execute(ctx: Ctx, spec: dict[str, Any], files: list[tuple[str, bytes]] | None = None
             ) -> tuple[dict[str, Any], int]:
    tool = tools.TOOLS[spec["tool"]]
    if files is None:
        files = _files_now(ctx, spec)
    gh = credentials.client_for(spec["repo"], tool.name)
    try:
        result = tool.run(tools.Run(gh, spec["repo"], spec["prefix"], files), tool.model.model_validate(spec["input"]))
    finally:
        spec["calls"] = gh.calls
    return result, gh.calls


def _run_now(ctx: Ctx, spec: dict[str, Any], files: list[tuple[str, bytes]] | None) -> Invoked:
    base = {"tool": spec["tool"], "repo": spec["repo"], "actor": ctx.actor}
    try:
        result, calls = _execute(ctx, spec, files)
    except GitHubRateLimited as limited:
        _queue(spec, limited, ctx.now())
        _audit(ctx, spec["invocationId"], "queued", {**base, "waitSeconds": math.ceil(limited.wait_seconds),
                                                     "limit": limited.kind})
        return Invoked(202, models.InvokeResult(invocation_id=spec["invocationId"], status="queued"))
    except GitHubError as refused:
        error = github_error(refused)
        _audit(ctx, spec["invocationId"], "failed", {**base, "code": error.code, "githubStatus": refused.status})
        raise error from None
    except ApiError as refused:  # the default or a protected branch, a changed file
        raise _deny(ctx, spec, refused) from None
    _audit(ctx, spec["invocationId"], "succeeded", {**base, "githubCalls": calls})
    return Invoked(200, models.InvokeResult(result=result, invocation_id=spec["invocationId"]))


def _queue(spec: dict[str, Any], limited: GitHubRateLimited, now: float) -> None:
    """Back on the retry queue until GitHub's wait is over. A wait longer than SQS's longest delay
    (900 s; a primary limit can last an hour) hops through the queue without asking GitHub
    (`notBefore`), so waiting costs no request."""
    wait = max(1.0, limited.wait_seconds)
    adapters.send_retry({**spec, "attempt": int(spec.get("attempt", 1)) + 1, "notBefore": now + wait},
                        math.ceil(min(900.0, wait)))


# --- deferred runs: after an approval, or from the retry queue ------------------------------------

class LeaseHeld(Exception):
    """Another run holds the invocation's lease until `until` (epoch seconds): it may still be running.
    The delivery must come back after that (the queue: report the record failed, SQS redelivers it after
    its visibility timeout; the stream reader hands it to the queue with the lease's rest as its delay)."""

    def __init__(self, invocation_id: str, until: float):
        super().__init__(f"invocation {invocation_id} is leased to another run until {until:.0f}")
        self.invocation_id = invocation_id
        self.until = until


def _claim(ctx: Ctx, spec: dict[str, Any], attempt: int) -> str | None:
    """Claim the invocation for this run: its lease id, or None when there is nothing to run (its outcome
    is recorded, or a later attempt has it). Raises LeaseHeld while another run's lease is live.

    A fresh claim first (one conditional put); when it fails, the item it hands back says why, and an
    expired lease is taken over with a put conditional on that same lease (exactly one taker)."""
    lease_id = ids.new_id()
    args = (ctx.org_id, spec["invocationId"], attempt, spec["tool"], spec["repo"])
    claim = ctx.tx()
    claim.put("claim", store.claim_invocation(*args, ctx.iso(), ctx.now(), lease_id))
    try:
        claim.commit()
        return lease_id
    except TxFailed as failed:
        seen = failed.item if failed.item is not None else store.get_invocation(*args[:2])
    if seen is None:
        return None  # released by its run this very moment: that run's own redelivery runs it
    verdict = rules.claim_verdict(seen, attempt, ctx.now())
    if verdict == rules.DONE:
        return None
    if verdict == rules.HELD:
        raise LeaseHeld(spec["invocationId"], float(seen["leaseUntil"]))
    take = ctx.tx()
    take.put("claim", store.take_over_invocation(*args, ctx.iso(), ctx.now(), lease_id, seen))
    take.audit(ENTITY, spec["invocationId"], "taken_over", {
        "tool": spec["tool"], "repo": spec["repo"], "attempt": attempt, "expiredAttempt": seen.get("attempt"),
        "expiredLeaseUntil": seen.get("leaseUntil"), "claimedAt": seen.get("updatedAt")})
    try:
        take.commit()
    except TxFailed as lost:  # another run took it first (or it finished): theirs it is
        now_item = lost.item if lost.item is not None else store.get_invocation(*args[:2])
        if now_item is not None and rules.claim_verdict(now_item, attempt, ctx.now()) == rules.HELD:
            raise LeaseHeld(spec["invocationId"], float(now_item["leaseUntil"])) from None
        return None
    log.warning("github invocation %s: the run holding it since %s did not finish; taken over (attempt %s)",
                spec["invocationId"], seen.get("updatedAt"), attempt)
    return lease_id


def run_deferred(spec: dict[str, Any]) -> str:
    """Run an approved or queued invocation once; announce `github:invoked`. Returns what happened.
    Raises LeaseHeld when another run holds it (the caller arranges the redelivery)."""
    ctx = Ctx.system(spec["orgId"], spec.get("traceId"))
    attempt = int(spec.get("attempt", 1))
    early = float(spec.get("notBefore") or 0) - ctx.now()
    if early > 1:  # a wait longer than one SQS delay: hop again, GitHub is not asked
        adapters.send_retry(spec, math.ceil(min(900.0, early)))
        return "waiting"
    lease_id = _claim(ctx, spec, attempt)
    if lease_id is None:
        return "duplicate"  # delivered again (stream or queue): it ran already, or a later attempt has it
    try:
        return _run_claimed(ctx, spec, attempt, lease_id)
    except Exception:
        # Not GitHub's answer nor a refusal of ours (DynamoDB or S3 unavailable): give the claim back
        # so the redelivery (the stream's retry, the queue's visibility timeout) runs it, and fail.
        # If even that fails, the lease expires and the redelivery takes it over.
        release = ctx.tx()
        release.delete("claim", store.release_invocation(ctx.org_id, spec["invocationId"], lease_id))
        try:
            release.commit()
        except Exception:  # noqa: BLE001 - the original failure is the one to raise
            log.warning("github invocation %s: the claim was not given back; its lease will expire",
                        spec["invocationId"])
        raise


def _run_claimed(ctx: Ctx, spec: dict[str, Any], attempt: int, lease_id: str) -> str:
    base = {"tool": spec["tool"], "repo": spec["repo"], "actor": spec.get("actor"), "attempt": attempt}
    try:
        result, calls = _execute(ctx, spec)
    except GitHubRateLimited as limited:
        if attempt < MAX_ATTEMPTS:
            _queue(spec, limited, ctx.now())
            tx = ctx.tx()
            tx.update("invocation", store.finish_invocation(ctx.org_id, spec["invocationId"], "queued", ctx.iso(),
                                                            None, lease_id))
            tx.audit(ENTITY, spec["invocationId"], "queued", {**base, "waitSeconds": math.ceil(limited.wait_seconds)})
            return _record(tx, spec, "queued")
        return _finish(ctx, spec, lease_id, base, error={"code": "RATE_LIMITED",
                                                         "message": f"GitHub rate-limited it {attempt} times"})
    except GitHubError as refused:
        error = github_error(refused)
        return _finish(ctx, spec, lease_id, {**base, "githubStatus": refused.status},
                       error={"code": error.code, "message": error.message})
    except ApiError as refused:
        return _finish(ctx, spec, lease_id, base, error={"code": refused.code, "message": refused.message})
    return _finish(ctx, spec, lease_id, {**base, "githubCalls": calls}, result=result)


def _record(tx: Tx, spec: dict[str, Any], outcome: str) -> str:
    """Commit a run's outcome; "superseded" when the run's lease was taken over meanwhile (it ran past its
    lease: the run that took over records the outcome, and announces it, once)."""
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name != "invocation":
            raise
        log.warning("github invocation %s: this run's lease was taken over; its outcome (%s) is not recorded",
                    spec["invocationId"], outcome)
        return "superseded"
    return outcome


def _event_data(spec: dict[str, Any], result: dict[str, Any] | None, error: dict[str, str] | None) -> dict[str, Any]:
    data: dict[str, Any] = {"invocationId": spec["invocationId"], "tool": spec["tool"], "repo": spec["repo"],
                            "status": "failed" if error is not None else "succeeded"}
    if error is not None:
        data["error"] = error
    elif len(json.dumps(result)) <= EVENT_RESULT_LIMIT:
        data["result"] = result
    else:
        data["result"] = {"truncated": True, "message": f"the result is over {EVENT_RESULT_LIMIT} bytes as JSON: "
                                                        "invoke the tool again (with a smaller limit) to read it"}
    return data


def _finish(ctx: Ctx, spec: dict[str, Any], lease_id: str, details: dict[str, Any],
            result: dict[str, Any] | None = None, error: dict[str, str] | None = None) -> str:
    data = _event_data(spec, result, error)
    status = str(data["status"])
    tx = ctx.tx()
    tx.update("invocation", store.finish_invocation(ctx.org_id, spec["invocationId"], status, ctx.iso(),
                                                    {"error": error} if error else {"result": data["result"]},
                                                    lease_id))
    tx.audit(ENTITY, spec["invocationId"], status, {**details, **({"code": error["code"]} if error else {})})
    tx.emit("github:invoked", data, agent_id=spec.get("agentId"))
    if _record(tx, spec, status) == "superseded":
        return "superseded"
    _close_task(ctx, spec, status, data)
    return status


def _close_task(ctx: Ctx, spec: dict[str, Any], status: str, data: dict[str, Any]) -> None:
    """The approval's task follows the run: completed or failed, with the outcome as its result."""
    task_id = spec.get("taskId")
    if not task_id or status not in ("succeeded", "failed"):
        return
    outcome = {k: v for k, v in data.items() if k != "result"}  # the event carries the result; the task, the verdict
    try:
        tasks.update(ctx, tasks.UpdateTask(task_id=task_id, status=TaskStatus.COMPLETED if status == "succeeded"
                                           else TaskStatus.FAILED, result=outcome))
    except ApiError:
        pass  # moved by someone else (PUT /tasks): theirs stands


def _rejected(spec: dict[str, Any], decided_by: str | None) -> str:
    """A rejected approval: the invocation is failed and announced in one commit (nothing ran, so there is
    no claim to leave behind); a redelivery finds the item and does nothing."""
    ctx = Ctx.system(spec["orgId"], spec.get("traceId"))
    error = {"code": "REJECTED", "message": f"the approval was rejected by {decided_by or 'a person'}"}
    data = _event_data(spec, None, error)
    tx = ctx.tx()
    tx.put("invocation", store.rejected_invocation(ctx.org_id, spec["invocationId"], spec["tool"], spec["repo"],
                                                   ctx.iso(), ctx.now(), {"error": error}))
    tx.audit(ENTITY, spec["invocationId"], "failed", {"tool": spec["tool"], "repo": spec["repo"],
                                                      "actor": spec.get("actor"), "decidedBy": decided_by,
                                                      "code": "REJECTED"})
    tx.emit("github:invoked", data, agent_id=spec.get("agentId"))
    try:
        tx.commit()
    except TxFailed as failed:
        if failed.name != "invocation":
            raise
        return "duplicate"
    return "failed"  # the task was rejected already: it does not follow


def on_outbox_items(items: Iterable[dict[str, Any]]) -> dict[str, int]:
    """The outbox stream's `approval:decided` events of GitHub invocations: approved ones run (once),
    rejected ones are announced failed. Other events are skipped without a read."""
    done: dict[str, int] = {}
    for item in items:
        if item.get("event") != "approval:decided":
            continue
        data = json.loads(item["data"]) if isinstance(item.get("data"), str) else item.get("data") or {}
        task = data.get("task") or {}
        if task.get("type") != TASK_TYPE or not isinstance(task.get("payload"), dict):
            continue
        spec = {**task["payload"], "taskId": task.get("taskId")}
        if spec.get("orgId") != item.get("orgId"):
            continue  # a payload naming another organization is not ours to run
        if data.get("status") != "approved":
            outcome = _rejected(spec, data.get("decidedBy"))
        else:
            try:
                outcome = run_deferred(spec)
            except LeaseHeld as held:
                outcome = _hand_to_queue(spec, held)
        done[outcome] = done.get(outcome, 0) + 1
    return done


def _hand_to_queue(spec: dict[str, Any], held: LeaseHeld) -> str:
    """The stream delivered an approved run again while a run holds its lease: the earlier delivery's
    run died (Lambda retries a stream batch after the function failed or timed out) or is still going.
    The stream is not held up until the lease ends: the run goes on the retry queue, due when the lease
    has ended. The queue's consumer then takes it over, or finds it done."""
    wait = max(1, math.ceil(held.until - clock.now()) + 1)
    adapters.send_retry(spec, min(900, wait))
    return "handed_to_queue"


def retry_record(body: str) -> str:
    """One message of the retry queue (a rate-limited invocation due now, or a run handed over by the
    stream reader). Raises LeaseHeld while another run holds it: the record is reported failed and SQS
    redelivers it after the queue's visibility timeout, longer than a lease (rules.LEASE_SECONDS)."""
    return run_deferred(json.loads(body))
