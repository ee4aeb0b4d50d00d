"""The pure rules of jobs: statuses, ordering, lease decisions, delays, poll pacing."""
import pytest

from chalicelib.jobs import rules
from chalicelib.jobs.rules import Action, Run, Status


def run(**kw) -> Run:
    base = dict(run_id="r1", running=True, claimed_by="a", attempt=1, max_attempts=3, lease_seconds=10,
                started_ms=1_000_000, renewed_ms=1_000_000, deadline_ms=None)
    base.update(kw)
    return Run(**base)


def test_transitions():
    assert rules.can_move(Status.QUEUED, Status.RUNNING)
    assert rules.can_move(Status.RUNNING, Status.QUEUED)
    assert not rules.can_move(Status.QUEUED, Status.COMPLETED)
    for terminal in rules.TERMINAL:
        assert terminal.terminal
        assert not any(rules.can_move(terminal, s) for s in Status)
    assert not Status.RUNNING.terminal


def test_order_key_sorts_by_priority_then_age():
    keys = [rules.order_key(p, job_id) for p, job_id in
            [(0, "01B"), (5, "01C"), (-3, "01A"), (5, "01A"), (1000, "01Z"), (-1000, "01A")]]
    ordered = sorted(keys)
    assert ordered == [rules.order_key(1000, "01Z"), rules.order_key(5, "01A"), rules.order_key(5, "01C"),
                       rules.order_key(0, "01B"), rules.order_key(-3, "01A"), rules.order_key(-1000, "01A")]
    with pytest.raises(ValueError):
        rules.order_key(1001, "x")


def test_merge_candidates_interleaves_queues_in_claim_order():
    a = [{"GSI4SK": "0990#01A"}, {"GSI4SK": "1000#01C"}]
    b = [{"GSI4SK": "0995#01B"}]
    assert [c["GSI4SK"] for c in rules.merge_candidates([a, b])] == ["0990#01A", "0995#01B", "1000#01C"]


def test_target():
    assert rules.target("A1", None) == "agent#A1"
    assert rules.target(None, "gpu") == "pool#gpu"
    for bad in (("A", "p"), (None, None)):
        with pytest.raises(ValueError):
            rules.target(*bad)


def test_decide_drops_runs_that_are_over():
    assert rules.decide(None, "r1", 0).action is Action.DROP
    assert rules.decide(run(), "other", 0).action is Action.DROP
    assert rules.decide(run(running=False), "r1", 10**12).action is Action.DROP


def test_decide_rearms_while_the_lease_runs():
    d = rules.decide(run(renewed_ms=1_005_000), "r1", 1_010_000)
    assert d == rules.Decision(Action.REARM, 1_015_000)
    # ... but not past the timeout.
    d = rules.decide(run(renewed_ms=1_005_000, deadline_ms=1_012_000), "r1", 1_010_000)
    assert d == rules.Decision(Action.REARM, 1_012_000)


def test_decide_expired_lease_asks_for_the_heartbeat_then_requeues_or_fails():
    now = 1_010_000  # exactly at the lease end
    assert rules.decide(run(), "r1", now).action is Action.NEED_HEARTBEAT
    assert rules.decide(run(), "r1", now, None, heartbeat_known=True).action is Action.REQUEUE
    assert rules.decide(run(), "r1", now, 999_000, heartbeat_known=True).action is Action.REQUEUE
    d = rules.decide(run(), "r1", now, 1_004_000, heartbeat_known=True)
    assert d == rules.Decision(Action.REARM, 1_014_000)  # a heartbeat renews the lease
    assert rules.decide(run(attempt=3), "r1", now, None, True).action is Action.FAIL_LEASE
    assert rules.decide(run(attempt=4, max_attempts=3), "r1", now, None, True).action is Action.FAIL_LEASE


def test_decide_timeout_wins_over_a_fresh_lease():
    r = run(renewed_ms=1_019_000, deadline_ms=1_020_000)
    assert rules.decide(r, "r1", 1_020_000).action is Action.FAIL_TIMEOUT
    assert rules.decide(r, "r1", 1_019_999).action is Action.REARM


def test_first_check_and_delay():
    assert rules.first_check_ms(0, 60, None) == 60_000
    assert rules.first_check_ms(0, 60, 5) == 5_000
    assert rules.delay_seconds(10_001, 0) == 11  # rounded up: never early
    assert rules.delay_seconds(10_000, 0) == 10
    assert rules.delay_seconds(-5, 0) == 0
    assert rules.delay_seconds(3_600_000, 0) == 900  # SQS's cap; the check re-arms when it fires


def test_next_poll_seconds():
    assert rules.next_poll_seconds(claimed=3, wanted=3, lost_races=0, idle_seconds=5) == 0
    assert rules.next_poll_seconds(claimed=0, wanted=3, lost_races=2, idle_seconds=5) == 0
    assert rules.next_poll_seconds(claimed=1, wanted=3, lost_races=0, idle_seconds=5) == 1
    assert rules.next_poll_seconds(claimed=0, wanted=1, lost_races=0, idle_seconds=5) == 5


def test_completion_fingerprint_and_errors():
    a = rules.completion_fingerprint("COMPLETED", {"a": 1, "b": [1, 2]}, None)
    assert a == rules.completion_fingerprint("COMPLETED", {"b": [1, 2], "a": 1}, None)
    assert a != rules.completion_fingerprint("FAILED", {"a": 1, "b": [1, 2]}, None)
    assert a != rules.completion_fingerprint("COMPLETED", {"a": 2, "b": [1, 2]}, None)
    assert rules.normalize_error(None) is None
    assert rules.normalize_error("boom") == {"code": "JOB_FAILED", "message": "boom"}
    assert rules.normalize_error({"code": "X"}) == {"code": "X", "message": ""}
    assert rules.normalize_error(["odd"]) == {"code": "JOB_FAILED", "message": '["odd"]'}


def test_json_size_counts_utf8_bytes():
    assert rules.json_size({"a": "é"}) == len('{"a":"é"}'.encode())


def test_spread_shuffles_only_the_best_remaining_priority():
    import random

    remaining = [{"priority": 5, "id": i} for i in range(6)] + [{"priority": 1, "id": 9}, {"priority": 0, "id": 10}]
    orders = {tuple(c["id"] for c in rules.spread(list(remaining), random.Random(seed))) for seed in range(20)}
    assert len(orders) > 1  # the head really is spread
    for order in orders:
        assert sorted(order[:6]) == list(range(6)) and order[6:] == (9, 10)  # priority stays strict
    assert rules.spread([]) == []
