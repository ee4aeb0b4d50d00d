"""The Chalice application class.

Chalice keeps the request being handled in ``app.current_request``, one
attribute per process. Lambda runs one request per process at a time, so that
is safe there; the local stack serves many requests at once from a thread
pool, so here the attribute is per thread. Nothing else changes.
"""
from __future__ import annotations

import threading
from typing import Any

from chalice import Chalice


class ControlPlaneApp(Chalice):
    _per_thread = threading.local()

    @property
    def current_request(self) -> Any:
        return getattr(self._per_thread, "request", None)

    @current_request.setter
    def current_request(self, value: Any) -> None:
        self._per_thread.request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self._per_thread, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._per_thread.lambda_context = value
