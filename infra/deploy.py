"""`make deploy STAGE=prod`: the data stack, then Chalice, then what Chalice cannot configure.

1. Deploy infra/template.yaml as stack `controlplane-{stage}` (tables, queues, bucket).
2. Write its outputs into .chalice/config.json as the stage's environment variables.
3. `chalice deploy --stage {stage}` with those variables in the environment too:
   app.py names its queues and the outbox stream ARN when it is imported, which
   happens on the deploying machine.
4. Turn on ReportBatchItemFailures for every SQS event source mapping of the
   app: Chalice creates the mappings without it, and without it Lambda ignores
   the handlers' partial-batch responses.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

from infra.stack import deploy as deploy_stack, environment

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"


def write_stage_environment(stage: str, env: dict[str, str], config_path: Path = CONFIG) -> None:
    config = json.loads(config_path.read_text())
    stage_config = config.setdefault("stages", {}).setdefault(stage, {})
    stage_config.setdefault("environment_variables", {}).update(env)
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def enable_partial_batch_responses(app_name: str, stage: str, session: boto3.session.Session) -> list[str]:
    """Set FunctionResponseTypes=ReportBatchItemFailures on the app's SQS mappings; returns their UUIDs."""
    lam = session.client("lambda")
    prefix = f"{app_name}-{stage}-"
    updated = []
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for mapping in page["EventSourceMappings"]:
            function = mapping["FunctionArn"].split(":function:")[-1].split(":")[0]
            if not function.startswith(prefix) or ":sqs:" not in mapping.get("EventSourceArn", ""):
                continue
            if "ReportBatchItemFailures" not in mapping.get("FunctionResponseTypes", []):
                lam.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=["ReportBatchItemFailures"])
            updated.append(mapping["UUID"])
    return updated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args()
    stack = f"controlplane-{args.stage}"
    session = boto3.session.Session()
    env = {"STACK_NAME": stack, **environment(deploy_stack(stack, session))}
    write_stage_environment(args.stage, env)
    subprocess.run([str(Path(sys.executable).with_name("chalice")), "deploy", "--stage", args.stage], cwd=ROOT, check=True,
                   env={**os.environ, **env})
    app_name = json.loads(CONFIG.read_text())["app_name"]
    print("ReportBatchItemFailures on:", enable_partial_batch_responses(app_name, args.stage, session))


if __name__ == "__main__":
    main()
