"""The daemon's heartbeat: advances the pipeline's clock, commits the visit log about once a
second, applies the inbox, applies retention hourly and writes the status file.

``Ticker.step`` is one round, given the monotonic time, so tests drive it without sleeping;
``run`` is the loop. A round that fails is logged and counted, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from appliance.core.pipeline import TICK_S
from appliance.daemon import status_doc
from appliance.errors import StoreError

if TYPE_CHECKING:
    from appliance.daemon.build import Parts

log = logging.getLogger("checkpoint")

FLUSH_S = 1.0  # at most about one commit a second; an entry is on disk within 2 s
STATUS_S = 1.0  # the console refreshes about once a second
RETENTION_EVERY_S = 3600  # retention is by the day: hourly is plenty


class ErrorCount:
    """Errors the daemon survived (a bug in a round, an event it could not handle)."""

    def __init__(self) -> None:
        self.count = 0

    def add(self) -> None:
        self.count += 1


class FlushableLog(Protocol):
    def flush(self) -> int: ...


class Flusher:
    """Commits the visit log's queued decisions; remembers the last failure (the status and
    the fault light show it) and logs each new one once."""

    def __init__(self, visits: FlushableLog) -> None:
        self.visits = visits
        self.error: str | None = None

    def flush(self) -> None:
        try:
            self.visits.flush()
            self.error = None
        except StoreError as exc:
            if str(exc) != self.error:
                log.error("%s", exc)
            self.error = str(exc)


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
