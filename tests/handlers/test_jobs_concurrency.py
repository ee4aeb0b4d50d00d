"""Many agents polling one pool at the same moment, through the app: every job claimed exactly once.

In-process moto checks a condition and then writes, without a lock, so two
threads can both pass the same condition; real DynamoDB is atomic per request.
The `atomic_aws` fixture (conftest.py) restores that (one AWS request at a time, as the
devstack does for DynamoDB); the threads still interleave between requests,
which is where the claim races live. The same property over real HTTP at
scale is tests/e2e/test_jobs_e2e.py.
"""
import collections
import threading


def test_concurrent_polls_never_get_the_same_job(fleet, atomic_aws):
    agents = [fleet.register(f"a{i}", pools=["race"])[0] for i in range(8)]
    jobs = {fleet.create(pool="race", priority=i % 3)["jobId"] for i in range(40)}
    claims: dict[str, list[str]] = collections.defaultdict(list)
    lock = threading.Lock()
    start = threading.Barrier(len(agents))
    errors: list = []

    def agent_loop(agent_id: str, index: int) -> None:
        try:
            start.wait()
            empty = 0
            while empty < 2:
                got = fleet.poll(agent_id, max=1 + index % 3)
                with lock:
                    for job in got["jobs"]:
                        claims[job["jobId"]].append(agent_id)
                empty = empty + 1 if not got["jobs"] and got["nextPollSeconds"] else 0
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=agent_loop, args=(a, i)) for i, a in enumerate(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert set(claims) == jobs  # none lost
    doubles = {job: who for job, who in claims.items() if len(who) > 1}
    assert not doubles, doubles  # none claimed twice
    assert len({who[0] for who in claims.values()}) > 1  # the work really was shared
    for job_id in list(jobs)[:5]:
        job = fleet.job(job_id)
        assert job["status"] == "RUNNING" and job["attempts"] == 1 and job["claimedBy"] == claims[job_id][0]
