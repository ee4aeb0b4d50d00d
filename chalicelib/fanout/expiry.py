"""Sockets opened with a credential that expires are closed when it does (the `ws_token_expiry` schedule).

A person's WebSocket is opened with a token (`/ws?token=<JWT>`); API Gateway checks nothing after
$connect, so the app closes it. Two parts:

* from the token's `exp` on, the fan-out sends the socket nothing: its item's TTL is the expiry
  (fanout/store.py `to_item`), and the fan-out skips items past their TTL;
* every minute this sweep closes (DeleteConnection) the sockets whose credential expired: each
  has a marker in the minute it expires (written with the connection at $connect), and the sweep
  reads the minutes from its cursor to now, one Query each (usually one), never the connections
  of every organization. A socket therefore stays open at most about a minute past its token.

A key with `expiresAt` gets the same treatment (its principal carries the expiry too).
"""
from __future__ import annotations

import logging

from chalicelib.core import clock
from chalicelib.core.context import Ctx
from chalicelib.fanout import adapters, fanout, store

log = logging.getLogger(__name__)

# Minutes the sweep looks back when it has no cursor yet, and at most per run (markers live 3 h).
FIRST_LOOKBACK_MINUTES = 180
MAX_MINUTES_PER_RUN = 180


def _minutes(after: str | None, until: float) -> list[str]:
    last = store.expiry_minute(until)
    start = clock.parse_iso(after + ":00Z") + 60 if after else until - FIRST_LOOKBACK_MINUTES * 60
    start = max(start, until - MAX_MINUTES_PER_RUN * 60)
    found: list[str] = []
    moment = start
    while (minute := store.expiry_minute(moment)) <= last:
        found.append(minute)
        moment += 60
    return found


def sweep(ctx: Ctx | None = None) -> dict[str, int]:
    """Close every socket whose credential expired by now; {"minutes", "closed"}."""
    ctx = ctx if ctx is not None else Ctx.system()
    now = clock.now()
    cursor = store.expiry_cursor()
    closed = 0
    finished: str | None = None
    minutes = _minutes(cursor, now)
    for minute in minutes:
        for marker in store.expiring_in(minute):
            if marker["expiresAt"] > now:
                continue  # later in the current minute: the next run
            try:
                closed += bool(adapters.close(marker["endpoint"], marker["connectionId"]))
            except Exception:  # noqa: BLE001 - one failure must not keep the others open
                log.exception("closing %s at its token's expiry failed", marker["connectionId"])
                continue
            fanout.forget(ctx.for_org(marker["orgId"]), marker["connectionId"])
            tx = ctx.for_org(marker["orgId"]).tx()
            tx.delete("marker", store.expiry_marker_delete(minute, marker["connectionId"]))
            tx.commit()
        if minute < store.expiry_minute(now):
            finished = minute  # a whole past minute is done; the current one is read again next run
    if finished is not None and finished != cursor:
        tx = ctx.tx()
        tx.put("cursor", store.expiry_cursor_put(finished))
        tx.commit()
    return {"minutes": len(minutes), "closed": closed}
