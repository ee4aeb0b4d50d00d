"""Calling the app's handlers the way Lambda calls them: (event, context).

Chalice keeps, for each registered handler, the callable that Lambda would
invoke in ``app.handler_map[name]`` (an EventSourceHandler for SQS, streams and
schedules, a WebsocketEventSourceHandler for WebSocket routes). Calling that
with the event dict runs the app's middleware and event classes exactly as on
AWS; looking it up by the registration name also covers blueprints.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice import Chalice
from chalice.app import BaseEventSourceConfig
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.local import LambdaContext


class Lambdas:
    """The app's handlers plus the thread pool that runs the blocking ones for the server."""

    def __init__(self, app: Chalice, workers: int = 32) -> None:
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="handler")

    def invoke(self, config: BaseEventSourceConfig, event: dict[str, Any]) -> Any:
        """Run one handler with a fresh Lambda context (powertools and the app read it)."""
        context = LambdaContext(
            function_name=f"{self.app.app_name}-local-{config.name}",
            memory_size=DEFAULT_LAMBDA_MEMORY_SIZE,
            max_runtime_ms=DEFAULT_LAMBDA_TIMEOUT * 1000,
        )
        return self.app.handler_map[config.name](event, context)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
