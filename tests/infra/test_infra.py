"""The one infrastructure definition: it lints, deploys into moto, and matches what the app reads."""
import json
import shutil
import subprocess
from pathlib import Path

import boto3

from infra.stack import OUTPUT_ENV, TEMPLATE_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_template_passes_cfn_lint():
    lint = shutil.which("cfn-lint", path=str(Path(__import__("sys").executable).parent))
    result = subprocess.run([lint, str(TEMPLATE_PATH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployed_stack_has_every_output_ttl_and_streams(aws):
    assert set(OUTPUT_ENV) <= set(aws)
    ddb = boto3.client("dynamodb")
    for table, attribute in ((aws["MainTableName"], "ttl"), (aws["OutboxTableName"], "ttl"),
                             (aws["IdempotencyTableName"], "expiration")):
        ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": attribute}
    outbox = ddb.describe_table(TableName=aws["OutboxTableName"])["Table"]
    assert outbox["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    sqs = boto3.client("sqs")
    for queue, dlq in ((aws["JobsQueueUrl"], aws["JobsDeadLetterQueueUrl"]),
                       (aws["PatchesQueueUrl"], aws["PatchesDeadLetterQueueUrl"]),
                       (aws["GitHubToolsQueueUrl"], aws["GitHubToolsDeadLetterQueueUrl"])):
        attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
    fifo = sqs.get_queue_attributes(QueueUrl=aws["PatchesQueueUrl"], AttributeNames=["FifoQueue"])["Attributes"]
    assert fifo["FifoQueue"] == "true"


def test_app_event_sources_point_at_the_stack(app_module, aws):
    from chalice.app import DynamoDBEventConfig, SQSEventConfig

    sources = app_module.app.event_sources
    streams = [s.stream_arn for s in sources if isinstance(s, DynamoDBEventConfig)]
    # the stream label (after /stream/) is minted per deploy; the table is what must match
    # two readers of the outbox stream: the WebSocket fan-out and the GitHub tools' approvals
    assert [arn.split("/stream/")[0] for arn in streams] == [aws["OutboxStreamArn"].split("/stream/")[0]] * 2
    for source in sources:
        if isinstance(source, SQSEventConfig):
            assert source.queue in (aws["JobsQueueName"], aws["PatchesQueueName"], aws["GitHubToolsQueueName"])
