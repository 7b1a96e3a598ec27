"""The exposure check: did a confirmed case's phone pass through this checkpoint?

Derives the case's identifiers, recomputes the tokens this unit would have stored for them, and
looks them up in the visit log, with how many other app visitors overlapped each visit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance.core.exposure import Case, case_tokens
from appliance.store import EntryRow, VisitLog

# Tokens depend on the UTC day the identifier was seen; a phone clock a little off around
# midnight must still match, so each identifier's window is widened by this much.
DAY_SLACK = timedelta(minutes=20)


@dataclass(frozen=True, slots=True)
class Match:
    entry: EntryRow
    matched_tokens: int
    overlapping: int

    def as_json(self, timezone: str) -> dict[str, Any]:
        zone = ZoneInfo(timezone)
        entered = self.entry.entered_at
        left = self.entry.left_at

        def utc(t: float | None) -> str | None:
            if t is None:
                return None
            return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

        def local(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, zone).isoformat()

        return {
            "entry": self.entry.uuid,
            "protocol": self.entry.protocol,
            "entered_at": utc(entered),
            "left_at": utc(left),
            "entered_local": local(entered),
            "left_local": local(left),
            "dwell_s": None if left is None else round(left - entered),
            "overlapping_app_entries": self.overlapping,
            "matched_tokens": self.matched_tokens,
            "clock_synced": self.entry.clock_synced,
        }


def check_exposure(store: VisitLog, secret: bytes, case: Case) -> list[Match]:
    wanted = case_tokens(case, secret, slack=DAY_SLACK, rekeyed=store.rekeyed_days())
    hits: dict[int, tuple[EntryRow, int]] = {}
    for row, _token in store.entries_with_tokens(wanted):
        previous = hits.get(row.id)
        hits[row.id] = (row, (previous[1] if previous else 0) + 1)
    now = time.time()
    return [
        Match(row, count, store.overlapping_app_entries(row, open_end=now))
        for row, count in sorted(hits.values(), key=lambda pair: pair[0].entered_at)
    ]
