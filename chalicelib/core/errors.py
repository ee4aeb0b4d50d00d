"""The contract's errors: one exception type, one body shape.

Every 4xx/5xx body is {"error": {"code", "message", "details": [...]}}.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, details: list[dict[str, str]] | None = None,
                 status: int | None = None, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ValidationError(ApiError):
    status, code = 400, "VALIDATION_ERROR"

    @classmethod
    def field(cls, field: str, message: str) -> "ValidationError":
        return cls(f"{field}: {message}", [{"field": field, "message": message}])


class Unauthorized(ApiError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class Conflict(ApiError):
    status, code = 409, "CONFLICT"


class InvalidTransition(ApiError):
    status, code = 409, "INVALID_TRANSITION"


class JobNotRunning(ApiError):
    status, code = 409, "JOB_NOT_RUNNING"


class IdempotencyKeyReused(ApiError):
    status, code = 409, "IDEMPOTENCY_KEY_REUSED"


class PayloadTooLarge(ApiError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class Unavailable(ApiError):
    status, code = 503, "UNAVAILABLE"


class Internal(ApiError):
    status, code = 500, "INTERNAL"


# Every code the contract names, with its status: the OpenAPI document and
# the tests read this table. RATE_LIMITED is API Gateway's throttling (usage
# plans), never raised by this code, so it has no class; METHOD_NOT_ALLOWED and
# UNSUPPORTED_MEDIA_TYPE are Chalice's own 405/415, reshaped by core/api.py.
ERROR_STATUS = {
    **{cls.code: cls.status
       for cls in (ValidationError, Unauthorized, Forbidden, NotFound, Conflict, InvalidTransition,
                   JobNotRunning, IdempotencyKeyReused, PayloadTooLarge, Unavailable, Internal)},
    "METHOD_NOT_ALLOWED": 405,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
}
