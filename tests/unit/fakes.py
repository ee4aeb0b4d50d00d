"""Fakes for service unit tests: a unit of work that records its named writes instead of sending them.

    ctx, ledger = fake_ctx(Principal(...))
    ledger.fail["agent"] = 1          # the next commit holding a write called "agent" fails its condition
    service.create(ctx, command)
    assert ledger.committed[-1].keys() >= {"agent", "instance"}

Reads are faked per test by replacing the store functions the service calls
(monkeypatch.setattr(store, "get", ...)): services reach their store only
through its module, so the fake is exactly what the service can see.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.auth import Principal, Scope
from chalicelib.core.context import Ctx
from chalicelib.core.tx import TransactionConflict, Tx, TxFailed

ORG = "01ORG0000000000000000000000"


@dataclass
class Ledger:
    committed: list[dict[str, Any]] = field(default_factory=list)  # name -> write, per successful commit
    attempts: list[list[str]] = field(default_factory=list)       # the names of every commit tried
    fail: dict[str, int] = field(default_factory=dict)             # write name -> how many commits it fails
    conflicts: int = 0                                             # commits that meet another transaction
    returned: dict[str, Any] = field(default_factory=dict)         # write name -> item commit_returning answers
    bulk: list[bool] = field(default_factory=list)                 # per successful commit: was it ctx.bulk()

    def items(self, prefix: str, index: int = -1) -> list[dict]:
        """The items of a commit's writes whose names start with `prefix` ("entry:", "event:")."""
        return [w.item for n, w in self.committed[index].items() if n.startswith(prefix)]

    def names(self, index: int = -1) -> list[str]:
        return list(self.committed[index])

    def events(self, index: int = -1) -> list[tuple[str, dict]]:
        """(event name, data) of the outbox writes of a commit."""
        import json

        return [(w.item["event"], json.loads(w.item["data"])) for n, w in self.committed[index].items()
                if n.startswith("event:")]

    def audits(self, index: int = -1) -> list[dict]:
        return [w.item for n, w in self.committed[index].items() if n.startswith("audit:")]


class FakeTx(Tx):
    def __init__(self, ctx: Ctx, ledger: Ledger):
        super().__init__(ctx)
        self.ledger = ledger

    def commit(self) -> None:
        names = self.names
        self.ledger.attempts.append(names)
        for name in names:
            if self.ledger.fail.get(name, 0) > 0:
                self.ledger.fail[name] -= 1
                raise TxFailed(name, self.ledger.returned.get(name))
        if self.ledger.conflicts > 0:
            self.ledger.conflicts -= 1
            raise TransactionConflict("busy")
        self.ledger.committed.append(dict(self._writes))
        self.ledger.bulk.append(self.bulk)

    def commit_returning(self) -> dict | None:
        """The one Update's commit; answers `ledger.returned[name]` (a failed condition: TxFailed with it)."""
        if len(self._writes) != 1 or self.bulk:
            raise ValueError("commit_returning commits exactly one Update")
        self.commit()
        return self.ledger.returned.get(self._writes[0][0])


def principal(scope: Scope = Scope.OPERATOR, agent_id: str | None = None, root: bool = False,
              org_id: str = ORG) -> Principal:
    return Principal(org_id=org_id, key_id="01KEY000000000000000000000", scope=scope, agent_id=agent_id, root=root)


def fake_ctx(who: Principal | None = None, system_org: str | None = ORG) -> tuple[Ctx, Ledger]:
    ledger = Ledger()
    ctx = Ctx(principal=who if who is not None else None, trace_id="trace-1",
              system_org_id=None if who is not None else system_org,
              unit_of_work=lambda c: FakeTx(c, ledger))
    return ctx, ledger
