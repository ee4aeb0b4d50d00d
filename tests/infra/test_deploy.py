"""make deploy's logic against moto, up to the hand-over to Chalice (infra/deploy.py, infra/package.py),
and the API key pepper read from the secret the data stack creates."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from infra import deploy, package
from infra.stack import OUTPUT_ENV

ROOT = Path(__file__).resolve().parents[2]


class FakeChalice:
    """Stands where `chalice package` runs: records what it was handed, writes what it would emit."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], Path]] = []

    def __call__(self, stage: str, env: dict[str, str], out_dir: Path) -> Path:
        self.calls.append((stage, dict(env), out_dir))
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "deployment.zip").write_bytes(b"app code")
        (out_dir / "layer-deployment.zip").write_bytes(b"layer")
        template = {"Resources": {
            "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./deployment.zip"}},
            "ManagedLayer": {"Type": "AWS::Serverless::LayerVersion",
                             "Properties": {"ContentUri": "./layer-deployment.zip"}}}}
        (out_dir / "sam.json").write_text(json.dumps(template))
        return out_dir / "sam.json"


def test_deploy_creates_then_updates_the_data_stack_and_hands_its_outputs_to_chalice(aws, tmp_path):
    chalice = FakeChalice()
    session = boto3.session.Session()
    outputs, template = deploy.prepare("unit", session, packager=chalice, build_root=tmp_path)
    again, _ = deploy.prepare("unit", session, packager=chalice, build_root=tmp_path)  # an update: no changes

    assert outputs == again
    (stage, env, out_dir), second = chalice.calls
    assert second == chalice.calls[0] and stage == "unit" and out_dir == tmp_path / "unit"
    assert env["STACK_NAME"] == "controlplane-unit"
    assert set(OUTPUT_ENV.values()) <= set(env)
    assert env["MAIN_TABLE"] == "controlplane-unit-main"
    assert env["OUTBOX_STREAM_ARN"] == outputs["OutboxStreamArn"] and "/stream/" in env["OUTBOX_STREAM_ARN"]
    secret = boto3.client("secretsmanager").get_secret_value(SecretId=env["API_KEY_PEPPER_SECRET_ARN"])
    assert len(secret["SecretString"]) == 64

    uploaded = deploy.upload_artifacts(template, outputs["DeploymentBucketName"], "app/unit", session)
    s3 = boto3.client("s3")
    for resource, field, content in (("APIHandler", "CodeUri", b"app code"), ("ManagedLayer", "ContentUri", b"layer")):
        uri = uploaded["Resources"][resource]["Properties"][field]
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        assert bucket == outputs["DeploymentBucketName"] and key.startswith("app/unit/")
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == content


def test_packaging_without_a_deployed_stack_fails_with_one_clear_line(tmp_path):
    with pytest.raises(package.PackageError, match="deploy the data stack first"):
        package.stage_environment({"STACK_NAME": "controlplane-x"})
    env = {k: v for k, v in os.environ.items() if k not in set(OUTPUT_ENV.values())}
    done = subprocess.run([sys.executable, "-m", "infra.package", str(tmp_path / "out")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("package: no OUTBOX_STREAM_ARN") and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()

    imported = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    assert imported.returncode != 0 and "OUTBOX_STREAM_ARN is not set" in imported.stderr
    assert "/stream/unset" not in imported.stdout + imported.stderr  # no placeholder ARN any more


def test_merge_template_reports_partial_batch_failures_and_answers_preflight_204():
    plain = {"Resources": {
        "JobsWork": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
            "JobsWorkSqsEventSource": {"Type": "SQS", "Properties": {"Queue": "arn", "BatchSize": 10}}}}},
        "OutboxFanout": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
            "OutboxFanoutDynamodbEventSource": {"Type": "DynamoDB", "Properties": {}}}}},
        "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {"DefinitionBody": {"paths": {
            "/jobs": {"get": {}, "options": {"x-amazon-apigateway-integration": {"type": "mock", "responses": {
                "default": {"statusCode": "200", "responseParameters": {
                    "method.response.header.Access-Control-Allow-Origin": "'*'"}}}}}},
            "/health": {"get": {}}}}}}}}
    merge = package.merge_template(plain, "https://ui.example")
    resources = merge["Resources"]
    assert resources["JobsWork"]["Properties"]["Events"]["JobsWorkSqsEventSource"]["Properties"] == {
        "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    assert "OutboxFanout" not in resources
    body = resources["RestAPI"]["Properties"]["DefinitionBody"]
    assert set(body["paths"]) == {"/jobs"}
    options = body["paths"]["/jobs"]["options"]
    assert options["x-amazon-apigateway-integration"]["responses"]["default"]["statusCode"] == "204"
    assert "Access-Control-Allow-Origin" in options["responses"]["204"]["headers"]
    unknown_path = body["x-amazon-apigateway-gateway-responses"]["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown_path["statusCode"] == 404
    assert json.loads(unknown_path["responseTemplates"]["application/json"].replace(
        "$context.httpMethod $context.path", "GET /nope"))["error"]["code"] == "NOT_FOUND"
    assert unknown_path["responseParameters"] == {
        "gatewayresponse.header.Access-Control-Allow-Origin": "'https://ui.example'"}


def test_pepper_is_read_from_the_stack_secret_and_required_on_lambda(aws, monkeypatch):
    from chalicelib.core.config import DEVELOPMENT_PEPPER, Settings

    monkeypatch.delenv("API_KEY_PEPPER", raising=False)
    monkeypatch.setenv("API_KEY_PEPPER_SECRET_ARN", aws["ApiKeyPepperSecretArn"])
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=aws["ApiKeyPepperSecretArn"])["SecretString"]
    assert Settings.from_env().api_key_pepper == stored

    monkeypatch.delenv("API_KEY_PEPPER_SECRET_ARN")
    assert Settings.from_env().api_key_pepper == DEVELOPMENT_PEPPER  # locally only
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "control-plane-prod-APIHandler")
    with pytest.raises(RuntimeError, match="pepper missing"):
        _ = Settings.from_env().api_key_pepper


def test_docs_list_exactly_the_schedules_the_app_defines(app_module):
    import re

    from chalice.app import ScheduledEventConfig

    defined = {source.name: source.schedule_expression.to_string() for source in app_module.app.event_sources
               if isinstance(source, ScheduledEventConfig)}
    section = (ROOT / "docs" / "DEPLOY.md").read_text().split("## Schedules", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", section, re.MULTILINE))
    assert documented == defined


def test_the_websocket_stage_is_one_value_in_config_and_docs():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    stage = config["websocket_api_stage"]
    assert all("websocket_api_stage" not in s for s in config["stages"].values())
    assert f"WebSocket API stage | `{stage}`" in (ROOT / "docs" / "DEPLOY.md").read_text()


def test_the_optional_mtls_domain_turns_off_the_default_endpoint():
    """Issue 21: a custom domain with mutual TLS (truststore in S3) and one without, both optional; when the
    mTLS domain is on, the execute-api endpoint is off (clients could bypass the truststore through it)."""
    plain = {"Resources": {"RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {"DefinitionBody": {"paths": {}}}}}}
    merge = package.merge_template(plain, None)
    resources, conditions = merge["Resources"], merge["Conditions"]
    assert conditions["MtlsEnabled"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MtlsDomainName"}, ""]}]}
    assert resources["RestAPI"]["Properties"]["DisableExecuteApiEndpoint"] == {"Fn::If": ["MtlsEnabled", True, False]}
    domain = resources["MtlsDomain"]
    assert domain["Condition"] == "MtlsEnabled" and domain["Type"] == "AWS::ApiGateway::DomainName"
    assert domain["Properties"]["MutualTlsAuthentication"]["TruststoreUri"] == {"Ref": "MtlsTruststoreUri"}
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    assert domain["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert resources["MtlsBasePathMapping"]["Condition"] == "MtlsEnabled"
    assert "MutualTlsAuthentication" not in resources["ApiDomain"]["Properties"]
    assert all(merge["Parameters"][name]["Default"] == "" for name in merge["Parameters"])  # off unless asked
    rule = merge["Rules"]["MtlsNeedsItsPieces"]
    assert len(rule["Assertions"]) == 3


def test_the_data_stack_has_a_versioned_truststore_bucket_for_the_app(aws):
    import boto3
    import yaml

    from infra.stack import OUTPUT_ENV

    boto3.client("s3").head_bucket(Bucket=aws["TruststoreBucketName"])
    assert OUTPUT_ENV["TruststoreBucketName"] == "TRUSTSTORE_BUCKET"
    # moto's CloudFormation ignores VersioningConfiguration (as it ignores TTL): read it from the template
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((Path(package.__file__).with_name("template.yaml")).read_text(), Loader=loader)
    bucket = template["Resources"]["TruststoreBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


# --- the mTLS domain's truststore version (make deploy never rolls the domain back) ---------------

def _versions_of_truststore(bucket: str, *bodies: bytes) -> list[str]:
    s3 = boto3.client("s3")
    return [s3.put_object(Bucket=bucket, Key="truststore.pem", Body=body)["VersionId"] for body in bodies]


def test_deploy_passes_the_truststores_latest_version_when_the_mtls_domain_is_on(aws):
    session = boto3.session.Session()
    bucket = aws["TruststoreBucketName"]
    versions = _versions_of_truststore(bucket, b"CA of org 1\n", b"CA of org 1\nCA of org 2\n")
    environ = {"MTLS_DOMAIN_NAME": "gw.example.com", "API_DOMAIN_NAME": "api.example.com",
               "DOMAIN_CERTIFICATE_ARN": "arn:aws:acm:us-east-1:123456789012:certificate/c"}

    parameters = deploy.app_parameters(aws, {}, environ, session)
    assert parameters == {"MtlsDomainName": "gw.example.com", "ApiDomainName": "api.example.com",
                          "DomainCertificateArn": environ["DOMAIN_CERTIFICATE_ARN"],
                          "MtlsTruststoreUri": f"s3://{bucket}/truststore.pem",
                          "MtlsTruststoreVersion": versions[-1]}

    # a later deploy with nothing in the environment keeps the domains and moves to the newest version, never
    # back to the one the stack was last deployed with
    newest = _versions_of_truststore(bucket, b"CA of org 1\nCA of org 2\nCA of org 3\n")[0]
    again = deploy.app_parameters(aws, parameters, {}, session)
    assert again == {**parameters, "MtlsTruststoreVersion": newest}

    # off: no truststore named at all
    off = deploy.app_parameters(aws, parameters, {"MTLS_DOMAIN_NAME": "", "API_DOMAIN_NAME": ""}, session)
    assert off["MtlsDomainName"] == off["MtlsTruststoreUri"] == off["MtlsTruststoreVersion"] == ""
    assert deploy.app_parameters(aws, {}, {}, session) == dict.fromkeys(
        ("MtlsDomainName", "ApiDomainName", "DomainCertificateArn", "MtlsTruststoreUri", "MtlsTruststoreVersion"), "")


def test_deploy_with_the_mtls_domain_before_any_ca_stops_with_one_clear_line(aws):
    bucket = aws["TruststoreBucketName"]
    s3 = boto3.client("s3")
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    with pytest.raises(deploy.DeployError, match="enroll a first gateway"):
        deploy.app_parameters(aws, {}, {"MTLS_DOMAIN_NAME": "gw.example.com"}, boto3.session.Session())


def test_the_app_stack_is_deployed_with_the_parameters(aws):
    """deploy_app_stack hands every parameter to the change set (moto runs a plain template; no SAM)."""
    session = boto3.session.Session()
    template = {"Parameters": {name: {"Type": "String", "Default": ""} for name in (
                    "MtlsDomainName", "MtlsTruststoreVersion")},
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}
    name = "controlplane-params-app"
    deploy.deploy_app_stack(name, template, aws["DeploymentBucketName"], session, timeout=60,
                            parameters={"MtlsDomainName": "gw.example.com", "MtlsTruststoreVersion": "v7"})
    described = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]} == {
        "MtlsDomainName": "gw.example.com", "MtlsTruststoreVersion": "v7"}
    assert deploy.current_parameters(name, session) == {"MtlsDomainName": "gw.example.com",
                                                        "MtlsTruststoreVersion": "v7"}
    assert deploy.current_parameters("controlplane-nothing-app", session) == {}


def test_the_packaged_app_points_its_functions_at_the_mtls_domain_with_the_least_iam():
    def function(role: str) -> dict:
        return {"Type": "AWS::Serverless::Function", "Properties": {"Role": {"Fn::GetAtt": [role, "Arn"]}}}

    plain = {"Resources": {  # as chalice package emits them: a role per function
        "APIHandler": function("DefaultRole"), "TruststoreSync": function("TruststoreSyncRole"),
        "JobsWork": function("JobsWorkRole"),
        **{role: {"Type": "AWS::IAM::Role", "Properties": {}}
           for role in ("DefaultRole", "TruststoreSyncRole", "JobsWorkRole")}}}
    resources = package.merge_template(plain, None)["Resources"]
    for name in ("APIHandler", "TruststoreSync"):
        assert resources[name]["Properties"]["Environment"]["Variables"]["MTLS_DOMAIN_NAME"] == {
            "Ref": "MtlsDomainName"}
    assert "JobsWork" not in resources  # neither the setting nor the rights where no CA is made
    policy = resources["MtlsTruststorePolicy"]
    assert policy["Condition"] == "MtlsEnabled"
    assert policy["Properties"]["Roles"] == [{"Ref": "DefaultRole"}, {"Ref": "TruststoreSyncRole"}]
    domain, truststore = policy["Properties"]["PolicyDocument"]["Statement"]
    assert domain["Action"] == ["apigateway:GET", "apigateway:PATCH"]
    assert domain["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/domainnames/"
                                             "${MtlsDomainName}"}  # that one domain, nothing else
    assert truststore["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert "*" not in json.dumps(policy)
