"""Fleet configuration: requests and responses. The document itself is fleet_config.AgentConfig."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field
from pydantic.json_schema import JsonDict

from chalicelib.core.models import ApiModel, ResponseModel, ShowsNulls
from chalicelib.fleetconfig import rules
from fleet_config import AgentConfig

_DOCUMENT: JsonDict = {"description": "a configuration document: GET /schemas/agent-config.json", "type": "object"}
MAX_VERSION = 2**53 - 1  # a JSON number every client reads exactly


class PutConfigRequest(ApiModel):
    """A pool's or an agent's own document, replacing the version it names (0: the first write)."""

    desired: AgentConfig
    expected_version: int = Field(ge=0, le=MAX_VERSION)


class ReportRequest(ApiModel):
    """What the gateway did with a version: applied it, or failed to (it keeps the last good one)."""

    version: int = Field(ge=0, le=MAX_VERSION)
    status: Literal["applied", "failed"]
    error: Optional[str] = Field(default=None, max_length=rules.MAX_ERROR_CHARS)


class ConfigWritten(ResponseModel):
    """One layer after a write: its new version and its document as stored."""

    version: int
    desired: dict[str, Any] = Field(json_schema_extra=_DOCUMENT)


class PoolConfig(ConfigWritten):
    pool: str
    updated_at: Optional[str] = None


class LayerView(ResponseModel):
    """One input of the merged document (the merged version is the sum of these versions)."""

    scope: Literal["pool", "agent"]
    name: str
    version: int
    updated_at: str


class ReportedView(ShowsNulls):
    shown_null = ("error",)

    version: int
    status: Literal["applied", "failed"]
    error: Optional[str] = None
    at: str


class AgentConfigView(ShowsNulls):
    """The agent's merged document, what its gateway reported, and what it still has to change."""

    shown_null = ("reported",)

    version: int = Field(description="the sum of the versions of the layers: rises on every change of any of them")
    desired: dict[str, Any] = Field(json_schema_extra={**_DOCUMENT, "description": "the merged document"})
    reported: Optional[ReportedView] = None
    delta: dict[str, Any] = Field(description="a JSON merge patch (RFC 7396) from the last applied document to "
                                              "desired: {} when in sync")
    layers: list[LayerView] = Field(default_factory=list,
                                    description="the inputs, lowest precedence first: pools in the agent's order, "
                                                "then the agent's own document")
