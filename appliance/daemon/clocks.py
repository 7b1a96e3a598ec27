"""The daemon's clocks, and the watch that corrects records taken before the clock was set.

The door runs on a clock NTP never steps (appliance.clock.SessionClock); the simulated lobby
runs on its own virtual clock, which is then the door's and the wall's. ``ClockWatch`` asks the
kernel whether the wall clock is synchronised and, once it is, has the visit log correct the
records this boot took before (docs/architecture.md §time).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable
from typing import Any, Protocol

from appliance import clock
from appliance.ble.simulated import PacedClock
from appliance.errors import StoreError

log = logging.getLogger("checkpoint")

# adjtimex is cheap, but decisions are many: the answer is kept this long. A record taken in
# the second after sync is still marked unsynchronised, and corrected with the rest.
CLOCK_CHECK_S = 1.0


def real_wall() -> float:
    """The system's wall clock, looked up at each reading as the inline ``time.time()`` it
    replaces was: a test that sets the system's clock (monkeypatch) is obeyed. The default
    ``wall`` of the daemon's parts; the simulated lobby's virtual time never replaces it."""
    return time.time()


class DoorClock:
    """Wall time (the simulated lobby's virtual time) and the door's time."""

    def __init__(
        self, session: clock.SessionClock | None, wall: Callable[[], float] = time.time
    ) -> None:
        self.session = session
        self._wall = wall

    @classmethod
    def live(cls) -> DoorClock:
        """The door on CLOCK_BOOTTIME anchored now (the wall clock where there is no boot ID)."""
        return cls(clock.SessionClock.start())

    @classmethod
    def simulated(cls, speed: float) -> DoorClock:
        """The simulated lobby's virtual clock, for the door and the wall alike."""
        return cls(None, PacedClock(speed).now)

    def now(self) -> float:
        """Wall time: for the status and quiet hours."""
        return self._wall()

    def door_now(self) -> float:
        """The door's time: what sightings, sensor events and the ticker are stamped with."""
        return self.session.now() if self.session is not None else self._wall()

    def wall_of(self, t: float) -> float:
        """A door time as wall time, with the wall clock's offset now."""
        return t if self.session is None else self.session.to_wall(t)

    def wall_shift(self) -> float | None:
        """What to add to a door time for UTC now (the wall clock's step since the start);
        None when the door runs on the wall clock itself."""
        if self.session is None:
            return None
        reading = clock.read_boot()
        return None if reading is None else self.session.wall_shift(reading)


class CorrectableLog(Protocol):
    def correct_clock(self, now_wall: float, now_boot: float, boot_id: str) -> int: ...

    def awaiting_clock_correction(self, boot_id: str | None) -> int: ...


class ClockWatch:
    """Whether the wall clock is synchronised, and the correction once it is."""

    def __init__(
        self,
        visits: CorrectableLog,
        *,
        simulated: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.visits = visits
        self.simulated = simulated
        self.monotonic = monotonic
        self.synced = True  # the last answer of clock.is_synchronized
        self._checked = -math.inf  # monotonic() of that answer
        # A run restarted after sync corrects what an earlier run of this boot left.
        self.correction_due = True
        self._postponed: str | None = None  # why the last correction could not be made

    def clock_synced(self) -> bool:
        return self.synced

    def check(self) -> None:
        """Ask the kernel (at most once per CLOCK_CHECK_S); correct once it says synchronised.
        At start-up a clock not yet synchronised is only noted: nothing waits for the network."""
        checked = self.monotonic()
        if checked - self._checked < CLOCK_CHECK_S:
            return
        self._checked = checked
        # The simulated lobby runs on a virtual clock: treated as synchronised, as always.
        synced = self.simulated or clock.is_synchronized()
        if synced and not self.synced:
            self.correction_due = True
        self.synced = synced
        if synced and self.correction_due:
            self._correct()

    def _correct(self) -> None:
        reading = clock.read_boot()
        if reading is None:  # no boot ID (not Linux): nothing was recorded for correction
            self.correction_due = False
            return
        try:
            corrected = self.visits.correct_clock(reading.wall, reading.boot_s, reading.boot_id)
        except StoreError as exc:
            if str(exc) != self._postponed:  # tried again each second: said once (a full disk)
                log.error("clock correction postponed: %s", exc)
            self._postponed = str(exc)
            return
        self._postponed = None
        self.correction_due = False
        if corrected:
            log.info("clock synchronised: corrected %d records taken before sync", corrected)

    def health(self) -> dict[str, Any]:
        """Synchronised or not, and how many records of this boot wait for it to be."""
        try:
            waiting: int | None = self.visits.awaiting_clock_correction(clock.boot_id())
        except (StoreError, sqlite3.Error):
            waiting = None
        return {"synchronized": self.synced, "awaiting_correction": waiting}
