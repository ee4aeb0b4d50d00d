"""Deploy infra/template.yaml and turn its outputs into the app's environment.

The same function builds the AWS stack (with real credentials), the local
stack (against the embedded moto server) and the test stack (inside
``mock_aws``), so there is one definition of every table and queue.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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
    "TruststoreBucketName": "TRUSTSTORE_BUCKET",  # issue 21: the mTLS truststore bundle
    # People (issue 21): the Cognito pool, its console client (the tokens' audience) and issuer.
    "UserPoolId": "COGNITO_USER_POOL_ID",
    "UserPoolClientId": "OIDC_AUDIENCE",
    "OidcIssuer": "OIDC_ISSUER",
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
    _ensure_versioning(session.client("s3"), outputs)
    if "ApiKeyPepperSecretArn" not in outputs:
        outputs["ApiKeyPepperSecretArn"] = _ensure_pepper_secret(session.client("secretsmanager"), stack_name)
    if "UserPoolId" not in outputs or "UserPoolClientId" not in outputs:
        outputs.update(_ensure_user_pool(session.client("cognito-idp"), stack_name, session.region_name or "us-east-1"))
    return outputs


def _ensure_user_pool(idp: Any, stack_name: str, region: str) -> dict[str, str]:
    """moto's CloudFormation skips AWS::Cognito::* (and drops outputs naming them): the same pool
    and console client as the template's, made through the API (found by name on a redeploy)."""
    name = f"{stack_name}-people"
    pools = [p for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == name]
    if pools:
        pool_id = pools[0]["Id"]
    else:
        pool_id = idp.create_user_pool(
            PoolName=name, UsernameAttributes=["email"], AutoVerifiedAttributes=["email"],
            AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
            Policies={"PasswordPolicy": {"MinimumLength": 12, "RequireLowercase": True, "RequireUppercase": True,
                                         "RequireNumbers": True, "RequireSymbols": False}})["UserPool"]["Id"]
    clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    console = [c for c in clients if c["ClientName"] == f"{stack_name}-console"]
    if console:
        client_id = console[0]["ClientId"]
    else:
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=f"{stack_name}-console", GenerateSecret=False,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            PreventUserExistenceErrors="ENABLED", EnableTokenRevocation=True,
            AccessTokenValidity=60, IdTokenValidity=60, RefreshTokenValidity=12,
            TokenValidityUnits={"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "hours"},
        )["UserPoolClient"]["ClientId"]
    return {"UserPoolId": pool_id, "UserPoolClientId": client_id,
            "OidcIssuer": f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"}


def _ensure_ttl(dynamodb, outputs: dict[str, str]) -> None:
    for output, attribute in TTL_ATTRIBUTES.items():
        table = outputs[output]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            continue
        dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )


def _ensure_versioning(s3: Any, outputs: dict[str, str]) -> None:
    """moto's CloudFormation ignores VersioningConfiguration too: the truststore bucket must be versioned (the
    mTLS domain names a version of truststore.pem). On AWS the template did it and this only reads."""
    bucket = outputs.get("TruststoreBucketName")
    if bucket and s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


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
