"""The status document: what the daemon tells `checkpoint status`, the console and, without
personal data, the collector's heartbeat, assembled from its parts about once a second."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from appliance import __version__
from appliance.core.days import local_day_bounds
from appliance.daemon.clocks import real_wall
from appliance.status import database_of, write_status
from appliance.store.writer import MAX_PENDING

if TYPE_CHECKING:
    from appliance.daemon.build import Parts

log = logging.getLogger("checkpoint")

DISK_LOW_BYTES = 50 * 1024 * 1024  # below this, warn: SQLite needs room for its journal


class StatusFile:
    """Where the status goes, and the last document written (the heartbeat repeats it)."""

    def __init__(
        self,
        path: Path,
        *,
        simulated: bool,
        started_at: float | None = None,
        wall: Callable[[], float] = real_wall,
    ) -> None:
        """``wall`` is the real wall clock, even beside the simulated lobby: the status's
        times (start, update, uptime, the end of a mute) are read by other processes."""
        self.path = path
        self.simulated = simulated
        self.wall = wall
        self.started_at = wall() if started_at is None else started_at
        self.last: dict[str, Any] = {}

    def write(self, document: dict[str, Any]) -> None:
        self.last = document
        try:
            write_status(self.path, document)
        except OSError as exc:
            log.warning("cannot write status file %s: %s", self.path, exc)

    def heartbeat(self) -> dict[str, Any]:
        """What the collector is told in the heartbeat: the last status, no personal data."""
        status = self.last
        return {
            "version": __version__,
            "state": status.get("state"),
            "simulated": self.simulated,
            "health": {k: v for k, v in status.get("health", {}).items() if k != "sync"},
            "today": status.get("today", {}),
            "errors": status.get("errors", 0),
            "uptime_s": round(self.wall() - self.started_at),
        }


def fault(parts: Parts) -> bool:
    """What the door's fault pattern shows: the scanner down, or the visit log failing."""
    scanner = parts.source.health()
    return scanner.get("state") not in ("ok", "starting") or parts.flusher.error is not None


def disk_health(database: Path, *, full: bool = False) -> dict[str, Any]:
    """``full``: the visit log could not write for want of room (the daemon is degraded)."""
    try:
        free = shutil.disk_usage(database.parent).free
    except OSError:
        free = -1
    disk_ok = free < 0 or free >= DISK_LOW_BYTES
    return {"state": "full" if full else "ok" if disk_ok else "low", "free_bytes": free}


def store_health(parts: Parts) -> dict[str, Any]:
    """``full`` while the disk is (degraded mode: ``pending`` decisions held in memory, at most
    ``held_max``; ``dropped`` beyond it), ``error`` for any other failure."""
    flusher, visits = parts.flusher, parts.visits
    state = "full" if flusher.disk_full else "error" if flusher.error else "ok"
    return {"state": state, "message": flusher.error, "pending": visits.pending,
            "dropped": visits.dropped, "held_max": MAX_PENDING}  # fmt: skip


def health(parts: Parts) -> dict[str, Any]:
    return {
        "scanner": parts.source.health(),
        "store": store_health(parts),
        "clock": parts.watch.health(),
        "disk": disk_health(parts.config.storage.database, full=parts.flusher.disk_full),
        "sync": parts.sync.health(),
        "gpio": parts.door.status() if parts.door is not None else {"state": "off"},
    }


def door_state(parts: Parts, wall_now: float) -> dict[str, Any]:
    """What the box is doing besides greeting and prompting: muted (until a real wall time,
    compared with ``wall_now``), quiet hours."""
    from appliance.core.quiet_hours import in_quiet_hours, parse_quiet_hours

    config = parts.config
    zone = ZoneInfo(config.checkpoint.timezone)
    quiet = in_quiet_hours(
        datetime.fromtimestamp(parts.clock.now(), zone),
        parse_quiet_hours(config.gpio.quiet_hours),
    )
    muted_until = parts.inbox.muted_until
    return {"muted_until": muted_until if muted_until > wall_now else None,
            "quiet_hours": quiet}  # fmt: skip


def document(parts: Parts, state: str) -> dict[str, Any]:
    """The whole status: ``state`` is running or stopped."""
    config = parts.config
    now = parts.clock.now()
    wall_now = parts.wall()
    start, end = local_day_bounds(now, config.checkpoint.timezone)
    try:
        today = parts.visits.counts(start, end)
    except Exception:
        today = {}
    tracker = parts.pipeline.tracker
    return {
        "state": state,
        "version": __version__,
        "pid": os.getpid(),
        "started_at": parts.status.started_at,
        "updated_at": wall_now,
        "now": now,
        "checkpoint": {
            "id": config.checkpoint.id,
            "agency": config.checkpoint.agency,
            "door": config.checkpoint.door,
        },
        "database": database_of(config),  # whose status it is: readers check (§status)
        "simulated": parts.simulated,
        "health": health(parts),
        "counters": parts.pipeline.counters.as_json(),
        "errors": parts.errors.count,
        "present": tracker.present,
        "tracked": tracker.tracked,
        "today": today,
        "last_signal": parts.signals.last,
        "door": door_state(parts, wall_now),
    }


def write(parts: Parts, state: str) -> None:
    parts.status.write(document(parts, state))
