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
        self.groups: dict[str, tuple[str, ...]] = {}     # email -> its groups
        self.joined: list[tuple[str, str, tuple[str, ...]]] = []
        self.items: dict[str, store.Found] = {}          # the app's people by sub (store.get)

    def invite(self, email, group, description, temporary_password=None):
        if email in self.taken:
            raise adapters.UserExists(email)
        self.taken.add(email)
        self.groups[email] = (group,)
        self.invited.append((email, group))
        return f"user-{email}", f"sub-{email}"

    def pool_user(self, email):
        if email not in self.taken:
            return None
        return adapters.PoolUser(username=f"user-{email}", sub=f"sub-{email}", email=email, enabled=True,
                                 groups=self.groups.get(email, ()))

    def join(self, username, group, description, leave=()):
        self.joined.append((username, group, tuple(leave)))

    def disable(self, username):
        self.disabled.append(username)


@pytest.fixture
def pool(monkeypatch):
    fake = Pool()
    monkeypatch.setattr(adapters, "configured", lambda: True)
    monkeypatch.setattr(adapters, "invite", fake.invite)
    monkeypatch.setattr(adapters, "pool_user", fake.pool_user)
    monkeypatch.setattr(adapters, "join", fake.join)
    monkeypatch.setattr(store, "get", fake.items.get)
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
    user = User(user_id="sub-ada@example.com", email="ada@example.com", scope="admin", status="active",
                created_at="2026-01-01T00:00:00.000Z")
    pool.items["sub-ada@example.com"] = store.Found(ORG, "user-ada@example.com", user)  # the app has the person
    with pytest.raises(Conflict):
        users.create_user(ctx, models.CreateUserRequest(email="ada@example.com", scope="admin"))
    assert not ledger.committed and not pool.joined


def test_a_pool_user_without_an_item_is_adopted_by_the_retry_into_the_asked_group_only(pool):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    pool.taken.add("ada@example.com")  # an earlier invite of this org stopped before its commit
    pool.groups["ada@example.com"] = (f"org:{ORG}:operator", "unrelated-group")
    user = users.create_user(ctx, models.CreateUserRequest(email="ada@example.com", scope="admin"))
    assert user.user_id == "sub-ada@example.com" and user.scope == "admin"
    assert pool.joined == [("user-ada@example.com", f"org:{ORG}:admin", (f"org:{ORG}:operator",))]
    assert ledger.committed[-1]["user"].item["username"] == "user-ada@example.com"
    assert ledger.audits()[0]["details"]["adoptedPoolUser"] is True


def test_a_pool_user_in_another_organizations_group_is_never_adopted(pool):
    ctx, ledger = fake_ctx(principal(Scope.ADMIN))
    pool.taken.add("ada@example.com")
    pool.groups["ada@example.com"] = ("org:01OTHER:operator",)
    with pytest.raises(Conflict):
        users.create_user(ctx, models.CreateUserRequest(email="ada@example.com", scope="admin"))
    assert not ledger.committed and not pool.joined


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
    item = ledger.committed[-1]["user"].item
    pool.items[item["userId"]] = store.Found(ORG, item["username"], store.from_item(item))
    again = users.seed_first_person(ctx, "admin@example.com", None)
    assert again == {"adminEmail": "admin@example.com"} and len(ledger.committed) == 1


def test_a_chosen_first_password_is_never_echoed(pool):
    ctx, _ = fake_ctx(principal(Scope.ADMIN))
    seed = users.seed_first_person(ctx, "admin@example.com", "Chosen-Password-1")
    assert "adminPassword" not in seed and seed["adminEmail"] == "admin@example.com"
