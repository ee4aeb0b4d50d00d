from __future__ import annotations

from chalice import Blueprint

from chalicelib.agents.routes import act_as
from chalicelib.core.paging import next_token as encode_token, start_key as page_start
from chalicelib.core.api import Call, endpoint
from chalicelib.core.auth import Scope
from chalicelib.core.errors import ValidationError
from chalicelib.jobs import models, service

bp = Blueprint(__name__)
TAG = "Agents and jobs"


def _as_agent(call: Call, agent_id: str, fn, *args):
    """An agent-side operation, as that agent only (another agent's key: 403)."""
    act_as(call, agent_id)
    return fn(*args)


@endpoint(bp, "/jobs", "POST", scope=Scope.OPERATOR, body=models.CreateJobRequest, response=models.JobResponse,
          status=201, tag=TAG, errors=(404, 409),
          summary="Queue a job for one agent (agentId) or for any active agent of a pool (pool); emits job:queued")
def create_job(call: Call) -> dict:
    return service.create(call.principal, call.body, call.trace_id)


@endpoint(bp, "/jobs", "GET", scope=Scope.OPERATOR, query=models.JobListQuery, response=models.JobList, tag=TAG,
          summary="List jobs, newest first, by agentId or pool and by status (each filter an index query)")
def list_jobs(call: Call) -> dict:
    q = call.query
    if q.agent_id is not None and q.pool is not None:
        raise ValidationError.field("pool", "filter by agentId or by pool, not both (a job has one target)")
    scope = f"jobs:{call.org_id}:{q.agent_id or ''}:{q.pool or ''}:{q.status or ''}"
    start = page_start(q.next_token, scope)
    items, last = service.list_page(call.org_id, q.agent_id, q.pool, q.status, q.limit, start)
    return {"items": items, "nextToken": encode_token(last, scope)}


@endpoint(bp, "/jobs/poll", "GET", scope=Scope.AGENT, query=models.PollQuery, response=models.PollResponse,
          tag=TAG, summary="Claim up to `max` queued jobs of the agent and its pools (priority, then age)")
def poll(call: Call) -> dict:
    q = call.query
    return _as_agent(call, q.agent_id, service.poll, call.org_id, q.agent_id, q.max)


@endpoint(bp, "/jobs/progress", "POST", scope=Scope.AGENT, body=models.ProgressRequest, status=204, tag=TAG,
          errors=(404, 409), summary="Report progress of a run; renews its lease; emits job:progress")
def progress(call: Call) -> None:
    b = call.body
    _as_agent(call, b.agent_id, service.progress, call.org_id, b.job_id, b.run_id, b.agent_id, b.percent, b.message)
    return None


@endpoint(bp, "/jobs/complete", "POST", scope=Scope.AGENT, body=models.CompleteRequest, status=204, tag=TAG,
          errors=(404, 409), summary="Finish a run as COMPLETED or FAILED; emits job:completed or job:failed")
def complete(call: Call) -> None:
    b = call.body
    error = b.error.model_dump(exclude_none=True) if hasattr(b.error, "model_dump") else b.error
    _as_agent(call, b.agent_id, service.complete, call.org_id, b.job_id, b.run_id, b.agent_id, b.status,
              b.result, error)
    return None


@endpoint(bp, "/jobs/{jobId}", "GET", scope=Scope.OPERATOR, response=models.JobResponse, tag=TAG, errors=(404,),
          summary="One job, with the progress of its latest run")
def get_job(call: Call) -> dict:
    return service.get(call.org_id, call.params["jobId"])


@endpoint(bp, "/jobs/{jobId}/cancel", "POST", scope=Scope.OPERATOR, response=models.JobResponse, tag=TAG,
          errors=(404, 409), summary="Cancel a QUEUED or RUNNING job; emits job:cancelled")
def cancel(call: Call) -> dict:
    return service.cancel(call.principal, call.params["jobId"], call.trace_id)
