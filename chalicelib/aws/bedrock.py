"""The one place that calls Amazon Bedrock (the ops scan's optional probable-cause paragraph)."""
from __future__ import annotations

from chalicelib.aws import clients


def converse_text(model_id: str, system: str, prompt: str, max_tokens: int = 400) -> str:
    """One Converse call: the model's text answer. Raises whatever Bedrock raises."""
    response = clients.client("bedrock-runtime").converse(
        modelId=model_id,
        system=[{"text": system}],
        messages=[{"role": "user", "content": [{"text": prompt}]}],
        inferenceConfig={"maxTokens": max_tokens, "temperature": 0.2},
    )
    parts = response["output"]["message"]["content"]
    return "".join(p.get("text", "") for p in parts).strip()
