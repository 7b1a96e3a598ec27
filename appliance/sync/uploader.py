"""The uploader: empties the outbox into the collector, and sends the unit's heartbeat.

It runs in its own thread beside the daemon's loop (requests blocks), with its own SQLite
connection. A record is marked synced only once the collector has acknowledged the batch that
carried it, and only if it did not change meanwhile; a lost reply means the batch is sent again,
which the collector recognises by the records' UUIDs. Failures back off exponentially with
jitter (honouring ``Retry-After``), and a change in the network (a link or a route coming up)
cuts the wait short, so a unit catches up soon after the network returns without hammering a
collector that is down. A week's backlog goes in batches of ``batch_size``, one request at a
time. The outbox comes from whoever builds the uploader (a factory: see ``sync.outbox``), and
all time comes from one injected ``SyncClock``.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import Refused, StoreError, SyncError, TlsError, Transient, Unauthorized
from appliance.records import OutboxRecord
from appliance.sync.client import CollectorClient
from appliance.sync.clock import SyncClock, SystemClock
from appliance.sync.outbox import OutboxFactory, SyncOutbox
from appliance.sync.retry import Backoff, network_signature
from appliance.sync.tuning import FIRST_BACKOFF_MAX_S, NETWORK_POLL_S, SyncTuning

log = logging.getLogger(__name__)

# A collector older than ``key_days`` refuses the field with a 422 naming ``records[i].key_days``
# and pydantic's "Extra inputs are not permitted" (its models forbid any field they do not know).
_KEY_DAYS_FIELD = re.compile(r"records\[\d+\]\.key_days")


@dataclass
class PushResult:
    sent: int = 0
    new: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0


@dataclass
class SyncState:
    """What the status file and the console show about sync."""

    state: str = "starting"  # ok | offline | unauthorised | tls | error | starting
    backlog: int | None = None
    rejected: int = 0
    last_success: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    next_attempt: float | None = None
    last_heartbeat: float | None = None
    server_time_offset: float | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self, now: float) -> dict[str, Any]:
        data: dict[str, Any] = {
            "state": self.state,
            "backlog": self.backlog,
            "rejected": self.rejected,
            "last_success": self.last_success,
            "last_error": self.last_error,
            "alerts": self.alerts[:5],
        }
        if self.next_attempt is not None:
            data["next_attempt_in_s"] = max(0.0, round(self.next_attempt - now, 1))
        if self.server_time_offset is not None:
            data["server_time_offset_s"] = round(self.server_time_offset, 1)
        return data


@dataclass
class _Schedule:
    """When the next push and heartbeat are due (monotonic), and the network last seen."""

    next_push: float
    next_heartbeat: float
    signature: int


def refuses_key_days(exc: Refused) -> bool:
    """The collector refused a record's ``key_days`` as a field it does not know."""
    return exc.status == 422 and any(
        isinstance(error, dict)
        and _KEY_DAYS_FIELD.fullmatch(str(error.get("field", "")))
        and "not permitted" in str(error.get("message", "")).lower()
        for error in exc.errors
    )


class Uploader:
    def __init__(
        self,
        outbox: OutboxFactory,
        client: CollectorClient,
        tuning: SyncTuning | None = None,
        *,
        health: Callable[[], dict[str, Any]] | None = None,
        clock: SyncClock | None = None,
        rng: random.Random | None = None,
        network: Callable[[], int] = network_signature,
        token_loader: Callable[[], str] | None = None,
    ) -> None:
        self.open_outbox = outbox
        self.client = client
        self.tuning = tuning = tuning if tuning is not None else SyncTuning()
        self.health = health or dict
        self.clock: SyncClock = clock if clock is not None else SystemClock()
        self.backoff = Backoff(
            min(tuning.interval_s, FIRST_BACKOFF_MAX_S), tuning.max_backoff_s, rng
        )
        self.network = network
        self.token_loader = token_loader
        self.status = SyncState()
        # False once the collector has refused ``key_days`` (it predates the field): records
        # then go without it, so their corrected times still arrive.
        self.collector_takes_key_days = True
        self._outbox: SyncOutbox | None = None
        self._schedule: _Schedule | None = None  # None until the first step
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client_closed = False

    # -- one push --------------------------------------------------------------------------

    @property
    def outbox(self) -> SyncOutbox:
        """Opened on first use, in the thread that uses it."""
        if self._outbox is None:
            self._outbox = self.open_outbox()
        return self._outbox

    def close(self) -> None:
        """Release the outbox's connection and the client's; safe to call twice. For a
        push from the command line: the running thread closes its own outbox."""
        self._close_outbox()
        if not self._client_closed:
            self._client_closed = True
            self.client.close()

    def _close_outbox(self) -> None:
        outbox, self._outbox = self._outbox, None
        if outbox is not None:
            outbox.close()

    def push(
        self,
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> PushResult:
        """Send the whole outbox, batch by batch; raises ``SyncError`` on the first failure
        (what was acknowledged before it stays marked)."""
        outbox = self.outbox
        result = PushResult()
        total = outbox.backlog()
        self.status.backlog = total
        self.status.last_attempt = self.clock.wall()
        while stop is None or not stop.is_set():
            batch = outbox.batch(self.tuning.batch_size)
            if not batch:
                break
            self._send(batch, result)
            result.batches += 1
            self.status.backlog = outbox.backlog()
            if progress is not None:
                progress(result.sent + result.rejected, max(total, result.sent + result.rejected))
            if self.tuning.pace_s and len(batch) == self.tuning.batch_size:
                self.clock.sleep(self.tuning.pace_s)
        self.status.rejected = outbox.rejected()
        self.status.backlog = outbox.backlog()
        return result

    def _send(self, batch: list[OutboxRecord], result: PushResult) -> None:
        payloads = [r.payload for r in batch]
        if not self.collector_takes_key_days:
            payloads = [{k: v for k, v in p.items() if k != "key_days"} for p in payloads]
        try:
            reply = self.client.send_visits(payloads)
        except Refused as exc:
            if exc.status not in (413, 422):
                raise
            if self.collector_takes_key_days and refuses_key_days(exc):
                self.collector_takes_key_days = False
                log.warning(
                    "the collector does not know key_days (it is older than this unit): visits"
                    " go without them, so its exposure check can miss tokens made before the"
                    " clock was synchronised; upgrade the collector"
                )
                self._send(batch, result)
                return
            if len(batch) > 1:
                # Find the record the collector refuses; send the rest.
                half = len(batch) // 2
                self._send(batch[:half], result)
                self._send(batch[half:], result)
                return
            log.warning("collector refuses record %s: %s", batch[0].uuid, exc)
            self.outbox.mark_rejected(batch[0], str(exc))
            result.rejected += 1
            return
        refused: dict[str, str] = reply["refused"]
        for record in batch:
            if record.uuid in refused:
                # It contradicts what the collector stored: sending it again changes nothing.
                reason = f"the collector refuses this record: {refused[record.uuid]}"
                log.warning("collector refuses record %s: %s", record.uuid, refused[record.uuid])
                self.outbox.mark_rejected(record, reason)
        accepted = [r for r in batch if r.uuid not in refused]
        self.outbox.mark_synced(accepted, self.clock.wall())
        result.rejected += len(batch) - len(accepted)
        result.sent += len(accepted)
        result.new += reply["new"]
        result.duplicates += reply["duplicates"]

    def heartbeat(self) -> list[dict[str, Any]]:
        outbox = self.outbox
        acked = outbox.unacked_alerts()
        health = dict(self.health())
        health["sync"] = {
            "backlog": outbox.backlog(),
            "rejected": outbox.rejected(),
            "last_success": self.status.last_success,
        }
        sent_at = self.clock.wall()
        reply = self.client.heartbeat(health, acked, hostname=socket.gethostname())
        received_at = self.clock.wall()
        outbox.mark_acked(acked)
        alerts = [a for a in reply["alerts"] if isinstance(a, dict)]
        new = outbox.save_alerts(alerts, received_at)
        if new:
            log.warning("collector sent %d new alert(s)", new)
        server_time = reply.get("server_time")
        if isinstance(server_time, int | float):
            self.status.server_time_offset = float(server_time) - (sent_at + received_at) / 2
        self.status.last_heartbeat = received_at
        self.status.alerts = outbox.alerts(5)
        return alerts

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """The thread is alive (it keeps running through any failure until ``stop``)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop; a request in flight is abandoned (its batch is simply sent again later)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Send now (network back, or a person asked)."""
        self._wake.set()

    def _fail(self, exc: BaseException) -> float:
        """Record a failure; returns how long to wait before the next try."""
        message = str(exc)
        self.status.last_error = message
        if isinstance(exc, Unauthorized):
            self.status.state = "unauthorised"
            delay = self.backoff.cap  # nothing changes until someone re-enrolls…
            if self._reload_token():
                delay = self.backoff.next()  # …unless someone just did
        elif isinstance(exc, TlsError):
            self.status.state = "tls"
            delay = self.backoff.cap
        elif isinstance(exc, Transient):
            self.status.state = "offline"
            delay = self.backoff.next(exc.retry_after)
        else:
            self.status.state = "error"
            delay = self.backoff.next()
        log.warning("sync: %s (next try in %.0f s)", message, delay)
        return delay

    def _succeeded(self) -> None:
        self.backoff.reset()
        self.status.state = "ok"
        self.status.last_success = self.clock.wall()
        self.status.last_error = None

    def _reload_token(self) -> bool:
        """Re-read the token file (the unit was enrolled again); True if it changed."""
        if self.token_loader is None:
            return False
        try:
            token = self.token_loader()
        except Exception as exc:
            log.info("cannot re-read the sync token: %s", exc)
            return False
        if token and token != self.client.token:
            log.warning("sync: using the new token from the token file")
            self.client.token = token
            return True
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                wait = self.step()
                self._wake.wait(max(0.0, min(wait, NETWORK_POLL_S)))
        finally:
            self._close_outbox()

    def step(self) -> float:
        """One turn of the thread's loop, at the clock's time: notice a changed network (unless
        woken), push if due or woken, heartbeat if due. Returns the seconds until the next of
        them is due (the thread waits that long, at most ``NETWORK_POLL_S``, or until woken)."""
        # Scheduling runs on the monotonic clock: a wall clock corrected backwards (a Pi without
        # an RTC) must not stall sync for the size of the correction.
        mono = self.clock.monotonic
        schedule = self._schedule
        if schedule is None:
            now = mono()
            schedule = self._schedule = _Schedule(now, now, self.network())
        elif not self._wake.is_set():
            self._notice_network(schedule)
        if mono() >= schedule.next_push or self._wake.is_set():
            self._wake.clear()
            self._push_turn(schedule)
        if mono() >= schedule.next_heartbeat:
            self._heartbeat_turn(schedule)
        return min(schedule.next_push, schedule.next_heartbeat) - mono()

    def _notice_network(self, schedule: _Schedule) -> None:
        current = self.network()
        if current != schedule.signature:
            schedule.signature = current
            if self.status.state != "ok":
                log.info("network changed: trying now")
                self.backoff.reset()
                schedule.next_push = schedule.next_heartbeat = self.clock.monotonic()

    def _push_turn(self, schedule: _Schedule) -> None:
        mono = self.clock.monotonic
        try:
            result = self.push(stop=self._stop)
        except (SyncError, StoreError) as exc:
            schedule.next_push = mono() + self._fail(exc)
            schedule.next_heartbeat = max(schedule.next_heartbeat, schedule.next_push)
        except Exception as exc:  # a bug must not end sync for good
            log.exception("uploader")
            schedule.next_push = mono() + self._fail(exc)
        else:
            if result.batches:
                self._succeeded()
            schedule.next_push = mono() + self.tuning.interval_s
        self.status.next_attempt = self.clock.wall() + (schedule.next_push - mono())

    def _heartbeat_turn(self, schedule: _Schedule) -> None:
        mono = self.clock.monotonic
        try:
            self.heartbeat()
        except (SyncError, StoreError) as exc:
            # The heartbeat is how an idle unit finds out the collector is away.
            schedule.next_heartbeat = schedule.next_push = mono() + self._fail(exc)
            self.status.next_attempt = self.clock.wall() + (schedule.next_push - mono())
        except Exception as exc:
            log.exception("heartbeat")
            schedule.next_heartbeat = mono() + self._fail(exc)
        else:
            self._succeeded()
            schedule.next_heartbeat = mono() + self.tuning.heartbeat_s
