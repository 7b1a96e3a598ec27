"""Local calendar days as UNIX-second bounds: what "today" means at the door's timezone."""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

# Where Checkpoint was made for: the default zone of a door unit and of the collector's reports.
DEFAULT_TIMEZONE: Final = "Asia/Ho_Chi_Minh"


def local_day_bounds(now: float, timezone: str) -> tuple[float, float]:
    """UNIX seconds of the start and end of the local day containing ``now``."""
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now, zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=zone)
    return start.timestamp(), end.timestamp()
