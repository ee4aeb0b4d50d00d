from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.lazy import domain_of

if TYPE_CHECKING:
    from chalicelib.jobs import models, service
else:  # imported on first use, not when app.py registers the routes (core/lazy.py)
    models, service = domain_of(__name__)

bp, TAG = Blueprint(__name__), "Agents and jobs"


@endpoint(bp, "/jobs", "POST", scope=Scope.OPERATOR, body="CreateJobRequest", response="JobResponse",
          status=201, tag=TAG, errors=(404, 409),
          summary="Queue a job for one agent (agentId) or for any active agent of a pool (pool); emits job:queued")
def create_job(call: Call) -> models.JobResponse:
    return service.create(call.ctx, call.body)


@endpoint(bp, "/jobs", "GET", scope=Scope.OPERATOR, query="JobListQuery", response="JobList", tag=TAG,
          summary="List jobs, newest first, by agentId or pool and by status (each filter an index query)")
def list_jobs(call: Call) -> models.JobList:
    return service.list_jobs(call.ctx, call.query)


@endpoint(bp, "/jobs/poll", "GET", scope=Scope.AGENT, query="PollQuery", response="PollResponse",
          tag=TAG, summary="Claim up to `max` queued jobs of the agent and its pools (priority, then age)")
def poll(call: Call) -> models.PollResponse:
    return service.poll(call.ctx, call.query)


@endpoint(bp, "/jobs/progress", "POST", scope=Scope.AGENT, body="ProgressRequest", status=204, tag=TAG,
          errors=(404, 409), summary="Report progress of a run; renews its lease; emits job:progress")
def progress(call: Call) -> None:
    service.progress(call.ctx, call.body)


@endpoint(bp, "/jobs/complete", "POST", scope=Scope.AGENT, body="CompleteRequest", status=204, tag=TAG,
          errors=(404, 409), summary="Finish a run as COMPLETED or FAILED; emits job:completed or job:failed")
def complete(call: Call) -> None:
    service.complete(call.ctx, call.body)


@endpoint(bp, "/jobs/{jobId}", "GET", scope=Scope.OPERATOR, response="JobResponse", tag=TAG, errors=(404,),
          summary="One job, with the progress of its latest run")
def get_job(call: Call) -> models.JobResponse:
    return service.get(call.ctx, call.params["jobId"])


@endpoint(bp, "/jobs/{jobId}/cancel", "POST", scope=Scope.OPERATOR, response="JobResponse", tag=TAG,
          errors=(404, 409), summary="Cancel a QUEUED or RUNNING job; emits job:cancelled")
def cancel(call: Call) -> models.JobResponse:
    return service.cancel(call.ctx, call.params["jobId"])
