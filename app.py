"""Wiring only: blueprints, WebSocket handlers, stream and queue consumers, schedules.

Rules live in chalicelib/<domain>/; see docs/ARCHITECTURE.md for the tour.

Every Lambda function of the app imports this module, so it imports only
what registration needs (the REST blueprints); the WebSocket, stream, queue
and schedule handlers import their modules when they first run, so a cold
start pays for its own handler only (bench/cold_import.py).
"""
from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from chalice import Cron, Rate, Response

if TYPE_CHECKING:
    from chalice.app import CloudWatchEvent, DynamoDBEvent, SQSEvent, WebsocketEvent

    from chalicelib.core.context import Ctx
    from aws_lambda_powertools import Logger

from chalicelib.agents import routes as agents_routes
from chalicelib.audit import routes as audit_routes
from chalicelib.commands import routes as commands_routes
from chalicelib.console import routes as console_routes
from chalicelib.core.api import contract_errors
from chalicelib.core.application import ControlPlaneApp
from chalicelib.core.config import on_lambda, settings
from chalicelib.fleetconfig import routes as fleetconfig_routes
from chalicelib.gateways import routes as gateways_routes
from chalicelib.github_tools import routes as github_tools_routes
from chalicelib.ingest import routes as ingest_routes
from chalicelib.instances import routes as instances_routes
from chalicelib.jobs import routes as jobs_routes
from chalicelib.logs import routes as logs_routes
from chalicelib.ops import routes as ops_routes
from chalicelib.orgs import routes as orgs_routes
from chalicelib.patches import routes as patches_routes
from chalicelib.reports import routes as reports_routes
from chalicelib.sessions import routes as sessions_routes
from chalicelib.settings_registry import routes as settings_routes
from chalicelib.system import routes as system_routes
from chalicelib.tasks import routes as tasks_routes
from chalicelib.users import routes as users_routes
from chalicelib.workspaces import routes as workspaces_routes

if on_lambda():
    # Once per cold start, and here: a function without its pepper stops at init with
    # one clear log line (chalicelib/core/config.py) instead of serving with a default.
    settings().api_key_pepper  # noqa: B018 - reading it is the check

# configure_logs=False: Chalice would put a plain handler on the "control-plane" logger, the one
# the Powertools Logger (service "control-plane") writes its JSON through, and every line would
# print twice; app.log goes through the Powertools handler instead (to the root logger until then)
app = ControlPlaneApp(app_name="control-plane", configure_logs=False)
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_middleware(contract_errors, "http")

for blueprint in (system_routes.bp, orgs_routes.bp, agents_routes.bp, jobs_routes.bp,
                  instances_routes.bp, logs_routes.bp, settings_routes.bp,
                  sessions_routes.bp, tasks_routes.bp, audit_routes.bp,
                  ingest_routes.bp, commands_routes.bp, workspaces_routes.bp, patches_routes.bp,
                  reports_routes.bp, ops_routes.bp, console_routes.bp, fleetconfig_routes.bp,
                  github_tools_routes.bp, gateways_routes.bp, users_routes.bp):
    app.register_blueprint(blueprint)


@functools.lru_cache(maxsize=1)
def _logger() -> "Logger":
    from chalicelib.core.observability import logger

    shared: Logger = logger  # the module's lazily built Logger (typed Any through its __getattr__)
    return shared


def _system_ctx() -> "Ctx":
    from chalicelib.core.context import Ctx

    return Ctx.system()


# --- WebSocket API ------------------------------------------------------------

@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response:
    from chalicelib.fanout import handlers as ws

    return Response(body="", status_code=ws.connect(event.to_dict()))


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    from chalicelib.fanout import handlers as ws

    ws.message(event.to_dict())


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    from chalicelib.fanout import handlers as ws

    ws.disconnect(event.to_dict())


# --- stream and queue consumers ---------------------------------------------------

# Up to 1,000 events a batch: a ?batch=1 socket gets one message per batch, so fuller batches under load
# mean fewer management-API posts (docs/SCALE.md); a quiet stream still delivers at once (no batching window).
@app.on_dynamodb_record(stream_arn=settings().require_outbox_stream_arn(), batch_size=1000, starting_position="LATEST")
def outbox_fanout(event: DynamoDBEvent) -> None:
    from chalicelib.fanout import adapters, handlers as ws

    ws.outbox_records(adapters.stream_image(r.new_image) for r in event if r.event_name == "INSERT" and r.new_image)


@app.on_dynamodb_record(stream_arn=settings().require_outbox_stream_arn(), batch_size=100,
                        starting_position="LATEST", name="github_approvals")
def github_approvals(event: DynamoDBEvent) -> dict[str, int]:
    """GitHub tool calls a person approved run now (chalicelib/github_tools/service.py: approval:decided)."""
    from chalicelib.fanout import adapters
    from chalicelib.github_tools import service as github_tools

    return github_tools.on_outbox_items(adapters.stream_image(r.new_image) for r in event
                                        if r.event_name == "INSERT" and r.new_image)


@app.on_sqs_message(queue=settings().github_tools_queue_name, batch_size=10)
def github_tools_retry(event: SQSEvent) -> Any:
    """GitHub tool calls GitHub rate-limited, due again (SQS delay); partial batch failures reported."""
    from chalicelib.github_tools import worker as github_worker

    return github_worker.handle_batch(event.to_dict(), event.context)


@app.on_sqs_message(queue=settings().jobs_queue_name, batch_size=10)
def jobs_work(event: SQSEvent) -> Any:
    """Delayed lease/timeout checks (chalicelib/jobs/leases.py); partial batch failures reported."""
    from chalicelib.jobs import leases as job_leases

    return job_leases.handle_batch(event.to_dict(), event.context)


# --- schedules (listed in docs/DEPLOY.md; fired locally through /_local/schedules) --

@app.schedule(Rate(1, unit=Rate.MINUTES))
def jobs_lease_sweep(event: CloudWatchEvent) -> dict[str, int]:
    """Backstop to the delayed lease checks: requeues or fails RUNNING jobs whose lease or timeout ran out."""
    from chalicelib.jobs import leases as job_leases

    return job_leases.sweep()


@app.schedule(Rate(1, unit=Rate.MINUTES))
def ws_token_expiry(event: CloudWatchEvent) -> dict[str, int]:
    """WebSockets opened with a token (a person's) are closed once it expires (chalicelib/fanout/expiry.py)."""
    from chalicelib.fanout import expiry

    return expiry.sweep()


@app.schedule(Rate(15, unit=Rate.MINUTES))
def expire_sessions(event: CloudWatchEvent) -> dict[str, int]:
    """Open sessions older than SESSION_RETENTION_DAYS become expired (chalicelib/sessions/service.py)."""
    from chalicelib.sessions import service as sessions

    result = sessions.expire_old(_system_ctx())
    _logger().info("session retention", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.MINUTES))
def commands_expire(event: CloudWatchEvent) -> None:
    """Pending commands past their ttlSeconds become expired (chalicelib/commands/service.py)."""
    from chalicelib.commands import service as commands_service

    expired = commands_service.expire_due(_system_ctx())
    _logger().info("commands expired", extra={"expired": expired})


@app.schedule(Rate(1, unit=Rate.HOURS))
def retention_sweep(event: CloudWatchEvent) -> dict[str, Any]:
    """Items past their lifetime that DynamoDB TTL has not deleted yet (chalicelib/retention/service.py)."""
    from chalicelib.retention import service as retention

    result = retention.sweep(_system_ctx())
    _logger().info("retention sweep", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.HOURS))
def workspace_blob_sweep(event: CloudWatchEvent) -> dict[str, Any]:
    """Workspace blobs no manifest names, past ORPHAN_BLOB_GRACE_SECONDS, are deleted (chalicelib/retention)."""
    from chalicelib.retention import service as retention

    result = retention.sweep_workspace_blobs(_system_ctx())
    _logger().info("workspace blob sweep", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.HOURS))
def purge_ended_sessions(event: CloudWatchEvent) -> dict[str, Any]:
    """Terminal sessions older than EXPIRED_SESSION_RETENTION_DAYS are deleted (chalicelib/sessions/service.py)."""
    from chalicelib.sessions import service as sessions

    result = sessions.purge_ended(_system_ctx())
    _logger().info("ended sessions purged", extra=result)
    return result


@app.schedule(Rate(1, unit=Rate.MINUTES))
def truststore_sync(event: CloudWatchEvent) -> dict[str, Any]:
    """The mTLS truststore holds every organization's CA and the mTLS domain trusts that version: the backstop
    to the update made when a CA is made (chalicelib/gateways/service.py sync_truststore; no domain: nothing)."""
    from chalicelib.gateways import service as gateways_service

    if not settings().mtls_domain_name:
        return {"state": "off"}
    result = gateways_service.sync_truststore()
    if result.get("written") or result.get("pointed") or result.get("state") != "current":  # quiet when idle
        _logger().info("truststore sync", extra=result)
    return result


@app.on_sqs_message(queue=settings().patches_queue_name, batch_size=10)
def patches_work(event: SQSEvent) -> Any:
    """Patch batches (chalicelib/patches/worker.py): FIFO per workspace, partial batch failures reported."""
    from chalicelib.patches import worker as patches_worker

    return patches_worker.handle_batch(event.to_dict(), event.context)


@app.schedule(Cron(0, 9, "*", "*", "?", "*"), name="ops_nightly_scan")
def ops_nightly_scan(event: CloudWatchEvent) -> dict[str, Any]:
    """The nightly ops scan (chalicelib/ops/scan.py): failures grouped and filed on GitHub."""
    from chalicelib.ops import service as ops_service

    return ops_service.nightly(event.context)


def local_seed() -> dict[str, Any]:
    """Called by the local stack at start: the root organization and its admin key.

    The local stack serves many requests at once, so it imports now what a Lambda
    imports on its first request (chalicelib/core/lazy.py).
    """
    from chalicelib.core.api import load_all
    from chalicelib.orgs.service import seed_root

    load_all()

    seed = seed_root(_system_ctx(), os.environ.get("ADMIN_API_KEY"))
    if os.environ.get("COGNITO_USER_POOL_ID") and os.environ.get("ADMIN_EMAIL"):
        # The first person, an admin of the root organization (the local stack sets ADMIN_EMAIL).
        from chalicelib.users.service import seed_first_person

        seed.update(seed_first_person(_system_ctx().for_org(seed["orgId"]), os.environ["ADMIN_EMAIL"],
                                      os.environ.get("ADMIN_PASSWORD") or None))
    return seed
