"""The one clock the door signals read: timers, quiet hours and sensor stamps all ask it.

``LoopClock`` is the real one (the event loop's monotonic time for pattern steps, mute and
retries; the wall clock for quiet hours; the pipeline's door time for sensor events).
``ManualClock`` is a virtual one, in the spirit of gpiozero's mock pins: a test moves it forward
with ``advance`` and every pattern step happens exactly at its deadline, with no real sleep.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

# A woken task may wake another (a pattern ending starts the background one): this many trips
# round the event loop let every such chain settle before time moves on.
SETTLE_TURNS = 10


class SignalClock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never steps: what pattern steps, mute and retries count."""
        ...

    def wall(self) -> float:
        """UNIX time, for the local time of day (quiet hours)."""
        ...

    def door(self) -> float:
        """The pipeline's time, which sensor events are stamped with."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the ``monotonic`` clock."""
        ...


class LoopClock:
    """The real clocks. ``door`` is the daemon's door clock (the wall clock by default)."""

    def __init__(self, door: Callable[[], float] = time.time) -> None:
        self._door = door

    def monotonic(self) -> float:
        return time.monotonic()  # what asyncio's default loop sleeps on

    def wall(self) -> float:
        return time.time()

    def door(self) -> float:
        return self._door()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A virtual clock for tests: time stands still until ``advance`` moves it.

    All three readings move together: ``wall()`` is ``wall_start`` plus the time advanced,
    ``door()`` likewise from ``door_start``. Sleepers wake in deadline order, each at exactly
    its deadline, and the event loop runs whatever they do before time moves further.
    """

    def __init__(self, wall_start: float = 0.0, door_start: float | None = None) -> None:
        self.elapsed = 0.0
        self._wall_start = wall_start
        self._door_start = wall_start if door_start is None else door_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # equal deadlines wake in the order they slept

    def monotonic(self) -> float:
        return self.elapsed

    def wall(self) -> float:
        return self._wall_start + self.elapsed

    def door(self) -> float:
        return self._door_start + self.elapsed

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.elapsed + seconds, next(self._order), waiter))
        await waiter

    async def settle(self) -> None:
        """Let the event loop run what is ready, without moving time."""
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time ``seconds`` forward, waking each sleeper at its own deadline."""
        end = self.elapsed + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            deadline, _, waiter = heapq.heappop(self._sleepers)
            if waiter.done():  # its task was cancelled meanwhile
                continue
            self.elapsed = max(self.elapsed, deadline)
            waiter.set_result(None)
            await self.settle()
        self.elapsed = end
        await self.settle()
