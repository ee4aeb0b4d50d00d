"""Base for every request and response model.

JSON is camelCase; inputs also accept the snake_case names of the original
plans (agent_id, page_size, ...). Unknown fields are rejected, as AWS APIs
reject unknown parameters: a typo fails loudly instead of being ignored.
"""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


# defer_build: a model's validator is built on its first use, not at import, so a
# cold start pays only for the models its handler touches (bench/cold_import.py).
class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
        serialize_by_alias=True, extra="forbid", defer_build=True,
    )


class ResponseModel(BaseModel):
    """Responses: camelCase out, and tolerant of extra fields when read back (tests, SDK)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, defer_build=True)


class PageModel(ResponseModel):
    """A page of a list: `{"items": [...], "nextToken": ...}`; nextToken is null, not absent, on the last page."""

    next_token: Optional[str] = None
