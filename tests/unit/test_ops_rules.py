"""Normalization, fingerprints, severity, group merging and the issue text (pure rules)."""
import pytest

from chalicelib.ops import rules
from chalicelib.ops.rules import Failure
from tests.support import hostile

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


KEY = b"deployment-marker-key"


def group_of(*failures: Failure) -> dict:
    """A stored group as the scan builds it from these failures."""
    (agg,) = rules.aggregate([(f, True) for f in failures]).values()
    state = rules.merge(None, agg)
    return {"fingerprint": agg.fingerprint, "kind": agg.kind, "key": agg.key, "title": agg.title,
            "severity": state.severity, "count": state.count, "firstSeen": state.first_seen,
            "lastSeen": state.last_seen, "samples": state.samples, "traceback": state.traceback}


def test_marker_is_keyed_and_read_only_from_the_first_line():
    body = rules.issue_body({"fingerprint": "0123456789abcdef", "severity": "high", "kind": "job", "count": 2,
                             "firstSeen": "a", "lastSeen": "b", "key": "job|x|boom", "samples": []}, KEY)
    first, rest = body.split("\n", 1)
    assert first == rules.marker("0123456789abcdef", KEY) and rules.marker_in(body, KEY) == "0123456789abcdef"
    assert rules.marker_in(body, b"another deployment") is None
    assert rules.marker_in(rest + "\n" + first, KEY) is None                        # the right marker, wrong place
    assert rules.marker_in("<!-- ops-fingerprint: 0123456789abcdef -->\n" + rest, KEY) is None   # unkeyed
    forged = first.replace(rules.marker_mac("0123456789abcdef", KEY), "0" * rules.MAC_HEX)
    assert rules.marker_in(forged + "\n" + rest, KEY) is None


def test_failure_text_cannot_carry_a_marker_into_the_body():
    victim = "0123456789abcdef"
    hostile_text = (f"{rules.marker(victim, KEY)}\n<!-- ops-fingerprint: {victim} -->\n"
                    f"ops-fingerprint: {victim} OPS FINGERPRINT: {victim}")
    group = group_of(Failure(rules.JOB, "J1", "2026-12-01T01:00:00.000Z", hostile_text, "org-a", "spoof",
                             "Traceback (most recent call last):\n" + hostile_text))
    body = rules.issue_body(group, KEY)
    assert rules.marker_in(body, KEY) == group["fingerprint"] != victim
    assert body.lower().count("fingerprint") == 1 and "<!--" not in body.split("\n", 1)[1]
    assert "[ops marker removed]" in body
    assert "fingerprint" not in rules.issue_title(group).lower()


@pytest.mark.parametrize("shape", sorted(hostile.SECRETS))
def test_every_secret_shape_is_redacted_before_it_is_grouped(shape):
    text, fragments = hostile.SECRETS[shape]
    failure = Failure(rules.JOB, "J1", "2026-12-01T01:00:00.000Z", f"EXIT_CODE: {text}", "org", f"deploy {text}",
                      f"Traceback (most recent call last):\nRuntimeError: {text}", where=(("pool", text),))
    group = group_of(failure)
    stored = repr(group)  # key (the Normalized field), title, samples, traceback: what the store keeps
    assert [f for f in fragments if f in stored] == []
    assert "[redacted:" in group["samples"][0]["message"]
    filed = rules.issue_title(group) + rules.issue_body(group, KEY) + rules.recurrence_comment(group, 0, False)
    assert [f for f in fragments if f in filed] == []


def test_issue_text_is_inert_and_bounded():
    trace = ("Traceback (most recent call last):\n"
             + "".join(f'  File "/var/task/m{i}.py", line {i}, in f{"x" * 200}\n    call()\n' for i in range(100))
             + "E" * 165_000 + ": " + hostile.HOSTILE * 100)
    assert len(trace) > 190_000
    group = group_of(Failure(rules.JOB, "J1", "2026-12-01T01:00:00.000Z", hostile.HOSTILE * 50, "org",
                             "@octocat <b>#1</b> " * 50, trace))
    body, title = rules.issue_body(group, KEY, analysis=hostile.HOSTILE * 10), rules.issue_title(group)
    assert hostile.problems(body, limit=60_000, first_line_comment=True) == []
    assert hostile.problems(title, limit=rules.quoting.GITHUB_TITLE_LIMIT) == []
    assert "truncated" in body and len(title) <= 256


def test_where_is_named_quoted_and_bounded():
    failure = Failure(rules.PATCH, "E1", "2026-12-01T01:00:00.000Z", "ANCHOR_NOT_FOUND", "org", "failed replace-block",
                      where=(("workspace", "site"), ("file", "src/@admin/<x>.py" + "a" * 500), ("batch", "01JB")))
    body = rules.issue_body(group_of(failure), KEY)
    assert "**Where (latest):** workspace site, file src/@\u200dadmin/&lt;x&gt;.py" in body and "batch 01JB" in body
    assert max(len(line) for line in body.splitlines()) < 3000


def test_claim_comment_quotes_the_claimer_and_only_logins_are_assigned():
    comment = rules.claim_comment("@acme/everyone <img src=x onerror=alert(1)> Fixes #1\n- [x] done")
    assert hostile.problems(comment) == [] and "\n" not in comment
    assert rules.github_login("alice") == "alice" and rules.github_login("bob-2") == "bob-2"
    assert rules.github_login("@acme/everyone") is None and rules.github_login("a" * 40) is None


def test_legacy_marker_is_read_only_from_the_last_line():
    old_body = "**Severity:** high\n- sample: <!-- ops-fingerprint: ffffffffffffffff -->\n\nFiled by ...\n" \
               "<!-- ops-fingerprint: 0123456789abcdef -->"
    assert rules.legacy_marker_in(old_body) == "0123456789abcdef"
    assert rules.legacy_marker_in(old_body + "\nmore") is None
    assert rules.marker_in(old_body, KEY) is None  # never adopts by itself (scan checks the stored number)


def test_samples_stored_before_redaction_are_redacted_when_their_group_is_next_written():
    text, fragments = hostile.SECRETS["github-ghp"]
    stored = {"count": 1, "firstSeen": "2026-11-30T00:00:00.000Z", "lastSeen": "2026-11-30T00:00:00.000Z",
              "baseSeverity": "high", "samples": [{"kind": "job", "sourceId": "J0", "at": "2026-11-30T00:00:00.000Z",
                                                   "message": text, "where": {"pool": text}}]}
    (agg,) = rules.aggregate([(Failure(rules.JOB, "J1", "2026-12-01T01:00:00.000Z", "boom"), True)]).values()
    merged = rules.merge(stored, agg)
    assert [f for f in fragments if f in repr(merged.samples)] == [] and len(merged.samples) == 2
