"""Wiring only: blueprints, WebSocket handlers, stream and queue consumers, schedules.

Rules live in chalicelib/<domain>/; see docs/ARCHITECTURE.md for the tour.
"""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from chalice import Rate, Response

from chalicelib.agents import routes as agents_routes
from chalicelib.aws.dynamo import deserialize_item
from chalicelib.core.api import contract_errors
from chalicelib.core.application import ControlPlaneApp
from chalicelib.core.config import settings
from chalicelib.fanout import fanout, handlers as ws
from chalicelib.jobs import leases as job_leases, routes as jobs_routes
from chalicelib.instances import routes as instances_routes
from chalicelib.logs import routes as logs_routes
from chalicelib.orgs import routes as orgs_routes
from chalicelib.orgs.service import seed_root
from chalicelib.settings_registry import routes as settings_routes
from chalicelib.system import routes as system_routes

logger = Logger(service="control-plane")
app = ControlPlaneApp(app_name="control-plane")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_middleware(contract_errors, "http")

for blueprint in (system_routes.bp, orgs_routes.bp, agents_routes.bp, jobs_routes.bp,
                  instances_routes.bp, logs_routes.bp, settings_routes.bp):
    app.register_blueprint(blueprint)


@app.on_ws_connect()
def ws_connect(event):
    return Response(body="", status_code=ws.connect(event.to_dict()))


@app.on_ws_message()
def ws_message(event):
    ws.message(event.to_dict())


@app.on_ws_disconnect()
def ws_disconnect(event):
    ws.disconnect(event.to_dict())


@app.on_dynamodb_record(stream_arn=settings().outbox_stream_arn, batch_size=100, starting_position="LATEST")
def outbox_fanout(event):
    events = [fanout.event_from_image(deserialize_item(r.new_image))
              for r in event if r.event_name == "INSERT" and r.new_image]
    result = fanout.deliver(events)
    logger.info("fan-out", extra={"events": len(events), "sent": result.sent, "gone": len(result.gone)})


@app.on_sqs_message(queue=settings().jobs_queue_name, batch_size=10)
def jobs_work(event):
    """Delayed lease/timeout checks (chalicelib/jobs/leases.py); partial batch failures reported."""
    return job_leases.handle_batch(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def jobs_lease_sweep(event):
    """Backstop to the delayed lease checks: requeues or fails RUNNING jobs whose lease or timeout ran out."""
    return job_leases.sweep()


def local_seed() -> dict:
    """Called by the local stack at start: the root organization and its admin key."""
    return seed_root(os.environ.get("ADMIN_API_KEY"))
