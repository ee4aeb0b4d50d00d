"""A status change asked for by a PUT, judged against a table of allowed moves (pure).

Sessions and tasks share the answer's meaning: a listed move happens; asking for the status an
open record already has changes nothing (a retried PUT answers as the first did); anything
else, including any change of a terminal record, is invalid (409)."""
from __future__ import annotations

import enum
from typing import Mapping, Protocol, TypeVar

from chalicelib.core.errors import InvalidTransition


class Answer(str, enum.Enum):
    MOVE = "move"
    NOOP = "noop"
    INVALID = "invalid"


class _Status(Protocol):
    @property
    def terminal(self) -> bool: ...


S = TypeVar("S", bound=_Status)


def judge(moves: Mapping[S, frozenset[S]], current: S, wanted: S) -> Answer:
    if wanted in moves[current]:
        return Answer.MOVE
    if wanted == current and not current.terminal:
        return Answer.NOOP
    return Answer.INVALID


def moves(answer: Answer, kind: str, current: enum.Enum, wanted: enum.Enum, note: str = "") -> bool:
    """A PUT's answer as the service acts on it: True to move, False for the status it already has,
    409 INVALID_TRANSITION (naming the status field) for anything else."""
    if answer is Answer.INVALID:
        raise InvalidTransition(f"a {current.value} {kind} cannot become {wanted.value}{note}",
                                [{"field": "status", "message": f"{current.value} -> {wanted.value}"}])
    return answer is Answer.MOVE
