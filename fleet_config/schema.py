"""The published JSON Schema of the configuration document (`GET /schemas/agent-config.json`)."""
from __future__ import annotations

from typing import Any

from fleet_config.document import AgentConfig

SCHEMA_PATH = "/schemas/agent-config.json"
# The document's $id where the control plane serves it (the ids of its other /schemas documents use this base).
SCHEMA_ID = "urn:agent-fleet-control-plane:schemas:agent-config.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The document's JSON Schema (draft 2020-12), generated from the models that validate it."""
    schema = AgentConfig.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": DRAFT, "$id": SCHEMA_ID, **schema}
