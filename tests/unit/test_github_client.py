"""The thin GitHub client against the fake GitHub server (real HTTP; every request and answer
validated against GitHub's description by the fake)."""
import pytest

from chalicelib.ops import github as gh_client
from chalicelib.ops.github import GitHub, GitHubError, OutOfTime
from tests.fakes.github_server import FakeGitHub

ISSUES = "POST /repos/{owner}/{repo}/issues"


@pytest.fixture
def fake():
    with FakeGitHub(token="s3cret-token") as server:
        yield server
    assert server.violations == []


def client(fake, seconds_left=60.0, waits=None, token="s3cret-token"):
    return GitHub(token, fake.repo_full, fake.url, seconds_left=lambda: seconds_left,
                  sleep=(waits.append if waits is not None else (lambda s: None)))


def test_create_comment_update_search_and_list(fake):
    c = client(fake)
    issue = c.create_issue("[ops] boom", "<!-- ops-fingerprint: 0123456789abcdef -->\nbody", ["ops"])
    assert issue["number"] == 1 and issue["state"] == "open"
    c.comment(1, "again")
    assert fake.issues[1]["comments"] == 1
    def first_line(body):
        return (body or "").startswith("<!-- ops-fingerprint: 0123456789abcdef -->")
    assert c.find_by_marker("ops-fingerprint: 0123456789abcdef", first_line)["number"] == 1
    assert c.find_by_marker("ops-fingerprint: 0123456789abcdef", lambda body: False) is None  # found, not ours
    assert c.find_by_marker("ops-fingerprint: ffffffffffffffff", first_line) is None
    fake.close_issue(1)
    assert [i["number"] for i in c.closed_since("ops", None)] == [1]
    reopened = c.update_issue(1, state="open", state_reason="reopened")
    assert reopened["state"] == "open"
    assigned = c.update_issue(1, assignees=["alice", "nobody"])
    assert [a["login"] for a in assigned["assignees"]] == ["alice"]
    assert c.calls == 8
    assert all(r.authorization == "Bearer s3cret-token" for r in fake.requests)


def test_the_fake_refuses_what_github_refuses_a_body_over_65536_or_a_title_over_256(fake):
    c = client(fake)
    assert c.create_issue("t" * 256, "b" * 65_536, [])["number"] == 1
    for title, body in (("t", "b" * 65_537), ("t" * 257, "b")):
        with pytest.raises(GitHubError) as refused:
            c.create_issue(title, body, [])
        assert refused.value.status == 422
    with pytest.raises(GitHubError) as refused:
        c.comment(1, "c" * 65_537)
    assert refused.value.status == 422
    assert list(fake.issues) == [1] and fake.comments[1] == []


def test_secondary_limit_waits_retry_after_then_succeeds(fake):
    waits: list[float] = []
    fake.rate_limit(ISSUES, kind="secondary", retry_after=2)
    c = client(fake, waits=waits)
    issue = c.create_issue("t", "b", [])
    assert issue["number"] == 1 and waits == [2.0] and len(fake.issues) == 1
    assert [r.status for r in fake.calls(ISSUES)] == [403, 201]


def test_429_and_primary_limit(fake):
    waits: list[float] = []
    fake.rate_limit(ISSUES, kind="secondary429", retry_after=3)
    fake.rate_limit(ISSUES, kind="primary", reset_in=5)
    c = client(fake, waits=waits)
    c.create_issue("t", "b", [])
    assert waits[0] == 3.0 and 4.0 <= waits[1] <= 7.0  # until x-ratelimit-reset (+1 s)
    assert [r.status for r in fake.calls(ISSUES)] == [429, 403, 201]


def test_a_wait_longer_than_the_time_left_stops_without_creating(fake):
    fake.rate_limit(ISSUES, kind="secondary", retry_after=120)
    c = client(fake, seconds_left=10)
    with pytest.raises(OutOfTime):
        c.create_issue("t", "b", [])
    assert fake.issues == {}


def test_wait_rules():
    assert gh_client.rate_limit_wait(403, {"retry-after": "7"}, "", 0) == 7
    assert gh_client.rate_limit_wait(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "100"}, "", 90) == 11
    assert gh_client.rate_limit_wait(403, {}, "You have exceeded a secondary rate limit", 0) == 60
    assert gh_client.rate_limit_wait(403, {"x-ratelimit-remaining": "12"}, "Resource not accessible", 0) is None
    assert gh_client.rate_limit_wait(404, {"retry-after": "1"}, "", 0) is None


def test_bad_token_is_an_error_that_never_shows_the_token(fake, caplog):
    c = client(fake, token="wrong-token-value")
    with pytest.raises(GitHubError) as failed:
        c.create_issue("t", "b", [])
    assert failed.value.status == 401
    assert "wrong-token-value" not in str(failed.value) + repr(c) + caplog.text


def test_the_fake_rejects_requests_outside_the_description(fake):
    c = client(fake)
    with pytest.raises(GitHubError) as failed:
        c._call("POST", f"/repos/{fake.repo_full}/issues", body={"title": "t", "labels": "not-a-list"})
    assert failed.value.status == 422
    assert fake.violations and "labels" in fake.violations[0]
    fake.violations.clear()
