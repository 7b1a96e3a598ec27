"""The period an export covers (local days of the unit's zone) and the headers every format
writes, in one order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from appliance.errors import UsageError
from appliance.formats.labels import ENTRY_COLUMNS as COLUMNS
from appliance.i18n import text

MAX_SPAN_DAYS = 3660  # ten years


@dataclass(frozen=True)
class Period:
    """Local days first..last inclusive, as UNIX seconds [start, end)."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> float:
        return datetime.combine(self.first, datetime.min.time(), self.zone).timestamp()

    @property
    def end(self) -> float:
        after = self.last + timedelta(days=1)
        return datetime.combine(after, datetime.min.time(), self.zone).timestamp()

    def fixed_offset(self) -> int | None:
        """The zone's UTC offset in seconds if it is the same all through the period."""
        offsets = set()
        day = self.first
        while day <= self.last + timedelta(days=1):
            for hour in (0, 12):
                moment = datetime.combine(day, datetime.min.time(), self.zone).replace(hour=hour)
                offset = moment.utcoffset()
                offsets.add(int(offset.total_seconds()) if offset is not None else 0)
            day += timedelta(days=1)
            if len(offsets) > 1:
                return None
        return offsets.pop()


def period(first: date, last: date, timezone: str) -> Period:
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    if (last - first).days > MAX_SPAN_DAYS:
        raise UsageError("an export spans at most ten years")
    return Period(first, last, ZoneInfo(timezone))


def offset_text(seconds: int) -> str:
    """A UTC offset as ISO 8601 writes it: ``+07:00``."""
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def headers(lang: str, offset: int | None) -> list[str]:
    """The column headers, the times' offset stated when the period has one."""
    shown = f" (UTC{offset_text(offset)})" if offset is not None else ""
    return header_names(lang, shown)


def header_names(lang: str, time_note: str) -> list[str]:
    names = [text(key, lang) for _, key in COLUMNS]
    names[2] += time_note
    names[3] += time_note
    return names
