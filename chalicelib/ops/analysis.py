"""Optional: a one-paragraph probable cause for a new issue, from Bedrock's Converse API.

Off unless LLM_MODEL is set. Any failure (no access, throttling, a model that
does not exist, moto's NotImplementedError locally) falls back to the plain
issue body: the analysis is a nicety, filing is the job.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chalicelib.ops import adapters

if TYPE_CHECKING:
    from chalicelib.core.context import Ctx

log = logging.getLogger(__name__)

SYSTEM = ("You are an SRE. Given a recurring failure from a serverless control plane (Chalice on AWS Lambda, "
          "DynamoDB, SQS), write ONE short paragraph with the most probable cause and what to check first. "
          "No preamble, no lists.")


def prompt(group: dict[str, Any]) -> str:
    samples = "\n".join(f"- {s.get('at')} {s.get('message', '')[:300]}" for s in group.get("samples") or [])
    return (f"Kind: {group['kind']}\nOccurrences: {group['count']}\nNormalized: {group['key'].split('|', 2)[2]}\n"
            f"Samples:\n{samples}")


def probable_cause(ctx: "Ctx", group: dict[str, Any]) -> str | None:
    model = ctx.settings.llm_model
    if not model:
        return None
    try:
        text = adapters.converse_text(model, SYSTEM, prompt(group))
    except Exception as error:  # noqa: BLE001 - any failure means: file without the paragraph
        log.warning("bedrock analysis unavailable", extra={"error": type(error).__name__})
        return None
    paragraph = " ".join(text.split())
    return paragraph[:1500] or None
