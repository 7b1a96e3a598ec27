"""The uploader's sizes and timings, each beside its reason; ``[sync]`` sets the first four."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# While it waits, the uploader's thread reads three small /proc files this often to notice a
# link or a route coming up: cheap, and soon enough to catch up after an outage.
NETWORK_POLL_S: Final = 5.0
# Between batches while catching up: the collector serves hundreds of units.
PACE_S: Final = 0.05
# The first wait after a failure is at most this, however long the interval: a blip in the
# network should not cost a whole interval.
FIRST_BACKOFF_MAX_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class SyncTuning:
    interval_s: float = 60.0  # how often the outbox is sent
    batch_size: int = 500  # records per request
    heartbeat_s: float = 300.0  # how often the unit reports its health (and hears alerts)
    max_backoff_s: float = 900.0  # the longest wait after failures, Retry-After included
    pace_s: float = PACE_S
