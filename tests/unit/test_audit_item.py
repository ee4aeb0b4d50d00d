"""An audit event's id and its `at` come from one clock reading: `GET /audit?since=<an event's at>`
reads ids >= the first ULID of that millisecond, so an id minted a millisecond earlier than its
`at` was missed (seen as a flaky test_audit_reads on a loaded machine)."""
import time
from datetime import datetime

from chalicelib.core import audit, ids


def test_an_events_id_is_not_older_than_its_at(monkeypatch):
    readings = iter([1764645690.1369, 1764645690.1381, 1764645690.1392, 1764645690.1403])
    monkeypatch.setattr(time, "time", lambda: next(readings))  # each reading crosses a millisecond
    item = audit.audit_item("org", "session", "s1", "updated", "actor")
    at_ms = int(datetime.fromisoformat(item["at"].replace("Z", "+00:00")).timestamp() * 1000)
    assert ids.time_bound(at_ms, upper=False) <= item["eventId"] <= ids.time_bound(at_ms, upper=True)
