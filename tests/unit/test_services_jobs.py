"""chalicelib/jobs/service.py on the fake unit of work (no moto): what get and list return is what the routes declare.

(The jobs service's other cases are in test_services_jobs_agents_orgs.py.)"""
from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.errors import NotFound
from chalicelib.jobs import models as job_models, service as jobs, store as job_store
from chalicelib.jobs.rules import Status
from tests.unit.declared import assert_declared
from tests.unit.fakes import fake_ctx, principal
from tests.unit.test_services_jobs_agents_orgs import JID, _job, _run


def test_get_list_and_cancel_return_the_declared_models_with_the_runs_progress(monkeypatch):
    ctx, _ = fake_ctx(principal())
    job = _job(status=Status.RUNNING, run_id="R1", claimed_by="A1", payload=None)
    run = replace(_run(job), progress_percent=40.0, progress_message="half")
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (job, run))
    body = assert_declared("GET", "/jobs/{jobId}", jobs.get(ctx, JID))
    assert body["progressPercent"] == 40.0 and body["progressMessage"] == "half"
    assert body["payload"] is None and "orgId" not in body and "completion" not in body  # payload always shown
    monkeypatch.setattr(job_store, "list_jobs", lambda *a: job_store.JobPage([job, _job(job_id="J2")], None))
    monkeypatch.setattr(job_store, "runs_of", lambda org, ids: {JID: replace(run, run_id="OLD")})
    page = assert_declared("GET", "/jobs", jobs.list_jobs(ctx, job_models.JobListQuery()))
    assert "progressPercent" not in page["items"][0]  # an older run's progress is not the job's
    assert [j["jobId"] for j in page["items"]] == [JID, "J2"] and page["nextToken"] is None
    monkeypatch.setattr(job_store, "get_job_and_run", lambda org, jid: (None, None))
    with pytest.raises(NotFound):
        jobs.get(ctx, JID)
