from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import Field

from chalicelib.core.models import ApiModel, PageModel, ResponseModel

ORDER_PATTERN = r"^[A-Za-z0-9._:\-]+$"


class GenerateRequest(ApiModel):
    order_id: Optional[str] = Field(default=None, min_length=1, max_length=128, pattern=ORDER_PATTERN)


class ReportQuery(ApiModel):
    order_id: Optional[str] = Field(default=None, min_length=1, max_length=128, pattern=ORDER_PATTERN)
    generate: bool = False
    limit: int = Field(default=50, ge=1, le=200)
    next_token: Optional[str] = Field(default=None, max_length=2048)


class Report(ResponseModel):
    order_id: str
    generated_at: str
    summary: dict[str, Any]
    markdown: str


class ReportPage(PageModel):
    items: list[Report]


# GET /api/delivery/reports: one report (?orderId=) or the list (documented as either).
ReportOrPage = Union[Report, ReportPage]
