"""The uploader's one clock: wall time for what it records, monotonic time for its schedule.

Injected so a test can drive the schedule (backoff, intervals, the network poll) by moving a
fake clock and calling ``Uploader.step``, instead of waiting for it.
"""

from __future__ import annotations

import time
from typing import Protocol


class SyncClock(Protocol):
    def wall(self) -> float:
        """UNIX time: when a record was synced, the last success, the collector's offset."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock NTP never steps: when the next push and heartbeat are due."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the uploader's thread (the pause between batches while catching up)."""
        ...


class SystemClock:
    """The real clocks."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
