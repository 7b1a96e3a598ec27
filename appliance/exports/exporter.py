"""One visit log, one period, one language: the rows every format writes, and the per-day
adoption summary.

When the zone has one UTC offset over the whole period (Vietnam has had +07:00 since 1975),
the CSV's cells are computed by SQLite itself and Python only moves lines (the fast path);
otherwise each row is formatted here (the slow path, any zone).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from appliance.core.doorway import adoption_rate
from appliance.errors import UsageError
from appliance.exports.cells import CHUNK, Labels, csv_safe, local
from appliance.exports.period import Period, offset_text
from appliance.exports.source import EntrySelection, ExportedEntry, VisitSource
from appliance.models import REPORTED_KINDS as KINDS


class Exporter:
    """The selection of one period's entries, and how each is shown in ``lang``.

    ``offset`` is the zone's one UTC offset over the period, or None (then every writer takes
    the slow path); ``chunk`` is how many rows are fetched at a time (memory is O(chunk)).
    """

    def __init__(
        self,
        source: VisitSource,
        span: Period,
        *,
        lang: str = "vi",
        kind: str | None = None,
        include_simulated: bool = False,
        chunk: int = CHUNK,
    ) -> None:
        if kind is not None and kind not in KINDS:
            raise UsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.span = span
        self.lang = lang
        self.kind = kind
        self.chunk = chunk
        self.labels = Labels.of(lang)
        self.offset = span.fixed_offset()
        origins = ("live", "simulated") if include_simulated else ("live",)
        self.selection: EntrySelection = source.export_selection(
            span.start, span.end, kind=kind, origins=origins
        )

    def count(self) -> int:
        return self.selection.count()

    def left_out(self) -> int:
        """Entries of the period not exported because they are simulated or replayed."""
        return self.selection.left_out()

    def records(self) -> Iterator[ExportedEntry]:
        """Each entry as plain values (times as UNIX seconds), in time order."""
        return self.selection.entries(self.chunk)

    def local(self, t: float | None) -> datetime | None:
        """``t`` in the unit's zone, whole seconds."""
        return local(t, self.span.zone)

    def csv_lines(self) -> Iterator[list[str]]:
        """The fast path: CSV lines built by SQLite, a chunk at a time (needs ``offset``)."""
        if self.offset is None:
            raise ValueError("the period has no single UTC offset: use text_rows()")
        return self.selection.csv_lines(
            self.chunk,
            offset_s=self.offset,
            suffix=offset_text(self.offset),
            kinds=self.labels.kinds,
            yes=self.labels.yes,
            no=self.labels.no,
        )

    def text_rows(self) -> Iterator[list[Any]]:
        """Rows of display text in COLUMNS order (the slow path, any zone)."""
        labels = self.labels
        for r in self.records():
            entered = self.local(r.entered_at)
            left = self.local(r.left_at)
            assert entered is not None
            yield [
                r.uuid,
                entered.date().isoformat(),
                entered.isoformat(timespec="seconds"),
                left.isoformat(timespec="seconds") if left else "",
                labels.kind(r.kind),
                r.protocol or "",
                " ".join(r.tokens),
                csv_safe(r.name or ""),
                csv_safe(r.organisation or ""),
                csv_safe(r.phone or ""),
                csv_safe(r.purpose or ""),
                labels.clock(r.clock_synced),
            ]

    def days(self) -> list[dict[str, Any]]:
        """Per local day: with app, no app, manual, total, adoption rate (every day listed)."""
        counts: dict[str, dict[str, int]] = {}
        if self.offset is not None:
            for local_day, kind, n in self.selection.day_counts(self.offset):
                counts.setdefault(local_day, dict.fromkeys(KINDS, 0))[kind] = n
        else:
            for r in self.records():
                entered = self.local(r.entered_at)
                assert entered is not None
                local_day = entered.date().isoformat()
                counts.setdefault(local_day, dict.fromkeys(KINDS, 0))[r.kind] += 1
        result = []
        day = self.span.first
        while day <= self.span.last:
            c = counts.get(day.isoformat(), dict.fromkeys(KINDS, 0))
            result.append(day_row(day.isoformat(), c))
            day += timedelta(days=1)
        return result


def day_row(day: str, c: dict[str, int]) -> dict[str, Any]:
    rate = adoption_rate(c)
    return {
        "day": day,
        "app": c["app"],
        "no_app": c["no_app"],
        "manual": c["manual"],
        "total": c["app"] + c["no_app"] + c["manual"],
        "adoption_rate": None if rate is None else round(rate, 4),
    }


def total_row(days: list[dict[str, Any]]) -> dict[str, Any]:
    sums = {k: sum(d[k] for d in days) for k in KINDS}
    row = day_row("total", sums)
    del row["day"]
    return row
