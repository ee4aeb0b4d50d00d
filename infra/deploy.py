"""`make deploy STAGE=prod`: the data stack, then the app, with no hand edits.

1. Create or update the data stack `controlplane-{stage}` from infra/template.yaml
   (tables, queues, buckets, the API key pepper secret) and read its outputs.
2. Hand them to Chalice: `chalice package` for the stage, with the outputs as
   the functions' environment and the merge template (infra/package.py). The
   checkout's .chalice/config.json is not touched.
3. Upload the packaged code to the stack's deployment bucket and create or
   update the app stack `controlplane-{stage}-app` from the packaged template
   (a CloudFormation change set; SAM transform, so CAPABILITY_AUTO_EXPAND).
4. Print the REST and WebSocket URLs and the console's. `--seed-root` then seeds the root
   organization and prints its admin key once (docs/DEPLOY.md).

The app stack's parameters (infra/merge-template.json) come from the environment of `make deploy`:
MTLS_DOMAIN_NAME, API_DOMAIN_NAME, DOMAIN_CERTIFICATE_ARN (unset: the stack's current value, so a
plain redeploy keeps its domains; set empty: off). With the mTLS domain on, MtlsTruststoreUri is the
data stack's truststore object and MtlsTruststoreVersion its latest version, read at every deploy, so
a deploy never rolls the domain back to a bundle without a newer organization's CA (the app moves the
domain forward itself between deploys: docs/DEPLOY.md "Turning mutual TLS on").

Steps 1-2, the artifact upload and the parameters are tested against moto (tests/infra/test_deploy.py);
moto cannot run the SAM transform, so step 3's change set is exercised on AWS only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3

from infra import package as packaging
from infra import stack

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".chalice" / "build"  # git-ignored

Packager = Callable[[str, dict[str, str], Path], Path]


# App stack parameter -> the variable of make deploy's environment that sets it.
DOMAIN_PARAMETERS = {"MtlsDomainName": "MTLS_DOMAIN_NAME", "ApiDomainName": "API_DOMAIN_NAME",
                     "DomainCertificateArn": "DOMAIN_CERTIFICATE_ARN"}
TRUSTSTORE_KEY = "truststore.pem"  # the app's TRUSTSTORE_KEY default (chalicelib/core/config.py)


class DeployError(RuntimeError):
    """A deploy precondition failed; the message is the one line to show."""


def data_stack_name(stage: str) -> str:
    return f"controlplane-{stage}"


def app_stack_name(stage: str) -> str:
    return f"{data_stack_name(stage)}-app"


def prepare(stage: str, session: boto3.session.Session, packager: Packager = packaging.package,
            build_root: Path = BUILD) -> tuple[dict[str, str], Path]:
    """Steps 1-2: the data stack's outputs, and the app packaged for them; returns (outputs, template path)."""
    name = data_stack_name(stage)
    outputs = stack.deploy(name, session)
    env = {"STACK_NAME": name, **stack.environment(outputs)}
    template = packager(stage, env, build_root / stage)
    return outputs, template


def current_parameters(name: str, session: boto3.session.Session) -> dict[str, str]:
    """The app stack's parameter values now ({} when it does not exist yet)."""
    cfn = session.client("cloudformation")
    try:
        described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError:
        return {}
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}


def app_parameters(outputs: dict[str, str], current: dict[str, str], environ: Mapping[str, str],
                   session: boto3.session.Session) -> dict[str, str]:
    """The app stack's parameters: the domains from the environment (else as they are), and with the mTLS domain
    on, the truststore object and its latest version (never an older one a previous deploy passed)."""
    values = {key: environ[env] if env in environ else current.get(key, "") for key, env in DOMAIN_PARAMETERS.items()}
    values["MtlsTruststoreUri"] = values["MtlsTruststoreVersion"] = ""
    if values["MtlsDomainName"]:
        bucket = outputs["TruststoreBucketName"]
        s3 = session.client("s3")
        try:
            version = s3.head_object(Bucket=bucket, Key=TRUSTSTORE_KEY).get("VersionId") or "null"
        except s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            raise DeployError(f"MTLS_DOMAIN_NAME={values['MtlsDomainName']} but s3://{bucket}/{TRUSTSTORE_KEY} does "
                              "not exist yet: deploy without it, enroll a first gateway (that writes its "
                              "organization's CA there), then deploy with it") from None
        if version == "null":
            raise DeployError(f"s3://{bucket} is not versioned: the mTLS domain must name a truststore version")
        values["MtlsTruststoreUri"] = f"s3://{bucket}/{TRUSTSTORE_KEY}"
        values["MtlsTruststoreVersion"] = version
    return values


def upload_artifacts(template_path: Path, bucket: str, prefix: str, session: boto3.session.Session) -> dict[str, Any]:
    """Upload every local CodeUri/ContentUri of the packaged template to S3 (content-addressed); returns the
    template with s3:// URIs in their place (what `aws cloudformation package` does)."""
    template = json.loads(template_path.read_text())
    s3 = session.client("s3")
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for field in ("CodeUri", "ContentUri"):
            location = properties.get(field)
            if not isinstance(location, str) or location.startswith("s3://"):
                continue
            path = (template_path.parent / location).resolve()
            data = path.read_bytes()
            key = f"{prefix}/{hashlib.sha256(data).hexdigest()}{path.suffix}"
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            properties[field] = f"s3://{bucket}/{key}"
    return template


def deploy_app_stack(name: str, template: dict[str, Any], bucket: str, session: boto3.session.Session,
                     timeout: float = 1800.0, parameters: dict[str, str] | None = None) -> dict[str, str]:
    """Create or update the app stack through a change set with these parameters (every one given: a parameter
    left out would take its default, which for the domains means off); returns its outputs."""
    cfn, s3 = session.client("cloudformation"), session.client("s3")
    body = json.dumps(template).encode()
    key = f"templates/{name}/{hashlib.sha256(body).hexdigest()}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body)  # a packaged API's template exceeds TemplateBody's 51 KB
    region = session.region_name or "us-east-1"
    url = f"https://{bucket}.s3.{region}.amazonaws.com/{key}"
    try:
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        change_type = "CREATE" if status == "REVIEW_IN_PROGRESS" else "UPDATE"
    except cfn.exceptions.ClientError:
        change_type = "CREATE"
    change_set = cfn.create_change_set(
        StackName=name, ChangeSetName=f"deploy-{int(time.time())}", TemplateURL=url, ChangeSetType=change_type,
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"])["Id"]
    try:
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=change_set, WaiterConfig={"Delay": 5})
    except Exception:
        reason = cfn.describe_change_set(ChangeSetName=change_set).get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            print(f"{name}: no changes")
            return _outputs(cfn, name)
        raise RuntimeError(f"change set for {name} failed: {reason}") from None
    cfn.execute_change_set(ChangeSetName=change_set)
    waiter = "stack_create_complete" if change_type == "CREATE" else "stack_update_complete"
    cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 10, "MaxAttempts": int(timeout // 10)})
    return _outputs(cfn, name)


def _outputs(cfn: Any, name: str) -> dict[str, str]:
    stack_description = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack_description.get("Outputs", [])}


def seed_root(outputs: dict[str, str], stage: str) -> dict[str, Any]:
    """The root organization and a new admin key, against the stage's tables (prints the key once)."""
    os.environ.update({"STACK_NAME": data_stack_name(stage), **stack.environment(outputs)})
    from chalicelib.orgs.service import seed_root as seed

    return seed(os.environ.get("ADMIN_API_KEY"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--seed-root", action="store_true", help="after deploying, seed the root org and print its key")
    args = parser.parse_args(argv)
    session = boto3.session.Session()
    try:
        outputs, template_path = prepare(args.stage, session)
    except packaging.PackageError as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    name = app_stack_name(args.stage)
    try:
        parameters = app_parameters(outputs, current_parameters(name, session), os.environ, session)
    except DeployError as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    if parameters["MtlsDomainName"]:
        print(f"mTLS domain {parameters['MtlsDomainName']}: truststore version {parameters['MtlsTruststoreVersion']}")
    template = upload_artifacts(template_path, outputs["DeploymentBucketName"], f"app/{args.stage}", session)
    app_outputs = deploy_app_stack(name, template, outputs["DeploymentBucketName"], session, parameters=parameters)
    for name in ("EndpointURL", "WebsocketConnectEndpointURL"):
        if name in app_outputs:
            print(f"{name}: {app_outputs[name]}")
    if "EndpointURL" in app_outputs:
        print(f"Console: {app_outputs['EndpointURL'].rstrip('/')}/console")
    if args.seed_root:
        seed = seed_root(outputs, args.stage)
        print(f"root org {seed['orgId']}, admin key (shown once): {seed['adminApiKey']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
