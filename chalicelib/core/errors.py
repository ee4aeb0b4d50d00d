"""The domain's errors: one exception type, one body shape, no HTTP status.

Services raise these; the pipeline (core/api.py, `ERROR_STATUS`) is the one
place a code becomes an HTTP status. Every 4xx/5xx body is
{"error": {"code", "message", "details": [...]}}.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, details: list[dict[str, str]] | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ValidationError(ApiError):
    code = "VALIDATION_ERROR"

    @classmethod
    def field(cls, field: str, message: str) -> "ValidationError":
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class Unauthorized(ApiError):
    code = "UNAUTHORIZED"


class Forbidden(ApiError):
    code = "FORBIDDEN"


class NotFound(ApiError):
    code = "NOT_FOUND"


class Conflict(ApiError):
    code = "CONFLICT"


class InvalidTransition(ApiError):
    code = "INVALID_TRANSITION"


class JobNotRunning(ApiError):
    code = "JOB_NOT_RUNNING"


class IdempotencyKeyReused(ApiError):
    code = "IDEMPOTENCY_KEY_REUSED"


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(ApiError):
    """Too many calls in a window (the GitHub tools' per-organization limit): retry after Retry-After."""

    code = "RATE_LIMITED"


class Unavailable(ApiError):
    code = "UNAVAILABLE"


class Internal(ApiError):
    code = "INTERNAL"


# Every error class services raise (core/api.py maps each code to its status).
ERRORS = (ValidationError, Unauthorized, Forbidden, NotFound, Conflict, InvalidTransition, JobNotRunning,
          IdempotencyKeyReused, PayloadTooLarge, Unavailable, Internal)
