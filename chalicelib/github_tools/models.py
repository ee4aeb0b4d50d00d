"""GitHub tools: the per-organization repository allow-list, the tool registry, invocations."""
from __future__ import annotations

from typing import Any, Optional

from pydantic import Field, field_validator

from chalicelib.core.models import ApiModel, ResponseModel
from chalicelib.github_tools import rules


class AllowedRepoIn(ApiModel):
    repo: str = Field(min_length=3, max_length=140, description="owner/name")
    tools: list[str] = Field(default_factory=lambda: list(rules.TOOLS), max_length=len(rules.TOOLS),
                             description="the tools that may act on this repository (default: all)")
    require_approval: list[str] = Field(default_factory=list, max_length=len(rules.APPROVABLE),
                                        description="tools whose calls wait for a person's approval "
                                                    "(commit_files, open_pull_request)")

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        problem = rules.repo_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        unknown = rules.unknown_tools(value)
        if unknown:
            raise ValueError(f"unknown tools {unknown}; known: {list(rules.TOOLS)}")
        return list(dict.fromkeys(value))

    @field_validator("require_approval")
    @classmethod
    def _approval(cls, value: list[str]) -> list[str]:
        wrong = [t for t in value if t not in rules.APPROVABLE]
        if wrong:
            raise ValueError(f"only {sorted(rules.APPROVABLE)} can require approval, not {wrong}")
        return list(dict.fromkeys(value))


class RepoListPut(ApiModel):
    repos: list[AllowedRepoIn] = Field(max_length=rules.MAX_REPOS)

    @field_validator("repos")
    @classmethod
    def _unique(cls, value: list[AllowedRepoIn]) -> list[AllowedRepoIn]:
        seen: set[str] = set()
        for entry in value:
            if entry.repo.lower() in seen:
                raise ValueError(f"{entry.repo} is listed twice")
            seen.add(entry.repo.lower())
        return value


class AllowedRepo(ResponseModel):
    repo: str
    tools: list[str]
    require_approval: list[str]


class RepoList(ResponseModel):
    repos: list[AllowedRepo]
    updated_at: Optional[str] = None
    updated_by: Optional[str] = None


class ToolSpec(ResponseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class InvokeRequest(ApiModel):
    input: dict[str, Any]
    session_id: Optional[str] = Field(default=None, max_length=64)


class InvokeResult(ResponseModel):
    """200 {result}; 202 {approvalId, status: awaiting_approval} or {invocationId, status: queued}."""

    result: Optional[Any] = None
    invocation_id: Optional[str] = None
    approval_id: Optional[str] = None
    status: Optional[str] = None
