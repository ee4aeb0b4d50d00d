from __future__ import annotations

from typing import Optional

from chalicelib.core.models import ResponseModel


class HealthError(ResponseModel):
    code: str
    message: str


class Health(ResponseModel):
    status: str
    checks: dict[str, str]
    error: Optional[HealthError] = None
