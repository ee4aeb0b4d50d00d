"""The pure lifetime rules (chalicelib/core/retention.py) and the lifetime settings, without AWS."""
from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.core import retention
from chalicelib.core.config import Settings


def test_an_item_lives_its_full_lifetime_fractions_included():
    assert retention.expires_at(1000, 1) == 1000 + 86400
    assert retention.expires_at(1000, 0.5) == 1000 + 43200
    # a fraction of a second rounds up: never expired before its time
    assert retention.expires_at(1000.2, 0.00001) == 1001 + 1  # 0.864 s after 1000.2 is 1001.064
    assert retention.expires_at(1000, 0) == 1000
    assert retention.expires_at(1000, -3) == 1000  # a negative lifetime counts as none


def test_expired_at_and_after_its_second_never_before():
    assert not retention.is_expired(1001, 1000.9)
    assert retention.is_expired(1001, 1001)
    assert retention.is_expired(Decimal(1001), 1002)  # what a DynamoDB read hands back


@pytest.mark.parametrize("ttl", [None, "1000", True, {"n": 1}])
def test_no_ttl_or_one_ttl_would_ignore_never_expires(ttl):
    assert not retention.is_expired(ttl, 10**12)


def test_live_filter_names_the_ttl_attribute_and_now_in_whole_seconds():
    flt, names, values = retention.live_filter_args(1234.9)
    assert flt == retention.LIVE_FILTER and names == {"#ttl": "ttl"} and values == {":now": 1234}


def test_cutoff_is_now_minus_the_lifetime():
    assert retention.cutoff(100000, 1) == 100000 - 86400


def test_lifetimes_default_as_the_contract_says(monkeypatch):
    for name in ("SESSION_RETENTION_DAYS", "EXPIRED_SESSION_RETENTION_DAYS", "PATCH_EVENT_RETENTION_DAYS",
                 "INGEST_RETENTION_DAYS", "REPORT_RETENTION_DAYS", "AUDIT_RETENTION_DAYS", "LOG_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env()
    assert (s.session_retention_days, s.expired_session_retention_days, s.patch_event_retention_days,
            s.ingest_retention_days, s.report_retention_days, s.audit_retention_days,
            s.log_retention_days) == (7, 30, 90, 30, 365, 400, 14)


def test_lifetimes_take_fractions_of_days(monkeypatch):
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "0.00001")
    monkeypatch.setenv("LOG_RETENTION_DAYS", "0.5")
    s = Settings.from_env()
    assert s.audit_retention_days == 0.00001 and s.log_retention_days == 0.5


@pytest.mark.parametrize("raw", ["seven", "-1", "nan", "inf"])
def test_a_lifetime_that_is_not_a_non_negative_number_fails_loudly(monkeypatch, raw):
    monkeypatch.setenv("INGEST_RETENTION_DAYS", raw)
    with pytest.raises(ValueError, match="INGEST_RETENTION_DAYS"):
        Settings.from_env()
