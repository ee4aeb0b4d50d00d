"""Every WebSocket event the control plane sends, and the model of its `data`.

The contract's list of events (API.md, "WebSocket protocol") is `EVENTS`'s keys;
`GET /asyncapi.json` (events/asyncapi.py) is built from it, and tests validate
every event they see against that document.

Where an event's data is an entity's API view (a session, a task, a command),
the entry names the domain's response model by import path ("module:Model"):
it is imported on first use, so importing this module imports no domain. Where
the data is the event's own (job:progress, instance:log, ...), the model is
here; a model that wraps or extends a domain's view is built by a function on
first use for the same reason.

Optional fields are exactly those an emit site may leave out; event models
refuse unknown fields, so a field the app adds without saying so here fails
the tests that see it.
"""
from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


def _never_null(schema: dict[str, Any]) -> None:
    """A field the emit site leaves out rather than sending null: absent, or of its type."""
    options = [o for o in schema.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    schema.pop("default", None)


def omittable(description: str | None = None) -> Any:
    """An optional field that is absent, never null, when it does not apply."""
    return Field(default=None, description=description, json_schema_extra=_never_null)


class EventData(BaseModel):
    """An event's own payload: camelCase, and no field beside the declared ones."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, extra="forbid", defer_build=True)


# --- system --------------------------------------------------------------------------

class SystemConnected(EventData):
    """The first message on every connection."""

    timestamp: str
    connection_id: str


class SystemPong(EventData):
    """The answer to `{"action": "ping"}`."""

    timestamp: str


class BatchedEvent(BaseModel):
    """One event inside a system:batch message, exactly as it would travel alone."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(description="The event's name (any event of this document but the system ones)")
    data: dict[str, Any] = Field(description="The event's payload, as that event's message carries it")


class SystemBatch(EventData):
    """Several events in one message, in order: only to a connection opened with `?batch=1`
    (fewer messages: one per socket per stream batch, not one per event)."""

    events: list[BatchedEvent]


# --- jobs (chalicelib/jobs/events.py builds them) -------------------------------------

class JobError(EventData):
    """What went wrong: the agent's report (a string becomes {code: AGENT_FAILED, message}) or the
    lease check's LEASE_EXPIRED / TIMED_OUT."""

    code: str
    message: str
    details: Any = None


class JobQueued(EventData):
    """A new job (agentId or pool, priority), or a job re-queued after its lease expired (runId of
    the expired run, reason LEASE_EXPIRED; agentId and pool both present, one of them null)."""

    job_id: str
    status: Literal["QUEUED"]
    type: str
    agent_id: Optional[str] = None
    pool: Optional[str] = None
    attempts: int
    at: str
    priority: Optional[int] = omittable("On a new job only")
    run_id: Optional[str] = omittable("On a re-queue only: the run whose lease expired")
    reason: Optional[Literal["LEASE_EXPIRED"]] = omittable("On a re-queue only")


class JobProgress(EventData):
    job_id: str
    run_id: str
    status: Literal["RUNNING"]
    claimed_by: str
    progress_percent: float = Field(ge=0, le=100)
    progress_message: Optional[str] = omittable("Absent when the agent sent none")
    at: str


class JobCompleted(EventData):
    job_id: str
    run_id: str
    status: Literal["COMPLETED"]
    claimed_by: str
    at: str
    result: Any = omittable("Absent when the agent reported none")
    error: Optional[JobError] = omittable("Present only when the agent reported one")


class JobFailed(EventData):
    """The agent reported a failure (jobId, runId, claimedBy, error, result?), or the lease check
    failed the run (LEASE_EXPIRED on the last attempt, TIMED_OUT): then also type, agentId, pool
    (one of them null) and attempts."""

    job_id: str
    run_id: str
    status: Literal["FAILED"]
    claimed_by: str
    at: str
    error: JobError
    result: Any = omittable("Absent unless the agent reported one")
    type: Optional[str] = omittable("From the lease check only")
    agent_id: Optional[str] = Field(default=None, description="From the lease check only (null for a pool job)")
    pool: Optional[str] = Field(default=None, description="From the lease check only (null for an agent's job)")
    attempts: Optional[int] = omittable("From the lease check only")


class JobCancelled(EventData):
    job_id: str
    status: Literal["CANCELLED"]
    type: str
    agent_id: Optional[str] = omittable("The target agent, for an agent's job")
    pool: Optional[str] = omittable("The target pool, for a pool job")
    attempts: int
    at: str
    run_id: Optional[str] = omittable("The run it stopped, when it was running")
    claimed_by: Optional[str] = omittable("The agent running it, when one claimed it")


# --- delivery reports, ops --------------------------------------------------------------

class ReportGenerated(EventData):
    """A summary: the report itself is at GET /api/delivery/reports?orderId=."""

    order_id: str
    generated_at: str
    success_rate: Optional[float] = Field(description="applied / (applied + failed + rejected) operations; "
                                                      "null when none was decided")
    batches: int
    last_activity_at: str


class OpsIssueChanged(EventData):
    """An ops issue was opened, commented on (the failure recurred), reopened or claimed. Every
    field is present; those the group does not have yet are null."""

    id: str
    action: Literal["opened", "commented", "reopened", "claimed"]
    title: Optional[str]
    severity: Optional[Literal["critical", "high", "medium", "low"]]
    status: Optional[Literal["open", "in_progress", "closed"]]
    count: Optional[int]
    github_number: Optional[int]
    github_url: Optional[str]


# --- fleet configuration, GitHub tools (in the contract; no emit site yet) ---------------

class ConfigChanged(EventData):
    """A hint: the gateway fetches its merged document over HTTPS (GET /agents/{agentId}/config)."""

    agent_id: str
    version: int = Field(ge=1)


class GithubError(EventData):
    code: str
    message: str


class GithubInvoked(EventData):
    """The outcome of a GitHub tool call that did not answer at once (approved later, or retried
    after GitHub rate-limited it): `result` when it succeeded, `error` when it failed."""

    invocation_id: str
    tool: str
    repo: str
    status: Literal["succeeded", "failed"]
    result: Any = omittable("When status is succeeded")
    error: Optional[GithubError] = omittable("When status is failed")


# --- payloads that wrap or extend a domain's view (built on first use) --------------------

@cache
def instance_log() -> type[BaseModel]:
    from chalicelib.logs.models import LogEntry

    class InstanceLog(EventData):
        """New entries of one instance (a push is split into events of at most ~100 KB)."""

        instance_id: str
        agent_id: str
        entries: list[LogEntry] = Field(min_length=1)

    return InstanceLog


@cache
def patch_requested() -> type[BaseModel]:
    from chalicelib.patches.models import PatchEvent

    class PatchRequested(PatchEvent):
        """The stored `requested` event (file and op absent) with the batch's workspace and size."""

        model_config = ConfigDict(extra="forbid")
        workspace: str
        operations: int = Field(ge=1)

    return PatchRequested


@cache
def patch_outcome() -> type[BaseModel]:
    from chalicelib.patches.models import MatchedBy, PatchEvent

    class PatchOutcome(PatchEvent):
        """One operation's stored event (applied, failed or rejected) with its workspace and index."""

        model_config = ConfigDict(extra="forbid")
        workspace: str
        index: int = Field(ge=0)
        matched_by: Optional[MatchedBy] = omittable("For anchored operations that matched")

    return PatchOutcome


# A model, "module:Model" (a domain's response model, imported on first use), or a function that builds one.
PayloadRef = Union[type[BaseModel], str, Callable[[], type[BaseModel]]]

EVENTS: dict[str, PayloadRef] = {
    "system:connected": SystemConnected,
    "system:pong": SystemPong,
    "system:batch": SystemBatch,
    "job:queued": JobQueued,
    "job:progress": JobProgress,
    "job:completed": JobCompleted,
    "job:failed": JobFailed,
    "job:cancelled": JobCancelled,
    "instance:log": instance_log,
    "command:issued": "chalicelib.commands.models:CommandResponse",
    "command:acked": "chalicelib.commands.models:CommandResponse",
    "session:updated": "chalicelib.sessions.models:Session",
    "task:updated": "chalicelib.tasks.models:Task",
    "approval:requested": "chalicelib.tasks.models:Approval",
    "approval:decided": "chalicelib.tasks.models:Approval",
    "patch:requested": patch_requested,
    "patch:applied": patch_outcome,
    "patch:failed": patch_outcome,
    "patch:rejected": patch_outcome,
    "report:generated": ReportGenerated,
    "ops:issue": OpsIssueChanged,
    "config:changed": ConfigChanged,
    "github:invoked": GithubInvoked,
}

# What the event says happened, beside its name (the AsyncAPI message's summary).
SUMMARIES: dict[str, str] = {
    "system:connected": "The connection is live (always the first message)",
    "system:pong": "The answer to a ping",
    "system:batch": "Several events in one message, in order (connections opened with ?batch=1 only)",
    "job:queued": "A job waits for its agent or pool (new, or re-queued after its lease expired)",
    "job:progress": "An agent reported progress on a running job",
    "job:completed": "An agent completed a job",
    "job:failed": "A job failed (the agent said so, its last lease expired, or it timed out)",
    "job:cancelled": "An operator cancelled a queued or running job",
    "instance:log": "New log entries of an instance",
    "command:issued": "A command for an agent (the whole command)",
    "command:acked": "An agent acked or failed a command (operators only)",
    "session:updated": "A session was created or changed (the whole session)",
    "task:updated": "A task was created or changed (the whole task)",
    "approval:requested": "A task waits for a human decision (the approval with its task)",
    "approval:decided": "An approval was decided (the approval with its task)",
    "patch:requested": "A patch batch was accepted and queued",
    "patch:applied": "One operation of a batch applied",
    "patch:failed": "One operation of a batch failed",
    "patch:rejected": "One operation was not applied because its batch failed or was refused",
    "report:generated": "A delivery report was (re)built for an order",
    "ops:issue": "An ops issue was opened, commented, reopened or claimed",
    "config:changed": "An agent's desired configuration changed (fetch it over HTTPS)",
    "github:invoked": "A deferred GitHub tool call finished",
}


class UnknownEvent(ValueError):
    pass


@cache
def model(event: str) -> type[BaseModel]:
    """The model of `event`'s data (a domain's response model is imported now)."""
    try:
        ref = EVENTS[event]
    except KeyError:
        raise UnknownEvent(f"{event!r} is not an event of the WebSocket contract") from None
    if isinstance(ref, str):
        module, _, name = ref.partition(":")
        found: type[BaseModel] = getattr(importlib.import_module(module), name)
        return found
    if isinstance(ref, type):
        return ref
    return ref()


def validate(event: str, data: dict[str, Any]) -> None:
    """Raise UnknownEvent, or jsonschema.ValidationError when `data` is not what `event` carries.

    Checked against the AsyncAPI document (events/asyncapi.py), as `data` travels (through JSON):
    the same schema clients and tests see, strict about types and closed to unknown fields. For
    tests and CHECK_RESPONSES=1 only (jsonschema is a development dependency)."""
    from chalicelib.events import asyncapi

    asyncapi.check(event, data)
