from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field

from chalicelib.agents.models import POOL_PATTERN
from chalicelib.core.models import ApiModel, ResponseModel
from chalicelib.jobs import rules

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


class JobResponse(ResponseModel):
    job_id: str
    agent_id: Optional[str] = None
    pool: Optional[str] = None
    claimed_by: Optional[str] = None
    type: str
    payload: Any = None
    status: JobStatus
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


class JobList(ResponseModel):
    items: list[JobResponse]
    next_token: Optional[str] = None


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
