"""The simulated lobby as an advertisement source: its events paced against the wall clock.

``Lobby`` (appliance.ble.simulator) is pure and runs on virtual time; this source replays it at
``speed`` × real time, so the daemon, the console and `make demo` see a door that is busy now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from appliance.ble.simulator import Lobby, busy_scenario
from appliance.models import SensorEvent, Sighting

log = logging.getLogger("checkpoint")

YIELD_EVERY = 200  # events handled before letting the ticker run, when catching up
SIMULATION_PREROLL_S = 15 * 60  # simulated lobby history replayed at start-up


class LobbySink(Protocol):
    """Where the lobby's advertisements and door crossings go (the daemon's pipeline)."""

    def on_sighting(self, sighting: Sighting) -> None: ...

    def on_sensor(self, event: SensorEvent) -> None: ...


class PacedClock:
    """Virtual time that runs ``speed`` × real time from the moment it is made: the simulated
    lobby's clock, which is then the door's and the wall's."""

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        self.speed = speed
        self._wall = wall
        self._wall_start = wall()

    def now(self) -> float:
        return self._wall_start + (self._wall() - self._wall_start) * self.speed


class SimulatedSource:
    """The simulated lobby, paced against ``clock`` (a PacedClock's ``now``)."""

    name = "simulate"

    def __init__(
        self,
        sink: LobbySink,
        *,
        clock: Callable[[], float],
        speed: float = 1.0,
        seed: int = 7,
        hours: float = 2.0,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.speed = speed
        self.seed = seed
        self.hours = hours
        self.on_error = on_error
        self.stopped = False
        # The lobby opened a little before the daemon started: its first minutes are replayed
        # at once, so the console has people and history to show from the first second.
        self.lobby = self._new_lobby(clock() - SIMULATION_PREROLL_S)

    def _new_lobby(self, start: float) -> Lobby:
        return Lobby(busy_scenario(start, self.hours, self.seed))

    async def events(self) -> AsyncIterator[Sighting | SensorEvent]:
        handled = 0
        while True:
            for event in self.lobby.events():
                delay = (event.time - self.clock()) / self.speed
                if delay > 0:
                    await asyncio.sleep(delay)
                    handled = 0
                else:
                    handled += 1
                    if handled % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                yield event
            # The day is over: a new one, so the demo never runs dry.
            self.seed += 1
            self.lobby = self._new_lobby(self.clock())

    async def start(self) -> None:
        """Nothing to start: the lobby is in memory."""

    async def run(self) -> int | None:
        """Hand every event to the sink, for ever; a bug must not stop the door."""
        try:
            async for event in self.events():
                try:
                    if isinstance(event, Sighting):
                        self.sink.on_sighting(event)
                    else:
                        self.sink.on_sensor(event)
                except Exception:  # log it, count it, go on
                    self.on_error()
                    log.exception("error handling %r", event)
        finally:
            self.stopped = True
        return None

    async def close(self) -> None:
        """Nothing to close."""

    def health(self) -> dict[str, Any]:
        if self.stopped:
            return {"state": "error", "source": self.name,
                    "message": "the advertisement source stopped"}  # fmt: skip
        return {"state": "ok", "source": self.name}
