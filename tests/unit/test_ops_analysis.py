"""The optional Bedrock paragraph, against botocore's Stubber (moto has no Converse)."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.aws import clients
from chalicelib.core import config
from chalicelib.core.context import Ctx
from chalicelib.ops import analysis, rules

GROUP = {"fingerprint": "0123456789abcdef", "kind": "job", "count": 7, "severity": "high",
         "key": "job|build|EXIT_CODE: step compile exited <n> on worker<n>", "firstSeen": "a", "lastSeen": "b",
         "samples": [{"kind": "job", "sourceId": "J1", "at": "2026-12-01T01:00:00.000Z", "message": "exited 2"}]}


@pytest.fixture
def bedrock(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    monkeypatch.setitem(clients._clients, ("bedrock-runtime", None), client)
    with Stubber(client) as stub:
        yield stub


@pytest.fixture
def model(monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "anthropic.claude-3-haiku-20240307-v1:0")
    config.settings.cache_clear()
    yield
    monkeypatch.delenv("LLM_MODEL")
    config.settings.cache_clear()


def test_paragraph_goes_into_the_issue_body(bedrock, model):
    bedrock.add_response("converse", {
        "output": {"message": {"role": "assistant", "content": [{"text": "The compiler step\nruns out of disk."}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 10, "outputTokens": 8, "totalTokens": 18},
        "metrics": {"latencyMs": 5}},
        {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "system": [{"text": analysis.SYSTEM}],
         "messages": [{"role": "user", "content": [{"text": analysis.prompt(GROUP)}]}],
         "inferenceConfig": {"maxTokens": 400, "temperature": 0.2}})
    text = analysis.probable_cause(Ctx.system("o"), GROUP)
    assert text == "The compiler step runs out of disk."
    assert "Probable cause" in rules.issue_body(GROUP, b"marker-key", text)
    bedrock.assert_no_pending_responses()


def test_any_failure_falls_back_to_the_plain_body(bedrock, model):
    bedrock.add_client_error("converse", service_error_code="AccessDeniedException", http_status_code=403)
    assert analysis.probable_cause(Ctx.system("o"), GROUP) is None


def test_off_without_a_model(bedrock):
    config.settings.cache_clear()
    assert analysis.probable_cause(Ctx.system("o"), GROUP) is None  # no call made: the stub has none queued
