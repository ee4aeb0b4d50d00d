from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

from chalicelib.agents.models import POOL_PATTERN
from chalicelib.core.models import ApiModel, PageModel, ResponseModel, ShowsNulls
from chalicelib.jobs import rules
from chalicelib.jobs.rules import Status

JobStatus = Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
ID_PATTERN = r"^[0-9A-Za-z_.:-]+$"  # ids appear inside keys: no "#"
ID = Field(min_length=1, max_length=64, pattern=ID_PATTERN)


class CreateJobRequest(ApiModel):
    agent_id: Optional[str] = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    pool: Optional[str] = Field(default=None, pattern=POOL_PATTERN)
    type: str = Field(min_length=1, max_length=128)
    payload: Any = Field(default_factory=dict)
    priority: int = Field(default=rules.PRIORITY_DEFAULT, ge=rules.PRIORITY_MIN, le=rules.PRIORITY_MAX)
    timeout_seconds: Optional[int] = Field(default=None, ge=1, le=rules.TIMEOUT_SECONDS_MAX)
    max_attempts: int = Field(default=rules.MAX_ATTEMPTS_DEFAULT, ge=1, le=rules.MAX_ATTEMPTS_MAX)
    lease_seconds: int = Field(default=rules.LEASE_SECONDS_DEFAULT, ge=1, le=rules.LEASE_SECONDS_MAX)


# The contract's status enum (a plain string in JSON), typed as the rules' Status in code.
# (Plain validator and serializer: the enum class itself would add an unreferenced "Status" to /openapi.json.)
JobStatusField = Annotated[Status, PlainValidator(lambda value: Status(value)),
                           PlainSerializer(lambda status: status.value, return_type=str),
                           WithJsonSchema({"type": "string", "enum": [s.value for s in Status]})]


class JobResponse(rules.Targeted, ShowsNulls):
    """The job: the one entity of the JOB item and the contract's JobResponse.

    jobs/store.py maps it to and from the item (`job_item`, `job_from_item`); what the
    API does not show (the org, the completion fingerprint) is excluded from its JSON.
    Progress lives on the run item: `with_progress` copies it in for the job's current run.
    """

    org_id: str = Field(default="", exclude=True)  # not in the JSON: a response read back has none
    job_id: str
    agent_id: Optional[str] = None        # the target agent, or
    pool: Optional[str] = None            # the target pool (exactly one of the two)
    claimed_by: Optional[str] = None
    job_type: str = Field(alias="type")
    payload: Any = None
    status: JobStatusField
    attempts: int
    max_attempts: int
    priority: int
    lease_seconds: int
    timeout_seconds: Optional[int] = None
    run_id: Optional[str] = None
    created_at: str
    updated_at: str
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    progress_percent: Optional[float] = None
    progress_message: Optional[str] = None
    result: Any = None
    error: Optional[dict[str, Any]] = None
    # Fingerprint of the agent's completion (a repeat is a no-op); never shown.
    completion: Optional[str] = Field(default=None, exclude=True)

    shown_null: ClassVar[tuple[str, ...]] = ("payload",)  # a job's payload is always there, null included

    @property
    def event_agent(self) -> str | None:
        """Whose agent-key connections see events of this job: the claiming agent, else the target agent."""
        return self.claimed_by or self.agent_id

    def finished(self, status: Status, now_iso: str) -> "JobResponse":
        return self.model_copy(update={"status": status, "finished_at": now_iso, "updated_at": now_iso})

    def with_progress(self, run_id: str | None, percent: float | None, message: str | None) -> "JobResponse":
        """The job with its run's progress, while that run is the job's current one."""
        if run_id is None or run_id != self.run_id:
            return self
        return self.model_copy(update={"progress_percent": percent, "progress_message": message})


Job = JobResponse  # the entity is the contract's JobResponse


class JobList(PageModel):
    items: list[JobResponse]


class JobListQuery(ApiModel):
    agent_id: Optional[str] = Field(default=None, min_length=1, max_length=64, pattern=ID_PATTERN)
    pool: Optional[str] = Field(default=None, pattern=POOL_PATTERN)
    status: Optional[JobStatus] = None
    limit: int = Field(default=50, ge=1, le=100)
    next_token: Optional[str] = None


class PollQuery(ApiModel):
    agent_id: str = ID
    max: int = Field(default=1, ge=1, le=rules.POLL_MAX)


class PolledJob(ResponseModel):
    job_id: str
    run_id: str
    type: str
    payload: Any = None
    attempt: int
    lease_expires_at: str
    lease_seconds: int
    timeout_seconds: Optional[int] = None


class PollResponse(ResponseModel):
    jobs: list[PolledJob]
    next_poll_seconds: int


class ProgressRequest(ApiModel):
    job_id: str = ID
    run_id: str = ID
    agent_id: str = ID
    percent: float = Field(ge=0, le=100)
    message: Optional[str] = Field(default=None, max_length=1024)


class AgentError(ApiModel):
    code: Optional[str] = Field(default=None, max_length=128)
    message: Optional[str] = Field(default=None, max_length=4096)
    details: Any = None


class CompleteRequest(ApiModel):
    job_id: str = ID
    run_id: str = ID
    agent_id: str = ID
    status: Literal["COMPLETED", "FAILED"]
    result: Any = None
    error: Optional[Union[str, AgentError]] = None
