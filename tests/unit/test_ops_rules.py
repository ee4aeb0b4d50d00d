"""Normalization, fingerprints, severity and group merging (pure rules)."""
from chalicelib.ops import rules
from chalicelib.ops.rules import Failure

TRACE = '''Traceback (most recent call last):
  File "/var/task/chalicelib/jobs/service.py", line {line}, in complete
    store.finish(job)
  File "/var/task/chalicelib/aws/dynamo.py", line 233, in update
    raise ConditionFailed()
chalicelib.aws.dynamo.ConditionFailed: condition failed (index={index}) for job {job}
'''


def test_normalize_strips_the_parts_that_change():
    cases = {
        "job 01JD8ZQ3K4M5N6P7Q8R9S0T1V2 failed after 3 attempts":
            "job <id> failed after <n> attempts",
        "request 3f2a9c1e-7b4d-4e8f-9a0b-1c2d3e4f5a6b timed out at 2026-12-01T09:00:01.123Z":
            "request <uuid> timed out at <ts>",
        "cannot open /tmp/tmpab12cd/work.txt: No such file": "cannot open <tmp>: No such file",
        "object at 0x7f3a2b1c9d40 has sha deadbeef1234 from 10.0.3.17:443":
            "object at <hex> has sha <hex> from <ip>",
        "KeyError: 'order-8812'": "KeyError: '<v>'",
        "worker7 took 3.5s": "worker<n> took <n>s",
    }
    for raw, expected in cases.items():
        assert rules.normalize(raw) == expected, raw


def test_traceback_keeps_its_stable_part():
    a = rules.normalize_traceback(TRACE.format(line=120, index=0, job="J1"))
    b = rules.normalize_traceback(TRACE.format(line=131, index=2, job="J2"))
    assert a == b
    assert a.startswith("chalicelib.aws.dynamo.ConditionFailed: condition failed (index=<n>) for job J<n>")
    assert "chalicelib/jobs/service.py:complete > chalicelib/aws/dynamo.py:update" in a


def test_same_failure_with_other_ids_is_one_fingerprint_and_kinds_stay_apart():
    f1 = Failure(rules.JOB, "J1", "2026-12-01T01:00:00.000Z", "timeout contacting host 10.1.2.3 after 30s", subject="build")
    f2 = Failure(rules.JOB, "J2", "2026-12-01T02:00:00.000Z", "timeout contacting host 10.9.8.7 after 31s", subject="build")
    f3 = Failure(rules.LOG, "L1", "2026-12-01T02:00:00.000Z", "timeout contacting host 10.9.8.7 after 31s")
    f4 = Failure(rules.JOB, "J3", "2026-12-01T02:00:00.000Z", "timeout contacting host 10.9.8.7 after 31s", subject="deploy")
    assert rules.fingerprint(f1) == rules.fingerprint(f2)
    assert len({rules.fingerprint(f) for f in (f1, f3, f4)}) == 3


def test_severity_rules():
    dlq = Failure(rules.JOB_DLQ, "m", "t", "message dead-lettered")
    timeout = Failure(rules.CLOUDWATCH, "e", "t", "Task timed out after 30.03 seconds")
    job = Failure(rules.JOB, "j", "t", "exit 1")
    log = Failure(rules.LOG, "l", "t", "disk almost full")
    rejected = Failure(rules.PATCH, "p", "t", "path outside workspace", subject="rejected replace-block")
    assert [rules.base_severity(f) for f in (dlq, timeout, job, log, rejected)] == \
        ["critical", "critical", "high", "medium", "low"]
    assert rules.severity("medium", 99) == "medium" and rules.severity("medium", 100) == "high"
    assert rules.severity("critical", 1000) == "critical"


def test_merge_counts_new_occurrences_only_for_a_known_group():
    fails = [(Failure(rules.LOG, f"L{i}", f"2026-12-01T0{i}:00:00.000Z", f"disk {i} full"), i >= 3) for i in range(6)]
    (agg,) = rules.aggregate(fails).values()
    assert (agg.old_count, agg.new_count) == (3, 3)
    rebuilt = rules.merge(None, agg)             # a lost record: everything seen counts
    assert rebuilt.count == 6 and rebuilt.created
    known = rules.merge({"count": 3, "firstSeen": "2026-11-30T00:00:00.000Z", "lastSeen": "2026-12-01T02:00:00.000Z",
                         "samples": [], "baseSeverity": "medium"}, agg)
    assert known.count == 6 and known.first_seen == "2026-11-30T00:00:00.000Z"
    assert known.last_seen == "2026-12-01T05:00:00.000Z" and len(known.samples) == rules.MAX_SAMPLES


def test_marker_round_trip():
    body = rules.issue_body({"fingerprint": "0123456789abcdef", "severity": "high", "kind": "job", "count": 2,
                             "firstSeen": "a", "lastSeen": "b", "key": "job|x|boom", "samples": []})
    assert rules.marker_in(body) == "0123456789abcdef"
    assert "<!-- ops-fingerprint: 0123456789abcdef -->" in body
