"""The uplink: buffered records to the control plane's POST /ingest, in batches, at least once.

A record leaves the buffer only after a 200 from /ingest names the batch
accepted; the control plane stores each (org, agent, recordId) once, so a
batch resent after a lost answer (a timeout, a kill -9 between the answer and
the delete) is counted as duplicates there, never stored twice.

Failures:
- no answer, 5xx, 429: retried with exponential backoff and full jitter
  (sleep uniform(0, min(cap, base * 2**n))); a Retry-After on 429/503 is a
  floor on that sleep.
  The Retry-After window binds every sender: the background loop waits it out,
  and a manual flush (POST /uplink/flush, the `flush` command) inside it sends
  nothing and answers {"deferred": true, "retryAfterSeconds": n} (the loop
  sends when the window ends).
- 401/403: the key is wrong or revoked; the data is fine, so it stays in the
  buffer and the uplink retries at the backoff cap (an operator must act).
- any other 4xx (400 invalid record, 413 too large, 422): retrying cannot fix
  it. A batch of several records is split in halves and each half retried at
  once, so only the records the control plane really rejects (down to single
  records) move to the quarantine table; the rest keeps flowing.
- a timeout halves the next batch (down to 10 records; it doubles back after
  each success): the timed-out request may still be running upstream.
"""
from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass

from edge_gateway.buffer import Buffer, Closed, StoredRecord
from edge_gateway.client import ControlPlane, Unreachable
from edge_gateway.metrics import Metrics

log = logging.getLogger("edge_gateway.uplink")

MIN_BATCH = 10
RETRYABLE_4XX = {408, 409, 425, 429}  # 409: a concurrent identical request (Idempotency) or busy item
AUTH = {401, 403}


@dataclass
class SendOutcome:
    ok: bool
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    retry_after: float | None = None
    error: str | None = None
    status: int | None = None


@dataclass
class UplinkState:
    last_success: float | None = None
    last_attempt: float | None = None
    failing_since: float | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    next_attempt_at: float | None = None
    agent_id: str | None = None
    batches: int = 0


class Uplink:
    def __init__(self, buffer: Buffer, control_plane: ControlPlane, metrics: Metrics, *, batch_records: int = 500,
                 batch_bytes: int = 192 * 1024, backoff_base: float = 0.5, backoff_cap: float = 60.0,
                 idle_interval: float = 1.0):
        self.buffer = buffer
        self.cp = control_plane
        self.metrics = metrics
        self.batch_records = batch_records
        self.current_batch = batch_records  # shrinks after timeouts (see _adapt)
        self.batch_bytes = batch_bytes
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.idle_interval = idle_interval
        self.state = UplinkState()
        self._not_before = 0.0  # time.monotonic() before which nothing is sent: the control plane's Retry-After
        self._send_lock = threading.Lock()  # one upload at a time (background loop or /uplink/flush)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one batch ------------------------------------------------------------

    def send(self, batch: list[StoredRecord]) -> SendOutcome:
        """Upload `batch`; on success or quarantine the buffer is updated before returning."""
        body = encode_batch(batch)
        started = time.monotonic()
        self.state.last_attempt = time.time()
        try:
            reply = self.cp.request("POST", "/ingest", body)
        except Unreachable as e:
            return SendOutcome(False, error=str(e))
        finally:
            self.metrics.uplink_latency.observe(time.monotonic() - started)
        if reply.status == 200:
            answer = reply.json() or {}
            accepted, duplicates = int(answer.get("accepted", 0)), int(answer.get("duplicates", 0))
            if isinstance(answer.get("agentId"), str):
                self.state.agent_id = answer["agentId"]
            self.buffer.acknowledge([r.seq for r in batch], accepted, duplicates)
            return SendOutcome(True, accepted, duplicates, status=200)
        error = f"{reply.status}: {reply.body[:500].decode('utf-8', 'replace')}"
        if reply.status in (429, 503):
            return SendOutcome(False, retry_after=_retry_after(reply.headers.get("retry-after")), error=error,
                               status=reply.status)
        if reply.status >= 500 or reply.status in RETRYABLE_4XX or reply.status in AUTH or reply.status == 404:
            # 404: no /ingest at that URL (wrong CONTROL_PLANE_URL, older control plane): not the data's fault
            return SendOutcome(False, error=error, status=reply.status)
        # A 4xx that retrying cannot fix: isolate the offending records.
        if len(batch) == 1:
            self.buffer.quarantine(batch, reply.status, error)
            log.warning("record %s quarantined: %s", batch[0].record_id, error)
            return SendOutcome(True, quarantined=1, status=reply.status)
        middle = len(batch) // 2
        total = SendOutcome(True, status=reply.status)
        for half in (batch[:middle], batch[middle:]):
            outcome = self.send(half)
            if not outcome.ok:
                return outcome  # the rest stays buffered and is retried with backoff
            total.accepted += outcome.accepted
            total.duplicates += outcome.duplicates
            total.quarantined += outcome.quarantined
        return total

    def _next_batch(self) -> list[StoredRecord]:
        return self.buffer.oldest(self.current_batch, self.batch_bytes)

    def _adapt(self, outcome: SendOutcome) -> None:
        """A timed-out batch may still be processed upstream: resending the same size again would pile
        work onto a slow control plane. Halve the batch after a timeout, grow it back after successes."""
        if outcome.ok:
            self.current_batch = min(self.batch_records, self.current_batch * 2)
        elif outcome.error and "timed out" in outcome.error:
            self.current_batch = max(MIN_BATCH, self.current_batch // 2)

    # --- flush (POST /uplink/flush) ------------------------------------------

    def retry_after_left(self) -> float:
        """Seconds left of the control plane's last Retry-After window (0 outside one)."""
        return max(0.0, self._not_before - time.monotonic())

    def flush(self, deadline_seconds: float = 30.0) -> dict:
        """Upload until the buffer is empty, a send fails, or the deadline passes; answer the counts.

        Inside a Retry-After window nothing is sent: the answer says `deferred` and for how long."""
        uploaded = duplicates = quarantined = batches = 0
        error = None
        retry_after: float | None = None
        deadline = time.monotonic() + deadline_seconds
        with self._send_lock:
            if (left := self.retry_after_left()) > 0 and self.buffer.backlog:
                return {"deferred": True, "retryAfterSeconds": math.ceil(left * 10) / 10, "uploaded": 0,
                        "duplicates": 0, "quarantined": 0, "batches": 0, "remaining": self.buffer.backlog,
                        "ok": True, "error": None}
            while time.monotonic() < deadline:
                batch = self._next_batch()
                if not batch:
                    break
                outcome = self.send(batch)
                self._record(outcome)
                if not outcome.ok:
                    error = outcome.error
                    if outcome.retry_after is not None:
                        retry_after = math.ceil(self.retry_after_left() * 10) / 10
                    break
                batches += 1
                uploaded += outcome.accepted
                duplicates += outcome.duplicates
                quarantined += outcome.quarantined
        result = {"uploaded": uploaded, "duplicates": duplicates, "quarantined": quarantined, "batches": batches,
                  "remaining": self.buffer.backlog, "ok": error is None, "error": error}
        if retry_after is not None:
            result["retryAfterSeconds"] = retry_after
        return result

    def _record(self, outcome: SendOutcome) -> None:
        self._adapt(outcome)
        if outcome.retry_after is not None:
            self._not_before = max(self._not_before, time.monotonic() + outcome.retry_after)
        now = time.time()
        if outcome.ok:
            self.state.last_success = now
            self.state.failing_since = None
            self.state.consecutive_failures = 0
            self.state.last_error = None
            self.state.batches += 1
        else:
            if self.state.failing_since is None:
                self.state.failing_since = now
            self.state.consecutive_failures += 1
            self.state.last_error = outcome.error
            try:
                self.buffer.count(retries=1)
            except Closed:
                pass
        self.metrics.consecutive_failures.set(self.state.consecutive_failures)

    def delay(self, outcome: SendOutcome) -> float:
        """Full jitter backoff; Retry-After is a floor."""
        n = min(self.state.consecutive_failures, 30)
        ceiling = self.backoff_cap if outcome.status in AUTH else min(self.backoff_cap, self.backoff_base * 2 ** n)
        delay = random.uniform(0, ceiling)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        return delay

    # --- the background loop ----------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="uplink", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def nudge_if_batch_ready(self) -> None:
        """A full batch goes at once; a partial one waits up to idle_interval for company."""
        if self.buffer.backlog >= self.batch_records:
            self._wake.set()

    def _loop(self) -> None:
        # A round starts by lingering unless the last one left a full batch behind: records found at
        # start-up (or stored while an upload was in flight) wait for company like any other partial
        # batch, instead of racing the first store of a freshly started gateway.
        go_now = False
        while not self._stop.is_set():
            if not go_now:
                self._wake.wait(self.idle_interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
            if (left := self.retry_after_left()) > 0:
                # A window the last send (maybe a manual flush's) was given: only a stop interrupts it.
                self.state.next_attempt_at = time.time() + left
                self._stop.wait(left)
                self.state.next_attempt_at = None
                if self._stop.is_set():
                    break
            outcome = None
            try:
                with self._send_lock:
                    if self._stop.is_set() or self.retry_after_left() > 0:
                        go_now = True
                        continue
                    batch = self._next_batch()
                    outcome = self.send(batch) if batch else None
                    if outcome is not None:
                        self._record(outcome)
            except Closed:
                break
            except Exception:  # noqa: BLE001 - keep the uplink alive; the next round retries
                log.exception("uplink round failed")
                outcome = SendOutcome(False, error="internal error")
                self._record(outcome)
            if outcome is None:
                go_now = False
            elif outcome.ok:
                go_now = self.buffer.backlog >= self.current_batch
            else:
                delay = self.delay(outcome)
                self.state.next_attempt_at = time.time() + delay
                log.info("uplink failed (%s); retrying in %.2f s", outcome.error, delay)
                self._stop.wait(delay)  # only a stop interrupts a backoff: a nudge must not defeat Retry-After
                self.state.next_attempt_at = None
                go_now = True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the in-flight upload (if any) finished and its records were acknowledged."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def encode_batch(batch: list[StoredRecord]) -> bytes:
    """The POST /ingest body, with each record's stored JSON text embedded as is (no parse and re-encode):
    recordId, table and ts were validated at store time and need no escaping; data is the JSON text
    the buffer kept (ASCII, see api.parse_store)."""
    records = ",".join(f'{{"recordId":"{r.record_id}","table":"{r.table}","data":{r.data},"ts":"{r.ts}"}}'
                       for r in batch)
    return f'{{"batchId":"{batch[0].record_id}-{len(batch)}","records":[{records}]}}'.encode()
