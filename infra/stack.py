"""Deploy infra/template.yaml and turn its outputs into the app's environment.

The same function builds the AWS stack (with real credentials), the local
stack (against the embedded moto server) and the test stack (inside
``mock_aws``), so there is one definition of every table and queue.
"""
from __future__ import annotations

import time
from pathlib import Path

import boto3

TEMPLATE_PATH = Path(__file__).with_name("template.yaml")

# Output name -> environment variable read by chalicelib.core.config.
OUTPUT_ENV = {
    "MainTableName": "MAIN_TABLE",
    "OutboxTableName": "OUTBOX_TABLE",
    "OutboxStreamArn": "OUTBOX_STREAM_ARN",
    "IdempotencyTableName": "IDEMPOTENCY_TABLE",
    "JobsQueueName": "JOBS_QUEUE_NAME",
    "JobsQueueUrl": "JOBS_QUEUE_URL",
    "JobsDeadLetterQueueUrl": "JOBS_DLQ_URL",
    "PatchesQueueName": "PATCHES_QUEUE_NAME",
    "PatchesQueueUrl": "PATCHES_QUEUE_URL",
    "PatchesDeadLetterQueueUrl": "PATCHES_DLQ_URL",
    "GitHubToolsQueueName": "GITHUB_TOOLS_QUEUE_NAME",
    "GitHubToolsQueueUrl": "GITHUB_TOOLS_QUEUE_URL",
    "GitHubToolsDeadLetterQueueUrl": "GITHUB_TOOLS_DLQ_URL",
    "WorkspaceBucketName": "WORKSPACE_BUCKET",
    "ApiKeyPepperSecretArn": "API_KEY_PEPPER_SECRET_ARN",
}

# moto's CloudFormation ignores TimeToLiveSpecification (the table shows TTL
# DISABLED), so after a deploy we apply each table's TTL explicitly. On AWS
# this is a no-op check: CloudFormation already enabled it.
TTL_ATTRIBUTES = {"MainTableName": "ttl", "OutboxTableName": "ttl", "IdempotencyTableName": "expiration"}


def deploy(stack_name: str, session: boto3.session.Session | None = None, timeout: float = 900.0) -> dict[str, str]:
    """Create the stack, or update it to the current template, and return its outputs by name."""
    session = session or boto3.session.Session()
    cfn = session.client("cloudformation")
    body = TEMPLATE_PATH.read_text()
    try:
        cfn.create_stack(StackName=stack_name, TemplateBody=body)
    except cfn.exceptions.AlreadyExistsException:
        try:
            cfn.update_stack(StackName=stack_name, TemplateBody=body)
        except cfn.exceptions.ClientError as error:
            if "No updates are to be performed" not in str(error):
                raise
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status and "IN_PROGRESS" not in status:
            break
        if "FAILED" in status or "ROLLBACK" in status:
            raise RuntimeError(f"stack {stack_name} ended in {status}: {stack.get('StackStatusReason')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {stack_name} still {status}")
        time.sleep(0.5)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    _ensure_ttl(session.client("dynamodb"), outputs)
    if "ApiKeyPepperSecretArn" not in outputs:
        outputs["ApiKeyPepperSecretArn"] = _ensure_pepper_secret(session.client("secretsmanager"), stack_name)
    return outputs


def _ensure_ttl(dynamodb, outputs: dict[str, str]) -> None:
    for output, attribute in TTL_ATTRIBUTES.items():
        table = outputs[output]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            continue
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )


def _ensure_pepper_secret(secretsmanager, stack_name: str) -> str:
    """moto's CloudFormation skips AWS::SecretsManager::Secret (it warns and emits no output): make the
    secret the template describes, with a generated value, once. On AWS the stack has made it."""
    name = f"{stack_name}-api-key-pepper"
    try:
        return secretsmanager.describe_secret(SecretId=name)["ARN"]
    except secretsmanager.exceptions.ResourceNotFoundException:
        value = secretsmanager.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
        return secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]


def environment(outputs: dict[str, str]) -> dict[str, str]:
    """The environment variables the app reads, from the stack outputs."""
    return {env: outputs[key] for key, env in OUTPUT_ENV.items()}


if __name__ == "__main__":  # python -m infra.stack STACK_NAME: deploy and print the env for .chalice/config.json
    import json
    import sys

    print(json.dumps(environment(deploy(sys.argv[1] if len(sys.argv) > 1 else "controlplane-dev")), indent=2))
