"""`chalice package` for a deployed data stack: the app's CloudFormation (SAM) template, complete.

    python -m infra.package --stage prod OUT_DIR      # needs the stage's data stack deployed
    python -m infra.package --check                   # make lint: package against a throwaway stack, cfn-lint both

What it adds to Chalice's own output:

* the data stack's outputs as the stage's environment variables (table names,
  queue URLs, stream ARN, pepper secret ARN): written into a copy of the
  project, never into the checkout's .chalice/config.json. app.py names its
  queues and the outbox stream at import, so they are also exported to the
  `chalice package` process itself;
* a merge template (`chalice package --merge-template`), built from
  infra/merge-template.json (API Gateway's own answers in the contract's
  error shape: an unknown path is 404 NOT_FOUND, with CORS headers) plus what
  depends on the app: `FunctionResponseTypes: [ReportBatchItemFailures]` on
  every SQS event source (Chalice cannot set it; without it Lambda ignores
  the consumers' partial batch answers), and preflight OPTIONS answered 204
  on every CORS route (Chalice's mock integration answers 200); and the
  WebSocket API's wss:// URL as the REST function's CONSOLE_WEBSOCKET_URL
  (the console's config.json tells the page where to connect).

Without a deployed stack (no OUTBOX_STREAM_ARN) it stops with one clear line:
there is no placeholder ARN to package.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = Path(__file__).with_name("merge-template.json")
# What a project copy needs for `chalice package`: the app, its library, its pins, its config.
PROJECT_FILES = ("app.py", "requirements.txt", "chalicelib", ".chalice/config.json", ".chalice/policy.json")
# Top-level packages of this repository the functions import besides chalicelib/. Chalice bundles
# only app.py, chalicelib/ and vendor/ (whose contents land at the zip's root), so each is copied
# into the project copy's vendor/: `import patch_engine` then works on Lambda as it does here.
VENDORED_PACKAGES = ("patch_engine", "fleet_config")
# Optional settings passed on to the functions when set where the package is built.
PASSTHROUGH = ("CORS_ALLOW_ORIGINS", "IDEMPOTENCY_TTL_SECONDS", "EVENT_TTL_SECONDS", "LOG_RETENTION_DAYS",
               "JOBS_IDLE_POLL_SECONDS", "SESSION_RETENTION_DAYS", "GITHUB_REPO", "GITHUB_API_URL", "LLM_MODEL",
               "EXPIRED_SESSION_RETENTION_DAYS", "PATCH_EVENT_RETENTION_DAYS", "INGEST_RETENTION_DAYS",
               "REPORT_RETENTION_DAYS", "AUDIT_RETENTION_DAYS", "RETENTION_SWEEP_PAGES", "ORPHAN_BLOB_GRACE_SECONDS",
               "CONFIG_DRIFT_MINUTES")
CHECK_STACK = "controlplane-pkgcheck"
# The functions that point the mTLS domain at a new truststore version: the REST API's (a CA is made on an
# organization's first enrollment) and the truststore_sync schedule's.
TRUSTSTORE_FUNCTIONS = ("APIHandler", "TruststoreSync")


class PackageError(RuntimeError):
    """A packaging precondition failed; the message is the one line to show."""


def stage_environment(env: dict[str, str]) -> dict[str, str]:
    """The functions' environment: the data stack's variables plus the optional settings that are set."""
    if not env.get("OUTBOX_STREAM_ARN"):
        raise PackageError("no OUTBOX_STREAM_ARN: deploy the data stack first (make deploy STAGE=..., "
                           "or python -m infra.stack controlplane-STAGE), then package with its outputs")
    return {**{name: os.environ[name] for name in PASSTHROUGH if os.environ.get(name)}, **env}


def copy_project(workdir: Path, stage: str, env: dict[str, str]) -> Path:
    """A copy of the project whose config gives `stage` these environment variables."""
    project = workdir / "project"
    for name in PROJECT_FILES:
        source, target = ROOT / name, project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    for name in VENDORED_PACKAGES:
        shutil.copytree(ROOT / name, project / "vendor" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config.setdefault("stages", {}).setdefault(stage, {}).setdefault("environment_variables", {}).update(env)
    config_path.write_text(json.dumps(config, indent=2))
    return project


def _websocket_stage() -> str:
    return json.loads((ROOT / ".chalice" / "config.json").read_text()).get("websocket_api_stage", "api")


def merge_template(plain: dict[str, Any], cors_origin: str | None) -> dict[str, Any]:
    """infra/merge-template.json plus the entries that depend on the app's functions and routes."""
    merge = json.loads(MERGE_TEMPLATE.read_text())
    resources = merge.setdefault("Resources", {})
    for name, resource in plain.get("Resources", {}).items():
        for event_name, event in (resource.get("Properties", {}).get("Events") or {}).items():
            if event.get("Type") == "SQS":
                resources.setdefault(name, {}).setdefault("Properties", {}).setdefault("Events", {})[event_name] = {
                    "Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}}
    if "WebsocketAPI" in plain.get("Resources", {}) and "APIHandler" in plain.get("Resources", {}):
        # The console's config.json names the WebSocket API's URL; only this stack knows the API's id.
        resources.setdefault("APIHandler", {}).setdefault("Properties", {}).setdefault("Environment", {}).setdefault(
            "Variables", {})["CONSOLE_WEBSOCKET_URL"] = {
                "Fn::Sub": "wss://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + _websocket_stage()}
    _mtls_truststore_access(plain, resources)
    api = plain.get("Resources", {}).get("RestAPI")
    if api is not None:
        body = resources["RestAPI"]["Properties"]["DefinitionBody"]
        if cors_origin:
            for response in body["x-amazon-apigateway-gateway-responses"].values():
                response["responseParameters"] = {
                    "gatewayresponse.header.Access-Control-Allow-Origin": f"'{cors_origin}'"}
        paths = {}
        for path, operations in api["Properties"]["DefinitionBody"].get("paths", {}).items():
            options = operations.get("options")
            if not options:
                continue
            integration = options["x-amazon-apigateway-integration"]
            headers = integration["responses"]["default"].get("responseParameters", {})
            paths[path] = {"options": {
                "responses": {"204": {"description": "CORS preflight",
                                      "headers": {name.rsplit(".", 1)[-1]: {"type": "string"} for name in headers}}},
                "x-amazon-apigateway-integration": {
                    "requestTemplates": {"application/json": '{"statusCode": 204}'},
                    "responses": {"default": {"statusCode": "204"}}},
            }}
        if paths:
            body["paths"] = paths
    return merge


def _mtls_truststore_access(plain: dict[str, Any], resources: dict[str, Any]) -> None:
    """What the app needs to point the mTLS domain at each new truststore version (chalicelib/gateways/service.py
    sync_truststore), from the app stack's own parameters, so it follows them whoever deploys: MTLS_DOMAIN_NAME
    (empty: no domain, no call) on the functions that make CAs or sync (the REST API's, truststore_sync) and, only
    with the domain on, a policy on their roles alone allowing GET and PATCH of that one domain and reading that
    one truststore object's versions (API Gateway reads it with the caller's rights). .chalice/policy.json is
    static: it could only name every domain, for every function."""
    roles: list[str] = []
    for name in TRUSTSTORE_FUNCTIONS:
        function = plain.get("Resources", {}).get(name)
        if function is None:
            continue
        resources.setdefault(name, {}).setdefault("Properties", {}).setdefault("Environment", {}).setdefault(
            "Variables", {})["MTLS_DOMAIN_NAME"] = {"Ref": "MtlsDomainName"}
        role = function.get("Properties", {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role and role["Fn::GetAtt"][0] not in roles:
            roles.append(role["Fn::GetAtt"][0])
    if not roles:
        return
    truststore_object = {"Fn::Select": [1, {"Fn::Split": ["s3://", {"Ref": "MtlsTruststoreUri"}]}]}
    resources["MtlsTruststorePolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Condition": "MtlsEnabled",
        "Properties": {
            "PolicyName": "mtls-domain-truststore",
            "Roles": [{"Ref": role} for role in roles],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["apigateway:GET", "apigateway:PATCH"],
                 "Resource": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/domainnames/${MtlsDomainName}"}},
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                 "Resource": {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${Object}", {"Object": truststore_object}]}},
            ]},
        },
    }


def _chalice(project: Path, args: list[str], env: dict[str, str]) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    done = subprocess.run([str(chalice), *args], cwd=project, env={**os.environ, **env},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise PackageError(f"chalice {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def package(stage: str, env: dict[str, str], out_dir: Path) -> Path:
    """Package the app for `stage` with the data stack's `env` into `out_dir`; returns the template's path."""
    functions_env = stage_environment(env)
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as tmp:
        project = copy_project(Path(tmp), stage, functions_env)
        _share_cache(project)
        plain_dir = Path(tmp) / "plain"
        _chalice(project, ["package", "--stage", stage, str(plain_dir)], functions_env)
        plain = json.loads((plain_dir / "sam.json").read_text())
        merge_path = Path(tmp) / "merge.json"
        cors_origin = functions_env.get("CORS_ALLOW_ORIGINS", "*").strip() or None
        merge_path.write_text(json.dumps(merge_template(plain, cors_origin), indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        _chalice(project, ["package", "--stage", stage, "--merge-template", str(merge_path), str(out_dir)],
                 functions_env)
        _keep_cache(project)
    return out_dir / "sam.json"


def _share_cache(project: Path) -> None:
    """Chalice caches the built dependency layer in .chalice/deployments (git-ignored): reuse the checkout's."""
    cache = ROOT / ".chalice" / "deployments"
    if cache.is_dir():
        shutil.copytree(cache, project / ".chalice" / "deployments", dirs_exist_ok=True)


def _keep_cache(project: Path) -> None:
    built = project / ".chalice" / "deployments"
    if built.is_dir():
        shutil.copytree(built, ROOT / ".chalice" / "deployments", dirs_exist_ok=True)


def missing_from_deployment(out_dir: Path) -> list[str]:
    """What the functions import from this repository but no zip Chalice built holds (empty: all there).

    The app's zip holds app.py and chalicelib/ at its root; with `automatic_layer` the vendored packages
    go into the managed layer, under python/lib/python3.13/site-packages/ (on the functions' sys.path)."""
    import zipfile

    site = "python/lib/python3.13/site-packages/"
    names: set[str] = set()
    for zip_path in sorted(out_dir.glob("*.zip")):
        with zipfile.ZipFile(zip_path) as archive:
            inside = archive.namelist()
        print(f"{zip_path.name}: {len(inside)} files, "
              + ", ".join(f"{p}/ {sum(n.startswith((p + '/', site + p + '/')) for n in inside)}"
                          for p in ("chalicelib", *VENDORED_PACKAGES)))
        names.update(name.removeprefix(site) for name in inside)
    wanted = ["app.py", "chalicelib/__init__.py", "chalicelib/core/api.py"]
    for package_name in VENDORED_PACKAGES:
        wanted += sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / package_name).glob("*.py"))
    return [name for name in wanted if name not in names]


def cfn_lint(*templates: Path) -> int:
    """cfn-lint's exit status: errors are bit 2 (warnings 4 and infos 8 do not fail the check)."""
    done = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), *map(str, templates)],
                          capture_output=True, text=True)
    if done.stdout or done.stderr:
        print(done.stdout + done.stderr, end="")
    return done.returncode


def check() -> int:
    """Package against the template's naming for a throwaway stack deployed into moto, then cfn-lint both."""
    import logging
    import warnings

    from moto import mock_aws

    from infra import stack

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), warnings.catch_warnings():
        # moto: "no CloudFormation support for AWS::SecretsManager::Secret"; infra/stack.py makes the secret itself.
        warnings.simplefilter("ignore")
        logging.getLogger("moto").setLevel(logging.ERROR)
        env = {"STACK_NAME": CHECK_STACK, **stack.environment(stack.deploy(CHECK_STACK))}
    with tempfile.TemporaryDirectory(prefix="package-check-") as tmp:
        template = package("dev", env, Path(tmp) / "out")
        status = cfn_lint(stack.TEMPLATE_PATH, template)
        missing = missing_from_deployment(template.parent)
        if missing:
            print(f"the deployment package lacks {', '.join(missing)}")
            status |= 2
        resources = json.loads(template.read_text())["Resources"]
        sqs_events = [event for resource in resources.values()
                      for event in (resource.get("Properties", {}).get("Events") or {}).values()
                      if event.get("Type") == "SQS"]
        print(f"packaged: {len(resources)} resources, {len(sqs_events)} SQS event sources "
              f"(ReportBatchItemFailures on {sum('FunctionResponseTypes' in e['Properties'] for e in sqs_events)}); "
              f"runtime {sorted({r['Properties'].get('Runtime') for r in resources.values()
                                 if r['Type'] == 'AWS::Serverless::Function'})}")
    if status & 2:
        print("cfn-lint found errors")
        return 1
    print("cfn-lint: no errors in infra/template.yaml and the packaged app")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--check", action="store_true", help="package against a throwaway moto stack, cfn-lint both")
    parser.add_argument("out_dir", nargs="?", type=Path, help="where sam.json and the zips go")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check()
        if args.out_dir is None:
            parser.error("OUT_DIR is required without --check")
        from infra.stack import OUTPUT_ENV

        env = {name: os.environ[name] for name in ("STACK_NAME", *OUTPUT_ENV.values()) if os.environ.get(name)}
        print(package(args.stage, env, args.out_dir))
        return 0
    except PackageError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
