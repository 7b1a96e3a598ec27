"""Quiet hours: the local times of day when the door's buzzer stays silent.

Pure, so the configuration can check the setting and the door signals can apply it without
either importing the other; the caller passes the local time in.
"""

from __future__ import annotations

from datetime import datetime, time


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """ "22:00-06:00" → (22:00, 06:00); "" → None. ValueError on anything else."""
    if not text.strip():
        return None
    start, _, end = text.partition("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def in_quiet_hours(now: datetime, quiet: tuple[time, time] | None) -> bool:
    """Whether local time ``now`` falls in [start, end), which may span midnight."""
    if quiet is None:
        return False
    start, end = quiet
    t = now.time()
    return start <= t < end if start <= end else (t >= start or t < end)
