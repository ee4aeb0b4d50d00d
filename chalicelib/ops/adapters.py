"""The ops scan's AWS boundaries beside its store: CloudWatch Logs (the functions' own logs,
a source of failures) and Amazon Bedrock (the optional probable-cause paragraph).

sources.py and analysis.py decide what to read and what to ask; this module is the only
part of the domain besides store.py that reaches `chalicelib.aws`. GitHub is not AWS: its
HTTP client is github.py.
"""
from __future__ import annotations

from typing import Any

from chalicelib.aws import bedrock, cloudwatch_logs


def log_groups(prefix: str, limit: int = 50) -> list[str]:
    """Names of the log groups starting with `prefix` (the project's functions)."""
    return cloudwatch_logs.log_groups(prefix, limit)


def filter_log_events(group: str, pattern: str, start_ms: int, limit: int = 1000,
                      next_token: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the group's events matching `pattern` at or after `start_ms`, and the next token."""
    return cloudwatch_logs.filter_events(group, pattern, start_ms, limit, next_token)


def converse_text(model_id: str, system: str, prompt: str, max_tokens: int = 400) -> str:
    """One Bedrock Converse call: the model's text answer. Raises whatever Bedrock raises."""
    return bedrock.converse_text(model_id, system, prompt, max_tokens)
