"""Pure rules of the GitHub tools: tool names, what each may touch, and the checks made before
anything is sent to GitHub (repository names, branch prefixes, paths, commit sizes). No AWS."""
from __future__ import annotations

import re
from typing import Any, Iterable

# The tools, in the order the registry lists them. READ tools only read; the others write.
TOOLS: tuple[str, ...] = (
    "list_issues", "list_pull_requests", "get_pull_request", "create_issue", "comment_on_issue",
    "update_issue_state", "create_branch", "commit_files", "open_pull_request",
)
READ_TOOLS = frozenset({"list_issues", "list_pull_requests", "get_pull_request"})
# Tools whose call a repository may hold for a person's approval (the contract names these two).
APPROVABLE = frozenset({"commit_files", "open_pull_request"})

# The GitHub App permissions each tool's token is narrowed to (POST /app/installations/{id}/access_tokens).
# `metadata: read` is implied by GitHub for every token; branch protection reads need administration: read
# only on some plans, so writes check protection through the branch's `protected` flag (contents: read).
PERMISSIONS: dict[str, dict[str, str]] = {
    "list_issues": {"issues": "read"},
    "list_pull_requests": {"pull_requests": "read"},
    "get_pull_request": {"pull_requests": "read"},
    "create_issue": {"issues": "write"},
    "comment_on_issue": {"issues": "write"},
    "update_issue_state": {"issues": "write"},
    "create_branch": {"contents": "write"},
    "commit_files": {"contents": "write"},
    "open_pull_request": {"pull_requests": "write", "contents": "read"},
}

REPO_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
BRANCH_PREFIX_ROOT = "agent/"
MAX_COMMIT_BYTES = 1024 * 1024   # 1 MiB of file content per commit
MAX_COMMIT_FILES = 100
MAX_REPOS = 200                   # allow-list entries per organization (one item of at most ~40 KiB)


def repo_problem(repo: str) -> str | None:
    if not REPO_NAME.match(repo) or repo.split("/")[1] in (".", "..") or repo.endswith(".git"):
        return "must be owner/name"
    return None


def unknown_tools(tools: Iterable[str]) -> list[str]:
    return [t for t in tools if t not in TOOLS]


def branch_prefix(session_id: str | None, agent_id: str | None, actor: str) -> str:
    """The prefix every branch a tool creates or writes must start with: agent/<sessionId or agentId>/.
    An operator without a session writes under its own actor name (made ref-safe)."""
    owner = session_id or agent_id or re.sub(r"[^A-Za-z0-9._-]", "-", actor)
    return f"{BRANCH_PREFIX_ROOT}{owner}/"


_BAD_REF = re.compile(r"(\.\.|[\x00-\x20~^:?*\[\\]|@\{|//|/\.|\.lock$|\.lock/|/$|\.$)")


def branch_problem(branch: str) -> str | None:
    """git check-ref-format's rules, the ones a branch name can break."""
    if not branch or _BAD_REF.search(branch) or branch.startswith(("/", ".", "-")) or branch == "@":
        return "is not a valid branch name"
    return None


def path_problem(path: str) -> str | None:
    """A path inside the repository: relative, no `..`, no empty or `.` segments, no `.git`."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return "must be a relative path inside the repository"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "must not contain '..', '.' or empty segments"
    if parts[0] == ".git":
        return "must not write inside .git"
    return None


def commit_problem(sizes: list[int]) -> str | None:
    """What is wrong with a commit of files of these sizes (too many, too big), else None."""
    if len(sizes) > MAX_COMMIT_FILES:
        return f"a commit holds at most {MAX_COMMIT_FILES} files ({len(sizes)} given)"
    if sum(sizes) > MAX_COMMIT_BYTES:
        return f"a commit holds at most {MAX_COMMIT_BYTES} bytes of content ({sum(sizes)} given)"
    return None


# --- deferred runs: the claim is a lease ----------------------------------------------------------
#
# A deferred run (approved, or retried from the queue) claims its invocation's item for LEASE_SECONDS.
# The two functions that run deferred calls (github_approvals, github_tools_retry) time out at
# FUNCTION_TIMEOUT_SECONDS (.chalice/config.json): Lambda stops an invocation at its timeout, and a
# claim is made during one, so when the lease ends the process that took it is gone (finished, or
# killed). The margin covers the clock difference between two Lambda hosts and the claim's own
# write latency. The retry queue's visibility timeout (infra/template.yaml, 120 s) is longer than the
# lease, so SQS redelivers a dead run's message after its lease has expired
# (tests/infra/test_github_lease_settings.py holds the three numbers together).
FUNCTION_TIMEOUT_SECONDS = 30
LEASE_MARGIN_SECONDS = 15
LEASE_SECONDS = FUNCTION_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS

TAKE_OVER, HELD, DONE = "take_over", "held", "done"


def claim_verdict(item: dict[str, Any], attempt: int, now: float) -> str:
    """What a run of `attempt` does when its fresh claim failed, given the invocation item as it is:

    - TAKE_OVER: a run of this attempt (or an earlier one that queued this one) holds it and its lease
      has expired (a claim from before leases, without `leaseUntil`, counts as expired): that run died;
    - HELD: a run holds it and its lease is live: it may still be running, come back after the lease;
    - DONE: its outcome is recorded, or a later attempt has it: nothing to run.
    """
    if item.get("status") != "running" or int(item.get("attempt", 0)) > attempt:
        return DONE
    until = item.get("leaseUntil")
    if until is not None and float(until) > now:
        return HELD
    return TAKE_OVER
