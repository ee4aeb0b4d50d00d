"""Scan sources beyond the API's failures (CloudWatch Logs, the jobs DLQ), full rescans, checkpoints."""
from __future__ import annotations

import json
import os
import time

import boto3
import pytest

from chalicelib.core.context import Ctx
from chalicelib.ops import scan, store
from chalicelib.ops.github import GitHub
from tests.fakes.github_server import FakeGitHub

GROUP = "/aws/lambda/control-plane-dev-api_handler"


@pytest.fixture
def ctx(root):
    return Ctx.system(root["orgId"])


def groups_by_kind(kind):
    return [g for g in store.all_groups() if g["kind"] == kind]


def run(ctx, scope="incremental", seconds=60, gh=None, use_github=False):
    return scan.run(ctx, scope, time.time() + seconds, gh=gh, use_github=use_github).model_dump(by_alias=True)


def test_cloudwatch_errors_timeouts_and_tracebacks_group_by_their_stable_part(ctx):
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s1")
    now = int(time.time() * 1000)
    trace = ('[ERROR] KeyError: \'{k}\'\nTraceback (most recent call last):\n'
             '  File "/var/task/chalicelib/jobs/service.py", line {n}, in poll\n    x = d[k]\nKeyError: \'{k}\'')
    messages = [
        "START RequestId: 6f1c2a9e-0000-4000-8000-000000000001 Version: $LATEST",
        "2026-12-01T09:00:01.000Z 6f1c2a9e-0000-4000-8000-000000000001 Task timed out after 30.03 seconds",
        "2026-12-01T09:05:01.000Z 7a2b3c4d-0000-4000-8000-000000000002 Task timed out after 30.01 seconds",
        trace.format(k="job-17", n=88), trace.format(k="job-99", n=91),
    ]
    logs.put_log_events(logGroupName=GROUP, logStreamName="s1",
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])
    result = run(ctx)
    found = groups_by_kind("cloudwatch")
    assert sorted((g["count"], g["severity"]) for g in found) == [(2, "critical"), (2, "high")]
    assert result["notFiled"] == 2
    run(ctx)  # nothing new after the watermark
    assert sorted(g["count"] for g in groups_by_kind("cloudwatch")) == [2, 2]


def test_dead_letters_are_critical_and_counted_once(ctx):
    sqs = boto3.client("sqs")
    url = os.environ["JOBS_DLQ_URL"]
    for job in ("J1", "J2"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "lease-check", "orgId": "o", "jobId": job}))
    run(ctx)
    run(ctx)
    (group,) = groups_by_kind("job-dlq")
    assert group["count"] == 2 and group["severity"] == "critical"
    assert int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
               ["Attributes"]["ApproximateNumberOfMessages"]) == 2  # peeked, not consumed


def test_full_rescan_counts_nothing_twice(ctx):
    before = {g["fingerprint"]: g["count"] for g in store.all_groups()}
    run(ctx, "full")
    run(ctx, "full")
    assert {g["fingerprint"]: g["count"] for g in store.all_groups()} == before


def test_out_of_time_checkpoints_and_the_next_scan_files_each_group_once(ctx):
    with FakeGitHub(token="t") as fake:
        pending = len(store.groups_to_sync())
        assert pending >= 3
        fake.rate_limit("POST /repos/{owner}/{repo}/issues", kind="secondary", retry_after=300)
        short = GitHub("t", fake.repo_full, fake.url, seconds_left=lambda: 30)
        first = run(ctx, gh=short)
        assert first["checkpointed"] and first["issuesOpened"] == 0 and fake.issues == {}
        assert len(store.groups_to_sync()) == pending
        second = run(ctx, gh=GitHub("t", fake.repo_full, fake.url))
        assert second["issuesOpened"] == pending and len(fake.issues) == pending
        assert store.groups_to_sync() == []
        third = run(ctx, "full", gh=GitHub("t", fake.repo_full, fake.url))
        assert (third["issuesOpened"], third["issuesUpdated"]) == (0, 0) and len(fake.issues) == pending
    assert fake.violations == []


def test_one_scan_at_a_time(ctx):
    from chalicelib.core.errors import Conflict

    assert scan.acquire_lock(ctx, "other")
    try:
        with pytest.raises(Conflict):
            run(ctx)
    finally:
        scan.release_lock(ctx, "other")
