"""The daemon's side of the inbox: what the console and `checkpoint log-visitor` asked for,
checked (a request file is untrusted JSON) and applied: a visitor's entry, or "mute".

A request is removed only once its effect is committed; one that cannot be understood is moved
aside (appliance.inbox), and one that cannot be removed is skipped from then on.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from appliance import clock, inbox
from appliance.daemon.clocks import real_wall
from appliance.errors import StoreError, VisitorError
from appliance.records import UUID_PATTERN
from appliance.visitors import validate

log = logging.getLogger("checkpoint")

CLOCK_STEP_S = 1.0  # a request's wall and boot times further apart: the clock was set since
REQUESTS_PER_ROUND = 50  # a flood of requests must not hold up the ticker
MAX_MUTE_MINUTES = 24 * 60


def request_time(value: Any, now: float) -> float | None:
    """The time a console request was made, if it is believable: a number (not a boolean),
    not in the future of the wall time ``now`` (beyond a minute of clock difference) and
    after 2000."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if not 946684800 <= value <= now + 60:
        return None
    return float(value)


def manual_time(data: dict[str, Any], now: float) -> tuple[float | None, tuple[str, float] | None]:
    """When a visitor typed at the console came in, and that time on this boot's clock;
    ``now`` is the wall time.

    The console reads both clocks (appliance.visitors). A request from this boot gets its
    time from the boot clock whenever the wall clock was set since it was typed (NTP, after a
    power cut): its ``at`` would be wrong by that step. Any other request has its ``at`` only.
    """
    at = request_time(data.get("at"), now)
    boot_id, boot_s = data.get("boot_id"), data.get("boot_s")
    if boot_id is None or boot_id != clock.boot_id():
        return at, None
    if isinstance(boot_s, bool) or not isinstance(boot_s, int | float) or not math.isfinite(boot_s):
        return at, None
    from_boot = request_time(now - (clock.boottime() - boot_s), now)
    if from_boot is None:
        return at, None
    if at is None or abs(from_boot - at) > CLOCK_STEP_S:
        at = from_boot
    return at, (str(boot_id), float(boot_s))


class ManualLog(Protocol):
    """What the applier needs of the visit log."""

    def add_manual(
        self,
        name: str,
        *,
        organisation: str | None = None,
        phone: str | None = None,
        purpose: str | None = None,
        when: float | None = None,
        entry_uuid: str | None = None,
        clock_synced: bool = True,
        when_boot: tuple[str, float] | None = None,
    ) -> str: ...


class Mutable(Protocol):
    """The door's lights and buzzer, which a mute silences."""

    def mute(self, minutes: float) -> None: ...


class InboxApplier:
    """Applies the requests waiting in the inbox beside ``database``."""

    def __init__(
        self,
        database: Path,
        visits: ManualLog,
        *,
        mute_minutes: float,
        clock_synced: Callable[[], bool],
        door: Mutable | None = None,
        wall: Callable[[], float] = real_wall,
    ) -> None:
        """``wall`` is the real wall clock, even beside the simulated lobby: the console
        stamps its requests with it."""
        self.database = database
        self.visits = visits
        self.mute_minutes = mute_minutes  # a mute request that does not say how long
        self.clock_synced = clock_synced
        self.door = door
        self.wall = wall
        self.muted_until = 0.0  # wall time; the console shows it
        self._stuck: set[str] = set()  # applied but not removable
        self._waits: str | None = None  # why the visit log could not take a manual entry

    def apply(self) -> None:
        """Apply (up to REQUESTS_PER_ROUND of) what waits; a visit log that cannot take a
        manual entry now stops the round, and the request waits for the next one."""
        waiting = [p for p in inbox.pending(self.database) if p.name not in self._stuck]
        for path in waiting[:REQUESTS_PER_ROUND]:
            request = inbox.read(path)
            if request is None:
                continue
            if request.kind == "mute":
                self._mute(path, request.data)
            elif request.kind == "manual":
                if not self._manual(path, request.data):
                    return
            else:
                inbox.reject(path, f"unknown request {request.kind!r}")

    def _mute(self, path: Path, data: dict[str, Any]) -> None:
        minutes = data.get("minutes", self.mute_minutes)
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int | float)
            or not 0 < minutes <= MAX_MUTE_MINUTES
        ):
            inbox.reject(path, f"bad minutes {minutes!r}")
            return
        now = self.wall()
        asked = request_time(data.get("at"), now)
        until = (asked if asked is not None else now) + float(minutes) * 60
        left = until - now
        if left > 0:  # a request read late (the daemon was down) mutes what is left
            self.muted_until = until
            if self.door is not None:
                self.door.mute(left / 60)
            log.info("muted for %.0f s from the console", left)
        self._done(path)

    def _manual(self, path: Path, data: dict[str, Any]) -> bool:
        """False when the visit log could not take it (kept: tried again next round)."""
        try:
            visitor = validate(
                data.get("name"), data.get("organisation"), data.get("phone"),
                data.get("purpose"), lang="en",
            )  # fmt: skip
            at, when_boot = manual_time(data, self.wall())
            entry_uuid = data["uuid"]
            if not isinstance(entry_uuid, str) or not re.fullmatch(UUID_PATTERN, entry_uuid):
                raise ValueError(f"bad uuid {entry_uuid!r}")  # the collector would refuse it
            if at is None:
                raise ValueError(f"bad time {data.get('at')!r}")
        except (VisitorError, KeyError, TypeError, ValueError) as exc:
            inbox.reject(path, str(exc))
            return True
        try:
            self.visits.add_manual(
                visitor.name, organisation=visitor.organisation, phone=visitor.phone,
                purpose=visitor.purpose, when=at, entry_uuid=entry_uuid,
                clock_synced=self.clock_synced(), when_boot=when_boot,
            )  # fmt: skip
        except StoreError as exc:
            if str(exc) != self._waits:  # tried each second: said once (a full disk)
                log.error("manual entry waits in the inbox: %s", exc)
            self._waits = str(exc)
            return False
        self._waits = None
        log.info("manual entry recorded from the console")
        self._done(path)
        return True

    def _done(self, path: Path) -> None:
        """Remove an applied request; one that cannot be removed is skipped from now on
        (applying it again would be harmless, but it must not hold up the others)."""
        try:
            inbox.done(path)
        except OSError as exc:
            if path.name not in self._stuck:
                log.error("inbox: applied %s but cannot remove it: %s", path.name, exc)
            self._stuck.add(path.name)
