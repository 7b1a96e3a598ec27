"""A confirmed case's identifiers, derived from the key the health authority publishes.

Pure: turns a ``BluezoneCase`` or ``GaenCase`` into the identifiers the case's phone sent, with
their time windows, and into the tokens a checkpoint stored for them (docs/protocols.md §4).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from appliance.core.tokens import day_key, token_with_day_key
from appliance.protocols import bluezone_keys, gaen_keys

# A stay with no end (the daemon was killed while the phone was near) counts this long at most
# when looking for overlaps: a working day. The device and the collector both apply it.
MAX_OPEN_STAY_S = 12 * 3600

MAX_DAYS = 60  # far beyond any incubation window; bounds the work a typo can cause
GAEN_PERIOD = gaen_keys.TEK_ROLLING_PERIOD


@dataclass(frozen=True, slots=True)
class BluezoneCase:
    daily_key: bytes  # the case's daily key of first_day
    first_day: date
    days: int = 1


@dataclass(frozen=True, slots=True)
class GaenCase:
    tek: bytes
    first_interval: int  # the TEK's rolling start interval number


Case = BluezoneCase | GaenCase


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class CaseIdentifier:
    """One identifier the case's phone sent, and when it was valid (UTC, end exclusive)."""

    scheme: str
    raw_id: bytes
    start: datetime
    end: datetime
    slot: int | None = None  # bluezone
    interval: int | None = None  # gaen

    def as_json(self) -> dict[str, Any]:
        if self.scheme == "gaen":
            return {
                "interval": self.interval,
                "start": _iso(self.start),
                "rpi": self.raw_id.hex().upper(),
            }
        return {
            "date": self.start.date().isoformat(),
            "slot": self.slot,
            "start": _iso(self.start),
            "id": self.raw_id.hex().upper(),
        }

    def as_text(self) -> str:
        number = self.interval if self.scheme == "gaen" else self.slot
        return f"{_iso(self.start)}  {number:>3}  {self.raw_id.hex().upper()}"


def case_identifiers(case: Case) -> Iterator[CaseIdentifier]:
    """Every identifier of the case, in time order."""
    if isinstance(case, BluezoneCase):
        span = timedelta(minutes=bluezone_keys.SLOT_MINUTES)
        for day, slot, value in bluezone_keys.case_ids(case.daily_key, case.first_day, case.days):
            start = bluezone_keys.slot_start(day, slot)
            yield CaseIdentifier("bluezone", value, start, start + span, slot=slot)
    else:
        span = timedelta(seconds=gaen_keys.INTERVAL_SECONDS)
        values = gaen_keys.rpis(case.tek, case.first_interval, GAEN_PERIOD)
        for k, value in enumerate(values):
            interval = case.first_interval + k
            start = gaen_keys.interval_start(interval)
            yield CaseIdentifier("gaen", value, start, start + span, interval=interval)


def case_tokens(
    case: Case,
    secret: bytes,
    slack: timedelta = timedelta(0),
    rekeyed: Mapping[date, Collection[date]] | None = None,
) -> dict[str, CaseIdentifier]:
    """token → identifier, for matching a checkpoint's stored tokens against the case.

    A token depends on the UTC day the identifier was *seen*; an identifier valid across midnight
    (GAEN intervals do not straddle it, but ``slack`` may widen a window) gets both days' tokens.

    ``rekeyed`` maps a day to the other days whose keys made tokens seen on it: a token taken
    before the clock was synchronised was keyed with the day the wrong clock read, and its time
    corrected since (docs/architecture.md §time). Such a day's IDs also get those days' tokens.
    """
    keys: dict[date, bytes] = {}
    result: dict[str, CaseIdentifier] = {}
    extra = rekeyed or {}

    def token_of(ident: CaseIdentifier, day: date) -> str:
        key = keys.get(day)
        if key is None:
            key = keys[day] = day_key(secret, day)
        return token_with_day_key(key, ident.scheme, ident.raw_id)

    for ident in case_identifiers(case):
        first = (ident.start - slack).date()
        last = (ident.end + slack - timedelta(microseconds=1)).date()
        day = first
        while day <= last:
            result[token_of(ident, day)] = ident
            for key_day in extra.get(day, ()):
                result[token_of(ident, key_day)] = ident
            day += timedelta(days=1)
    return result
