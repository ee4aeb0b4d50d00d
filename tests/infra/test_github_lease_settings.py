"""The three numbers a deferred GitHub tool call's lease rests on (chalicelib/github_tools/rules.py):
the timeout of the functions that run deferred calls (.chalice/config.json), the lease, and the retry
queue's visibility timeout (infra/template.yaml, as deployed)."""
import json
from pathlib import Path

import boto3

from chalicelib.github_tools import rules

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = ("github_approvals", "github_tools_retry")  # app.py: the stream reader and the queue consumer


def _timeouts() -> dict[str, int]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config.get("lambda_functions", {})
    return {name: int(functions.get(name, {}).get("lambda_timeout", config["lambda_timeout"])) for name in RUNNERS}


def test_a_lease_ends_only_after_the_function_that_took_it_was_stopped():
    # Lambda stops an invocation at its timeout, and a claim is made during one: at the lease's end its
    # run is over. The rules' constant is the configured timeout, not a copy that could drift.
    assert set(_timeouts().values()) == {rules.FUNCTION_TIMEOUT_SECONDS}
    assert rules.LEASE_SECONDS > rules.FUNCTION_TIMEOUT_SECONDS


def test_sqs_redelivers_a_dead_runs_message_after_its_lease_expired(aws):
    # A message whose run died comes back after the visibility timeout: it must find the lease expired
    # (else it would be reported failed once more, one receive nearer the dead-letter queue).
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=aws["GitHubToolsQueueUrl"],
                                                          AttributeNames=["VisibilityTimeout"])["Attributes"]
    visibility = int(attributes["VisibilityTimeout"])
    assert visibility > rules.LEASE_SECONDS + 1  # leaseUntil is rounded up by a second
    assert visibility >= max(_timeouts().values())  # what Lambda requires of an SQS event source
