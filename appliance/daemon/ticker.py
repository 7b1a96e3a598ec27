"""The daemon's heartbeat: advances the pipeline's clock, commits the visit log about once a
second, applies the inbox, applies retention hourly and writes the status file.

``Ticker.step`` is one round, given the monotonic time, so tests drive it without sleeping;
``run`` is the loop. A round that fails is logged and counted, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from appliance.core.pipeline import TICK_S
from appliance.daemon import status_doc
from appliance.errors import DiskFull, StoreError

if TYPE_CHECKING:
    from appliance.daemon.build import Parts

log = logging.getLogger("checkpoint")

FLUSH_S = 1.0  # at most about one commit a second; an entry is on disk within 2 s
STATUS_S = 1.0  # the console refreshes about once a second
RETENTION_EVERY_S = 3600  # retention is by the day: hourly is plenty
# A full disk is tried again after 1, 2, 4, 8 s, then every 15 s: a card given room is
# written to within 15 s, and a full one costs a failed open four times a minute.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 15.0


class ErrorCount:
    """Errors the daemon survived (a bug in a round, an event it could not handle)."""

    def __init__(self) -> None:
        self.count = 0

    def add(self) -> None:
        self.count += 1


class FlushableLog(Protocol):
    @property
    def pending(self) -> int: ...

    @property
    def dropped(self) -> int: ...

    def reopen(self) -> None: ...

    def flush(self) -> int: ...


class Flusher:
    """Commits the visit log's queued decisions; remembers the last failure (the status and
    the fault light show it) and logs each new one once.

    A full disk, at start or later, is the degraded mode (docs/architecture.md §degraded-mode):
    the decisions wait in the log's bounded queue, and opening and committing are tried again,
    backed off from RETRY_FIRST_S to RETRY_MAX_S; what the queue could not take is logged."""

    def __init__(
        self, visits: FlushableLog, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.visits = visits
        self.monotonic = monotonic
        self.error: str | None = None
        self.disk_full = False
        self._retry_s = RETRY_FIRST_S
        self._next_try = -math.inf
        self._dropped = 0  # the count already logged

    def flush(self, *, force: bool = False) -> None:
        """Commit what is queued; while the disk is full, only once the backoff is over
        (``force``: now, as the shutdown does)."""
        self._tell_dropped()
        now = self.monotonic()
        if self.disk_full and not force and now < self._next_try:
            return
        try:
            self.visits.reopen()
            written = self.visits.flush()
        except DiskFull as exc:
            self._failed(exc)
            self.disk_full = True
            self._next_try = now + self._retry_s
            self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)
        except StoreError as exc:
            self._failed(exc)
            self.disk_full = False
        else:
            if self.disk_full:
                log.warning("the disk has room again: %d held decisions written", written)
            self.error = None
            self.disk_full = False
            self._retry_s = RETRY_FIRST_S

    def _failed(self, exc: StoreError) -> None:
        if str(exc) != self.error:
            log.error("%s (%d decisions held in memory)", exc, self.visits.pending)
        self.error = str(exc)

    def _tell_dropped(self) -> None:
        dropped = self.visits.dropped
        if dropped != self._dropped:
            log.error(
                "%d decisions dropped in all: the memory holding %d for the disk is full",
                dropped, self.visits.pending,
            )  # fmt: skip
            self._dropped = dropped


def apply_retention(parts: Parts) -> None:
    """Delete what is past retention, by the real wall clock; with a collector, only what it
    has acknowledged (the same pass as `checkpoint maintenance`)."""
    from appliance import maintenance

    try:
        done = maintenance.apply_retention(
            parts.visits, parts.config, parts.wall(), clock_synced=parts.watch.synced
        )
    except StoreError as exc:
        log.error("retention: %s", exc)
        return
    if done.postponed:
        # A clock that later jumps forward would make today look weeks old.
        log.info("retention postponed: the clock is not synchronised")
    elif done.removed_anything:
        log.info(
            "retention removed %d entries, %d manual details, %d refused inbox requests",
            done.entries,
            done.manual_details,
            done.inbox_requests,
        )


class Ticker:
    def __init__(self, parts: Parts, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.parts = parts
        self.monotonic = monotonic
        self.last_flush = self.last_status = 0.0
        self.last_retention = monotonic()

    def advance(self) -> None:
        """The clock's state, then the pipeline's and the lights' time."""
        parts = self.parts
        try:
            parts.watch.check()
        except Exception:
            parts.errors.add()
            log.exception("error checking the clock")
        try:
            shift = parts.clock.wall_shift()
            if shift is not None:  # Bluezone's quarter-hours are the wall clock's
                parts.pipeline.tracker.utc_offset_s = shift
            parts.pipeline.tick(parts.clock.door_now())
            if parts.door is not None:
                parts.door.tick(fault=status_doc.fault(parts))
        except Exception:
            parts.errors.add()
            log.exception("error in tick")

    def step(self) -> None:
        """One round of the ticker; pings systemd's watchdog only when the round went well."""
        self.advance()
        parts = self.parts
        mono = self.monotonic()  # the rounds' pace, which no clock step may change
        try:
            if mono - self.last_flush >= FLUSH_S:
                self.last_flush = mono
                parts.flusher.flush()
                parts.inbox.apply()
            if mono - self.last_retention >= RETENTION_EVERY_S:
                self.last_retention = mono
                apply_retention(parts)
            if mono - self.last_status >= STATUS_S:
                self.last_status = mono
                status_doc.write(parts, "running")
        except Exception:  # the ticker is the daemon's heartbeat: it must go on
            parts.errors.add()
            log.exception("error in the ticker")
        else:
            # Only a loop that goes round pings the watchdog: a wedged loop gets restarted.
            parts.notifier.watchdog()

    async def run(self) -> None:
        apply_retention(self.parts)
        while True:
            await asyncio.sleep(TICK_S)
            self.step()
