"""The fleet configuration document: its models, its merge rule and its JSON Schema. Pure.

One package used by two callers: the control plane's `fleetconfig` domain (validates what an
operator writes, merges an agent's document over its pools', publishes the JSON Schema at
`GET /schemas/agent-config.json`) and the edge gateway (validates what it fetched before applying
it). It reaches Lambda as a top-level package beside `chalicelib/` (infra/package.py vendors it,
as it does patch_engine).

    document.py  AgentConfig and its parts (pydantic v2, unknown keys refused), parse(), field_errors()
    merge.py     merge(): pools in order, then the agent's document; diff(): a merge patch from one
                 merged document to another (the `delta` of GET /agents/{agentId}/config)
    schema.py    json_schema(): the published JSON Schema (draft 2020-12)

import-linter holds it pure: it imports nothing of chalicelib, agent, edge_gateway, boto3 or botocore.
The merge rule is written out in merge.py and in docs/GATEWAY.md ("Configuration").
"""
from fleet_config.document import (
    ADAPTER_TYPES, Adapter, AdapterRemoval, AgentConfig, BufferSettings, ConfigError, ExecAdapter,
    PrometheusAdapter, TailAdapter, UplinkSettings, field_errors, parse,
)
from fleet_config.merge import diff, merge
from fleet_config.schema import SCHEMA_ID, SCHEMA_PATH, json_schema

__all__ = [
    "ADAPTER_TYPES", "Adapter", "AdapterRemoval", "AgentConfig", "BufferSettings", "ConfigError", "ExecAdapter",
    "PrometheusAdapter", "TailAdapter", "UplinkSettings", "field_errors", "parse", "diff", "merge",
    "SCHEMA_ID", "SCHEMA_PATH", "json_schema",
]
