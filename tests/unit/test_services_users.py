"""chalicelib/users/service.py on the fake unit of work, the pool faked at its adapter (no moto)."""
from __future__ import annotations

import pytest

from chalicelib.core.auth import Scope
from chalicelib.core.errors import Conflict, NotFound, Unavailable
from chalicelib.fanout import fanout
from chalicelib.users import adapters, models, service as users, store
from chalicelib.users.models import User
from tests.unit.declared import assert_declared
from tests.unit.fakes import ORG, fake_ctx, principal


class Pool:
    """The Cognito pool as the service sees it through its adapter."""

    def __init__(self):
        self.invited: list[tuple[str, str]] = []
        self.disabled: list[str] = []
        self.taken: set[str] = set()

    def invite(self, email, group, description, temporary_password=None):
        if email in self.taken:
            raise adapters.UserExists(email)
        self.taken.add(email)
        self.invited.append((email, group))
        return f"user-{email}", f"sub-{email}"

    def disable(self, username):
        self.disabled.append(username)


@pytest.fixture
def pool(monkeypatch):
    fake = Pool()
    monkeypatch.setattr(adapters, "configured", lambda: True)
    monkeypatch.setattr(adapters, "invite", fake.invite)
    monkeypatch.setattr(adapters, "disable", fake.disable)
    monkeypatch.setattr(adapters, "set_password", lambda username, password: None)
    return fake


def test_an_invitation_puts_the_person_in_the_orgs_group_and_commits_item_and_audit(pool):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    user = users.create_user(ctx, models.CreateUserRequest(email="Ada@Example.com", scope="operator"))
    body = assert_declared("POST", "/users", user)
    assert body["email"] == "ada@example.com" and body["status"] == "active" and body["userId"] == "sub-ada@example.com"
    assert pool.invited == [("ada@example.com", f"org:{ORG}:operator")]
    item = ledger.committed[-1]["user"].item
    assert item["PK"] == "USER#sub-ada@example.com" and item["orgId"] == ORG and item["username"] == "user-ada@example.com"
    assert ledger.audits()[0]["action"] == "invited"


def test_a_taken_email_is_409_and_commits_nothing(pool):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    pool.taken.add("ada@example.com")
    with pytest.raises(Conflict):
        users.create_user(ctx, models.CreateUserRequest(email="ada@example.com", scope="admin"))
    assert not ledger.committed


def test_no_pool_is_503(monkeypatch):
    monkeypatch.setattr(adapters, "configured", lambda: False)
    ctx, _ = fake_ctx(principal(Scope.ADMIN))
    with pytest.raises(Unavailable):
        users.create_user(ctx, models.CreateUserRequest(email="ada@example.com", scope="admin"))


def test_disabling_marks_the_item_then_the_pool_then_closes_the_sockets(pool, monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    user = User(user_id="s1", email="a@example.com", scope="admin", status="active", created_at="2026-01-01T00:00:00.000Z")
    monkeypatch.setattr(store, "get", lambda user_id: store.Found(ORG, "u1", user) if user_id == "s1" else None)
    closed = []
    monkeypatch.setattr(fanout, "close_opened_with", lambda org, key_id=None, **kw: closed.append((org, key_id)) or 0)
    users.disable_user(ctx, "s1")
    assert "user" in ledger.names() and ledger.audits()[0]["action"] == "disabled"
    assert pool.disabled == ["u1"] and closed == [(ORG, "user:s1")]
    with pytest.raises(NotFound):
        users.disable_user(ctx, "s2")


def test_another_orgs_person_is_404(pool, monkeypatch):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    user = User(user_id="s1", email="a@example.com", scope="admin", status="active", created_at="2026-01-01T00:00:00.000Z")
    monkeypatch.setattr(store, "get", lambda user_id: store.Found("01OTHER", "u1", user))
    with pytest.raises(NotFound):
        users.disable_user(ctx, "s1")
    assert not ledger.committed and not pool.disabled


def test_the_first_person_is_a_root_admin_and_a_restart_creates_nothing(pool):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    seed = users.seed_first_person(ctx, "admin@example.com", None)
    assert seed["adminEmail"] == "admin@example.com" and len(seed["adminPassword"]) >= 12
    assert ledger.committed[-1]["user"].item["root"] is True
    assert pool.invited == [("admin@example.com", f"org:{ORG}:admin")]
    again = users.seed_first_person(ctx, "admin@example.com", None)
    assert again == {"adminEmail": "admin@example.com"} and len(ledger.committed) == 1


def test_a_chosen_first_password_is_never_echoed(pool):
    ctx, _ = fake_ctx(principal(Scope.ADMIN))
    seed = users.seed_first_person(ctx, "admin@example.com", "Chosen-Password-1")
    assert "adminPassword" not in seed and seed["adminEmail"] == "admin@example.com"
