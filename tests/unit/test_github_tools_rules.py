"""chalicelib/github_tools/rules.py and tools.py's pure parts: names, prefixes, paths, sizes, cleaning."""
from __future__ import annotations

import pytest

from chalicelib.github_tools import rules, tools


@pytest.mark.parametrize("repo,ok", [("acme/app", True), ("a-b/c.d_e", True), ("acme", False), ("acme/app/x", False),
                                     ("acme/..", False), ("acme/.", False), ("-acme/app", False), ("acme/app.git", False),
                                     ("ac me/app", False)])
def test_repo_names(repo, ok):
    assert (rules.repo_problem(repo) is None) is ok


def test_the_branch_prefix_is_the_session_else_the_agent_else_the_key():
    assert rules.branch_prefix("01S", "ag", "agent:ag") == "agent/01S/"
    assert rules.branch_prefix(None, "ag", "agent:ag") == "agent/ag/"
    assert rules.branch_prefix(None, None, "key:01K") == "agent/key-01K/"


@pytest.mark.parametrize("branch,ok", [("agent/s/x", True), ("agent/s/x.y-z", True), ("a..b", False), ("a b", False),
                                       ("a~1", False), ("a^", False), ("a:b", False), ("x.lock", False), ("a//b", False),
                                       ("/a", False), ("a/", False), ("@", False), ("a@{b", False), ("-a", False)])
def test_branch_names_follow_git_check_ref_format(branch, ok):
    assert (rules.branch_problem(branch) is None) is ok


@pytest.mark.parametrize("path,ok", [("a.txt", True), ("src/a/b.py", True), ("../x", False), ("a/../b", False),
                                     ("/etc/passwd", False), ("a//b", False), ("./a", False), (".git/config", False),
                                     ("a\\b", False), ("", False), ("a/", False)])
def test_paths_stay_inside_the_repository(path, ok):
    assert (rules.path_problem(path) is None) is ok


def test_commit_size_limits():
    assert rules.commit_problem([1] * 100) is None
    assert "100 files" in rules.commit_problem([1] * 101)
    assert rules.commit_problem([1024 * 1024]) is None
    assert "bytes" in rules.commit_problem([1024 * 1024, 1])


def test_every_tool_has_permissions_and_only_two_can_wait_for_approval():
    assert set(rules.PERMISSIONS) == set(rules.TOOLS) == set(tools.TOOLS)
    assert rules.APPROVABLE == {"commit_files", "open_pull_request"}
    assert all(v in ("read", "write") for p in rules.PERMISSIONS.values() for v in p.values())
    assert all(set(p.values()) == {"read"} for t, p in rules.PERMISSIONS.items() if t in rules.READ_TOOLS)


def test_untrusted_text_is_redacted_neutralised_and_bounded():
    text = "hi @alice see #12 " + "x" * 9000 + " ghp_" + "a" * 36
    out = tools.untrusted(text)
    assert "@alice" not in out and len(out) <= tools.TEXT_LIMIT and "ghp_" + "a" * 36 not in out
    assert tools.untrusted(None) == ""
    assert "@bob" not in tools.outgoing("thanks @bob")


def test_commit_files_needs_exactly_one_source():
    base = {"repo": "a/b", "branch": "agent/s/x", "message": "m"}
    with pytest.raises(ValueError):
        tools.CommitFilesInput.model_validate(base)
    with pytest.raises(ValueError):
        tools.CommitFilesInput.model_validate({**base, "workspace": "w"})
    with pytest.raises(ValueError):
        tools.CommitFilesInput.model_validate({**base, "workspace": "w", "paths": ["a"], "batchId": "b"})
    assert tools.CommitFilesInput.model_validate({**base, "batchId": "b"}).batch_id == "b"


def test_input_schemas_are_json_schema_objects_in_camel_case():
    schema = tools.TOOLS["update_issue_state"].input_schema()
    assert schema["type"] == "object" and "stateReason" in schema["properties"]
    assert set(schema["required"]) == {"repo", "number", "state"}


# --- a deferred run's claim is a lease ------------------------------------------------------------------

@pytest.mark.parametrize("item,attempt,verdict", [
    ({"status": "running", "attempt": 1, "leaseUntil": 1045}, 1, "held"),           # live: maybe still running
    ({"status": "running", "attempt": 1, "leaseUntil": 1000}, 1, "take_over"),      # its end is past: it died
    ({"status": "running", "attempt": 1, "leaseUntil": 999}, 1, "take_over"),
    ({"status": "running", "attempt": 1}, 1, "take_over"),                          # a claim from before leases
    ({"status": "running", "attempt": 1, "leaseUntil": 999}, 2, "take_over"),       # died after queueing this one
    ({"status": "running", "attempt": 3, "leaseUntil": 999}, 2, "done"),            # a later attempt has it
    ({"status": "succeeded", "attempt": 1}, 1, "done"),
    ({"status": "failed", "attempt": 1}, 1, "done"),
    ({"status": "queued", "attempt": 2}, 2, "done"),                                # it ran and queued the next
])
def test_what_a_run_does_when_its_fresh_claim_failed(item, attempt, verdict):
    assert rules.claim_verdict(item, attempt, now=1000.0) == verdict


def test_a_lease_outlasts_the_function_that_holds_it():
    assert rules.LEASE_SECONDS == rules.FUNCTION_TIMEOUT_SECONDS + rules.LEASE_MARGIN_SECONDS
    assert rules.LEASE_MARGIN_SECONDS >= 10  # clock differences between Lambda hosts, the claim's write
