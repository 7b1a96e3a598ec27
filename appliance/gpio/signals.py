"""The door's signals as the daemon sees them: the board and the player, kept alive.

If GPIO fails at start or later, the daemon keeps scanning and logging: this object reports the
fault and tries again every ``RETRY_S``. gpiozero is imported only when the board is built, so
with ``[gpio] enabled = false`` it is never imported at all. Every time it reads (the retry and
mute timers, quiet hours, the sensor's stamps, the player's steps) comes from one injected
``SignalClock``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.config import GpioSection
from appliance.core.doorway import Signal
from appliance.core.quiet_hours import in_quiet_hours, parse_quiet_hours
from appliance.gpio.clock import LoopClock, SignalClock
from appliance.gpio.patterns import PATTERNS, SignalPlayer
from appliance.models import SensorEvent

log = logging.getLogger("checkpoint.gpio")

RETRY_S = 30.0  # a board that failed is tried again this often


class DoorSignals:
    def __init__(
        self,
        config: GpioSection,
        timezone: str,
        on_sensor: Callable[[SensorEvent], None],
        on_paper_visitor: Callable[[], None],
        pin_factory: Any = None,
        clock: SignalClock | None = None,
    ) -> None:
        self.config = config
        self.clock: SignalClock = clock if clock is not None else LoopClock()
        self.zone = ZoneInfo(timezone)
        self.quiet = parse_quiet_hours(config.quiet_hours)
        self.on_sensor = on_sensor
        self.on_paper_visitor = on_paper_visitor
        self.pin_factory = pin_factory
        self.board: Any = None
        self.player: SignalPlayer | None = None
        self.error: str | None = None
        self.muted_until = 0.0  # on the clock's monotonic time
        self._last_try: float | None = None  # None: never tried, so try at once
        self.fault = False

    def silenced(self) -> bool:
        return in_quiet_hours(datetime.fromtimestamp(self.clock.wall(), self.zone), self.quiet)

    def ensure(self) -> None:
        """Build the board if it is not there (at start, then every RETRY_S after a failure)."""
        if self.board is not None:
            return
        now = self.clock.monotonic()
        if self._last_try is not None and now - self._last_try < RETRY_S:
            return
        self._last_try = now
        try:
            from appliance.gpio.board import DoorBoard

            self.board = DoorBoard(
                self.config, asyncio.get_running_loop(), self.on_sensor, self.mute,
                self.on_paper_visitor, pin_factory=self.pin_factory, clock=self.clock.door,
            )  # fmt: skip
        except Exception as exc:  # GpioError, ImportError (no lgpio), anything from a driver
            self.error = str(exc)
            log.error("GPIO unavailable (the door keeps logging; retrying): %s", exc)
            return
        self.error = None
        self.player = SignalPlayer(self.board, silenced=self.silenced, clock=self.clock)

        def begin(player: SignalPlayer) -> None:
            player.set_fault(self.fault)
            player.start()

        self._guard(begin)

    def _guard(self, action: Callable[[SignalPlayer], object]) -> None:
        """Run ``action`` on the player; if the board fails, drop it: ``ensure`` retries."""
        player = self.player
        if player is None:
            return
        try:
            action(player)
            if not player.failed:
                return
            message = "a signal pattern failed on the board"
        except Exception as exc:
            message = str(exc)
            log.error("GPIO failed (the door keeps logging; retrying): %s", exc)
        self.error = message
        self._drop()

    def _drop(self) -> None:
        player, board = self.player, self.board
        self.player = self.board = None
        self._last_try = self.clock.monotonic()
        for thing in (player, board):
            try:
                if thing is not None:
                    thing.close()
            except Exception as exc:
                log.info("closing the GPIO board: %s", exc)

    def signal(self, signal: Signal) -> None:
        pattern = PATTERNS.get(signal.intent)
        if pattern is not None:
            self._guard(lambda player: player.play(pattern))

    def mute(self, minutes: float | None = None) -> None:
        """The receptionist's short press (or `m` on the console): silence the buzzer a while."""
        minutes = self.config.mute_minutes if minutes is None else minutes
        self.muted_until = self.clock.monotonic() + minutes * 60
        self._guard(lambda player: player.set_muted(True))

    def tick(self, fault: bool) -> None:
        self.ensure()
        self.fault = fault
        self._guard(lambda player: player.set_fault(fault))
        if self.player is None or not self.player.muted:
            return
        if self.clock.monotonic() >= self.muted_until:
            self._guard(lambda player: player.set_muted(False))

    def status(self) -> dict[str, Any]:
        player = self.player
        return {
            "state": "error" if self.error else "ok",
            "message": self.error,
            "muted": bool(player and player.muted),
            "quiet_hours": self.silenced(),
            "pattern": player.current.name if player and player.current else None,
        }

    def close(self) -> None:
        """Lights off, pins released; never raises (it runs during shutdown)."""
        self._drop()
