"""Jobs through the app: create, list, get, cancel, poll, progress, complete, and every 4xx of the contract."""
import pytest



def test_create_direct_job_queues_it_and_emits_job_queued(fleet, events):
    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id, type="build", payload={"x": [1, 2.5, None, ""], "deep": {"a": {}}},
                       priority=5, timeoutSeconds=30, maxAttempts=2, leaseSeconds=10)
    assert job["status"] == "QUEUED" and job["attempts"] == 0 and job["agentId"] == agent_id
    assert job["payload"] == {"x": [1, 2.5, None, ""], "deep": {"a": {}}}  # JSON round-trips exactly
    assert (job["priority"], job["timeoutSeconds"], job["maxAttempts"], job["leaseSeconds"]) == (5, 30, 2, 10)
    assert "pool" not in job and "claimedBy" not in job and "progressPercent" not in job
    assert fleet.job(job["jobId"]) == job
    [queued] = events.of(job["jobId"])
    assert queued["event"] == "job:queued" and queued["data"]["status"] == "QUEUED"
    assert queued["agentId"] == agent_id  # the agent's own WebSocket clients see it


def test_create_defaults_and_snake_case(fleet):
    job = fleet.create(pool="linux", type="t", max_attempts=4, lease_seconds=5)
    assert job["pool"] == "linux" and job["maxAttempts"] == 4 and job["leaseSeconds"] == 5
    job = fleet.create(pool="linux")
    assert (job["priority"], job["maxAttempts"], job["leaseSeconds"]) == (0, 3, 60) and "timeoutSeconds" not in job


@pytest.mark.parametrize("body, field", [
    ({"type": "t"}, "agentId"),                                   # neither agentId nor pool
    ({"type": "t", "agentId": "A", "pool": "p"}, "pool"),         # both
    ({"pool": "p"}, "type"),
    ({"pool": "p", "type": "t", "priority": 5000}, "priority"),
    ({"pool": "p", "type": "t", "leaseSeconds": 0}, "leaseSeconds"),
    ({"pool": "p", "type": "t", "maxAttempts": 0}, "maxAttempts"),
    ({"pool": "p", "type": "t", "timeoutSeconds": -1}, "timeoutSeconds"),
    ({"pool": "bad pool", "type": "t"}, "pool"),
    ({"pool": "p", "type": "t", "color": "red"}, "color"),
])
def test_create_validation(fleet, body, field):
    r = fleet.http.post("/jobs", fleet.operator, body)
    assert r.status == 400, r.json
    assert r.json["error"]["code"] == "VALIDATION_ERROR"
    assert r.json["error"]["details"][0]["field"] == field, r.json


def test_create_payload_limits_and_unknown_agent(fleet, http):
    r = http.post("/jobs", fleet.operator, {"pool": "p", "type": "t", "payload": {"blob": "x" * (64 * 1024)}})
    assert r.status == 413 and r.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    r = http.post("/jobs", fleet.operator, {"pool": "p", "type": "t", "payload": {"blob": "x" * (64 * 1024 - 20)}})
    assert r.status == 201, r.json
    r = http.post("/jobs", fleet.operator, {"pool": "p", "type": "t", "payload": "x" * (300 * 1024)})
    assert r.status == 413  # over the 256 KiB request limit
    r = http.post("/jobs", fleet.operator, {"agentId": "01NOSUCHAGENT0000000000000", "type": "t"})
    assert r.status == 404 and r.json["error"]["details"][0]["field"] == "agentId"


def test_only_operators_create_and_read_jobs(fleet, http):
    agent_id, key = fleet.register()
    assert http.post("/jobs", key, {"agentId": agent_id, "type": "t"}).status == 403
    assert http.get("/jobs", key).status == 403
    assert http.post("/jobs", None, {"agentId": agent_id, "type": "t"}).status == 401


def test_poll_claims_by_priority_then_age_across_own_queue_and_pools(fleet):
    agent_id, _ = fleet.register("a", pools=["p1", "p2"])
    low_old = fleet.create(pool="p1", priority=0)
    high = fleet.create(pool="p2", priority=9)
    direct_low = fleet.create(agentId=agent_id, priority=0)
    mid = fleet.create(agentId=agent_id, priority=5)
    low_new = fleet.create(pool="p2", priority=0)
    other_pool = fleet.create(pool="p3", priority=100)
    got = fleet.poll(agent_id, max=10)
    assert [j["jobId"] for j in got["jobs"]] == [high["jobId"], mid["jobId"], low_old["jobId"],
                                                 direct_low["jobId"], low_new["jobId"]]
    assert other_pool["jobId"] not in {j["jobId"] for j in got["jobs"]}
    assert got["nextPollSeconds"] == 1  # fewer than asked for: the queues are drained
    first = got["jobs"][0]
    assert set(first) == {"jobId", "runId", "type", "payload", "attempt", "leaseExpiresAt", "leaseSeconds"}
    assert first["attempt"] == 1 and first["leaseExpiresAt"].endswith("Z")
    job = fleet.job(high["jobId"])
    assert job["status"] == "RUNNING" and job["claimedBy"] == agent_id and job["attempts"] == 1
    assert job["runId"] == first["runId"] and job["startedAt"].endswith("Z")
    empty = fleet.poll(agent_id, max=3)
    assert empty == {"jobs": [], "nextPollSeconds": 5}


def test_poll_max_and_next_poll_seconds(fleet, http):
    agent_id, key = fleet.register("a", pools=["q"])
    for _ in range(4):
        fleet.create(pool="q")
    got = fleet.poll(agent_id, max=3)
    assert len(got["jobs"]) == 3 and got["nextPollSeconds"] == 0  # full batch: poll again at once
    for bad in ("max=11", "max=0", "max=x"):
        r = http.get(f"/jobs/poll?agentId={agent_id}&{bad}", key)
        assert r.status == 400 and r.json["error"]["details"][0]["field"] == "max"
    r = http.get("/jobs/poll", key)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == "agentId"


def test_direct_jobs_go_only_to_their_agent_and_pool_jobs_only_to_pool_members(fleet):
    a, _ = fleet.register("a", pools=["shared"])
    b, _ = fleet.register("b", pools=["shared"])
    c, _ = fleet.register("c")
    for_a = fleet.create(agentId=a)
    shared = fleet.create(pool="shared")
    assert fleet.poll(c, max=10)["jobs"] == []
    got_b = [j["jobId"] for j in fleet.poll(b, max=10)["jobs"]]
    assert got_b == [shared["jobId"]]
    got_a = [j["jobId"] for j in fleet.poll(a, max=10)["jobs"]]
    assert got_a == [for_a["jobId"]]


def test_poll_sends_one_lease_check_per_claim_before_claiming(fleet, sent_checks):
    agent_id, _ = fleet.register("a", pools=["w"])
    jobs = [fleet.create(pool="w", leaseSeconds=7), fleet.create(pool="w", leaseSeconds=30, timeoutSeconds=3)]
    got = fleet.poll(agent_id, max=5)["jobs"]
    checks = {body["jobId"]: (body, delay) for body, delay in sent_checks}
    for job, polled, expected_delay in zip(jobs, got, (7, 3), strict=True):  # lease, or the timeout when sooner
        body, delay = checks[job["jobId"]]
        assert body == {"v": 1, "kind": "check-run", "orgId": fleet.org["orgId"], "jobId": job["jobId"],
                        "runId": polled["runId"]}
        assert delay == expected_delay


def test_progress_is_reported_on_the_job_and_emitted(fleet, events):
    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id)
    run = fleet.poll(agent_id)["jobs"][0]
    r = fleet.progress(agent_id, run, 12.5, "compiling")
    assert r.status == 204 and r.json is None
    got = fleet.job(job["jobId"])
    assert (got["progressPercent"], got["progressMessage"]) == (12.5, "compiling")
    assert fleet.progress(agent_id, run, 40).status == 204  # the message is kept when not sent again
    got = fleet.job(job["jobId"])
    assert (got["progressPercent"], got["progressMessage"]) == (40, "compiling")
    progress = [e for e in events.of(job["jobId"]) if e["event"] == "job:progress"]
    assert [e["data"]["progressPercent"] for e in progress] == [12.5, 40]
    assert all(e["agentId"] == agent_id and e["data"]["status"] == "RUNNING" for e in progress)


@pytest.mark.parametrize("change, field", [
    ({"percent": 150}, "percent"), ({"percent": -1}, "percent"), ({"percent": "half"}, "percent"),
    ({"runId": None}, "runId"), ({"jobId": None}, "jobId"), ({"message": "m" * 2000}, "message"),
])
def test_progress_validation(fleet, change, field):
    agent_id, key = fleet.register()
    fleet.create(agentId=agent_id)
    run = fleet.poll(agent_id)["jobs"][0]
    body = {"jobId": run["jobId"], "runId": run["runId"], "agentId": agent_id, "percent": 10, **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = fleet.http.post("/jobs/progress", key, body)
    assert r.status == 400 and r.json["error"]["details"][0]["field"] == field, r.json


def test_progress_and_complete_errors(fleet, http, root):
    a, key_a = fleet.register("a")
    b, key_b = fleet.register("b")
    fleet.create(agentId=a)
    run = fleet.poll(a)["jobs"][0]
    stale = {**run, "runId": "01STALERUN0000000000000000"}
    r = fleet.progress(a, stale)
    assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"
    r = fleet.complete(a, stale)
    assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"
    # Another agent's key for agent a: 403; agent b naming itself on a's run: 403.
    assert fleet.progress(a, run, key=key_b).status == 403
    assert fleet.progress(b, run).status == 403
    assert fleet.complete(b, run).status == 403
    unknown = {**run, "jobId": "01NOSUCHJOB000000000000000"}
    assert fleet.progress(a, unknown).status == 404
    # Another org's operator acting for agent a sees neither agent nor job.
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    assert fleet.progress(a, run, key=other["adminKey"]).status == 403
    assert http.get(f"/jobs/{run['jobId']}", other["adminKey"]).status == 404
    assert fleet.progress(a, run).status == 204  # none of that touched the run


def test_complete_result_repeat_and_conflict(fleet, events):
    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id)
    run = fleet.poll(agent_id)["jobs"][0]
    fleet.progress(agent_id, run, 90, "almost")
    r = fleet.complete(agent_id, run, result={"artifact": "s3://x", "n": 1.5})
    assert r.status == 204
    done = fleet.job(job["jobId"])
    assert done["status"] == "COMPLETED" and done["result"] == {"artifact": "s3://x", "n": 1.5}
    assert done["finishedAt"].endswith("Z") and done["claimedBy"] == agent_id
    assert (done["progressPercent"], done["progressMessage"]) == (90, "almost")  # kept once terminal
    # The same completion again: 204, no second event. A different one: 409.
    assert fleet.complete(agent_id, run, result={"n": 1.5, "artifact": "s3://x"}).status == 204
    r = fleet.complete(agent_id, run, result={"artifact": "other"})
    assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"
    assert fleet.complete(agent_id, run, status="FAILED").status == 409
    assert fleet.progress(agent_id, run).status == 409
    assert events.names(job["jobId"]) == ["job:queued", "job:progress", "job:completed"]
    completed = events.of(job["jobId"])[-1]
    assert completed["data"]["status"] == "COMPLETED" and completed["agentId"] == agent_id


def test_failed_completion_and_result_limit(fleet, events):
    agent_id, _ = fleet.register()
    job = fleet.create(agentId=agent_id)
    run = fleet.poll(agent_id)["jobs"][0]
    r = fleet.complete(agent_id, run, result="x" * (64 * 1024 + 1))
    assert r.status == 413 and r.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert fleet.complete(agent_id, run, status="DONE").status == 400
    assert fleet.complete(agent_id, run, status="FAILED", error="disk full").status == 204
    failed = fleet.job(job["jobId"])
    assert failed["status"] == "FAILED" and failed["error"] == {"code": "JOB_FAILED", "message": "disk full"}
    assert events.names(job["jobId"])[-1] == "job:failed"
    job2 = fleet.create(agentId=agent_id)
    run2 = fleet.poll(agent_id)["jobs"][0]
    assert fleet.complete(agent_id, run2, status="FAILED", error={"code": "E42", "message": "bad"}).status == 204
    assert fleet.job(job2["jobId"])["error"] == {"code": "E42", "message": "bad"}


def test_cancel_queued_and_running(fleet, events, http):
    agent_id, _ = fleet.register("a", pools=["c"])
    queued = fleet.create(pool="c", priority=-5)
    running = fleet.create(agentId=agent_id, priority=5)
    run = fleet.poll(agent_id)["jobs"][0]
    assert run["jobId"] == running["jobId"]
    r = http.post(f"/jobs/{queued['jobId']}/cancel", fleet.operator)
    assert r.status == 200 and r.json["status"] == "CANCELLED" and r.json["finishedAt"]
    assert fleet.poll(agent_id, max=10)["jobs"] == []  # no longer claimable
    r = http.post(f"/jobs/{running['jobId']}/cancel", fleet.operator)
    assert r.status == 200 and r.json["status"] == "CANCELLED"
    r = fleet.progress(agent_id, run)
    assert r.status == 409 and r.json["error"]["code"] == "JOB_NOT_RUNNING"
    assert fleet.complete(agent_id, run).status == 409
    assert http.post(f"/jobs/{running['jobId']}/cancel", fleet.operator).status == 200  # again: no-op
    assert events.names(running["jobId"]) == ["job:queued", "job:cancelled"]
    cancelled = events.of(running["jobId"])[-1]
    assert cancelled["agentId"] == agent_id and cancelled["data"]["status"] == "CANCELLED"
    # Terminal jobs cannot be cancelled; unknown ones are 404; agents cannot cancel.
    done = fleet.create(agentId=agent_id)
    run = fleet.poll(agent_id)["jobs"][0]
    fleet.complete(agent_id, run)
    r = http.post(f"/jobs/{done['jobId']}/cancel", fleet.operator)
    assert r.status == 409 and r.json["error"]["code"] == "INVALID_TRANSITION"
    assert http.post("/jobs/01NOSUCHJOB000000000000000/cancel", fleet.operator).status == 404
    assert http.post(f"/jobs/{done['jobId']}/cancel", fleet.key(agent_id)).status == 403


def test_list_filters_and_pagination(fleet, http):
    a, _ = fleet.register("a", pools=["lp"])
    b, _ = fleet.register("b")
    j_a1 = fleet.create(agentId=a)
    j_b = fleet.create(agentId=b)
    j_p1 = fleet.create(pool="lp", priority=1)
    j_p2 = fleet.create(pool="lp", priority=7)
    j_a2 = fleet.create(agentId=a)
    [claimed] = fleet.poll(a)["jobs"]  # j_p2: highest priority
    assert claimed["jobId"] == j_p2["jobId"]

    def ids(query):
        r = http.get(f"/jobs?{query}", fleet.operator)
        assert r.status == 200, r.json
        return [j["jobId"] for j in r.json["items"]]

    everything = ids("limit=100")
    assert everything == [j["jobId"] for j in (j_a2, j_p2, j_p1, j_b, j_a1)]  # newest first
    assert ids(f"agentId={a}") == [j_a2["jobId"], j_a1["jobId"]]
    assert ids("pool=lp") == [j_p2["jobId"], j_p1["jobId"]]
    assert ids("status=RUNNING") == [j_p2["jobId"]]
    assert ids("pool=lp&status=RUNNING") == [j_p2["jobId"]]
    assert ids(f"agent_id={a}&status=QUEUED") == [j_a1["jobId"], j_a2["jobId"]]  # queued: claim order
    assert ids("status=COMPLETED") == []
    listed = http.get("/jobs?status=RUNNING", fleet.operator).json["items"][0]
    assert listed == fleet.job(j_p2["jobId"])
    pages, token = [], None
    while True:
        r = http.get("/jobs?limit=2" + (f"&nextToken={token}" if token else ""), fleet.operator).json
        pages.append([j["jobId"] for j in r["items"]])
        token = r["nextToken"]
        if not token:
            break
    assert sum(pages, []) == everything and all(len(p) <= 2 for p in pages)
    for bad, field in ((f"agentId={a}&pool=lp", "pool"), ("status=DONE", "status"), ("limit=101", "limit"),
                       ("nextToken=garbage", "nextToken")):
        r = http.get(f"/jobs?{bad}", fleet.operator)
        assert r.status == 400 and r.json["error"]["details"][0]["field"] == field, (bad, r.json)
    token = http.get("/jobs?limit=1", fleet.operator).json["nextToken"]
    assert http.get(f"/jobs?limit=1&pool=lp&nextToken={token}", fleet.operator).status == 400


def test_jobs_of_another_org_are_404(fleet, http, root):
    job = fleet.create(pool="p")
    other = http.post("/orgs", root["adminApiKey"], {"name": "other"}).json
    assert http.get(f"/jobs/{job['jobId']}", other["adminKey"]).status == 404
    assert http.post(f"/jobs/{job['jobId']}/cancel", other["adminKey"]).status == 404
    assert http.get("/jobs", other["adminKey"]).json["items"] == []
    assert fleet.job(job["jobId"])["status"] == "QUEUED"


def test_idempotent_create_queues_once(fleet, http, events):
    body = {"pool": "idem", "type": "t"}
    first = http.post("/jobs", fleet.operator, body, headers={"Idempotency-Key": "job-1"})
    again = http.post("/jobs", fleet.operator, body, headers={"Idempotency-Key": "job-1"})
    assert first.status == again.status == 201 and first.json == again.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [j["jobId"] for j in http.get("/jobs?pool=idem", fleet.operator).json["items"]] == [first.json["jobId"]]


def test_openapi_documents_the_job_routes(http):
    paths = http.get("/openapi.json").json["paths"]
    for path in ("/agents", "/agents/{agentId}", "/agents/{agentId}/heartbeat", "/agents/{agentId}/deactivate",
                 "/jobs", "/jobs/{jobId}", "/jobs/{jobId}/cancel", "/jobs/poll", "/jobs/progress", "/jobs/complete"):
        assert path in paths, path


def test_transaction_conflicts_are_retried_then_503(fleet, monkeypatch):
    """DynamoDB cancels transactions that touch one item at the same moment (moto never does): retried."""
    from chalicelib.aws import dynamo

    agent_id, _ = fleet.register()
    fleet.create(agentId=agent_id)
    run = fleet.poll(agent_id)["jobs"][0]
    real = dynamo.transact
    conflicts = {"left": 2}

    def flaky(ops):
        if conflicts["left"] > 0:
            conflicts["left"] -= 1
            raise dynamo.TransactionConflict("busy")
        return real(ops)

    monkeypatch.setattr(dynamo, "transact", flaky)
    assert fleet.progress(agent_id, run, 20).status == 204 and conflicts["left"] == 0
    conflicts["left"] = 100
    r = fleet.progress(agent_id, run, 30)
    assert r.status == 503 and r.json["error"]["code"] == "UNAVAILABLE" and r.headers.get("Retry-After") == "1"
    monkeypatch.setattr(dynamo, "transact", real)
    assert fleet.job(run["jobId"])["progressPercent"] == 20
