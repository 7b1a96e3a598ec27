"""What officials and administrators read: the adoption report per agency and local day, the
province's entries in time order, and the list of enrolled units."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from appliance.errors import ServiceError
from appliance.records import SENT_KINDS
from collector.services.base import Db, iso

MAX_REPORT_DAYS: Final = 3660  # ten years: longer is a typo in a date, not a report


@dataclass(frozen=True, slots=True)
class AdoptionRow:
    day: str
    agency: str
    app: int
    no_app: int
    manual: int

    @property
    def rate(self) -> float | None:
        """app / (app + no app), as on the device (appliance.core.doorway.adoption_rate)."""
        sensed = self.app + self.no_app
        return self.app / sensed if sensed else None

    def as_json(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "day": self.day,
            "agency": self.agency,
            "app": self.app,
            "no_app": self.no_app,
            "manual": self.manual,
            "total": self.app + self.no_app + self.manual,
            "adoption_rate": None if rate is None else round(rate, 4),
        }


def check_days(first: date, last: date) -> None:
    if last < first:
        raise ServiceError(422, f"--to {last} is before --from {first}")
    if (last - first).days > MAX_REPORT_DAYS:
        raise ServiceError(422, "a report spans at most ten years")


def adoption(db: Db, first: date, last: date) -> list[AdoptionRow]:
    """Entries per agency and local day (the collector's time zone), first..last inclusive."""
    check_days(first, last)
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT local_day, agency, kind, count(*) FROM visits"
            " WHERE local_day >= ? AND local_day <= ?"
            " GROUP BY local_day, agency, kind ORDER BY local_day, agency",
            (first.isoformat(), last.isoformat()),
        )
    table: dict[tuple[str, str], dict[str, int]] = {}
    for day, agency, kind, n in rows:
        table.setdefault((day, agency), dict.fromkeys(SENT_KINDS, 0))[kind] = int(n)
    return [
        AdoptionRow(day, agency, c["app"], c["no_app"], c["manual"])
        for (day, agency), c in sorted(table.items())
    ]


EXPORT_COLUMNS: Final = (
    "uuid", "checkpoint_id", "agency", "door", "kind", "protocol", "entered_at", "left_at",
    "clock_synced", "via_sensor",
)  # fmt: skip


def entries(db: Db, first: date, last: date) -> Iterator[tuple[Any, ...]]:
    """Every entry of the province, first..last (local days) inclusive, in time order.

    A generator: the dates are checked, and the database read, only once it is iterated
    (call ``check_days`` first where a refusal must come before a response starts)."""
    check_days(first, last)
    with db.transaction() as tx:
        yield from tx.stream(
            f"SELECT {', '.join(EXPORT_COLUMNS)} FROM visits"
            " WHERE local_day >= ? AND local_day <= ? ORDER BY entered_at, uuid",
            (first.isoformat(), last.isoformat()),
        )


def units(db: Db) -> list[dict[str, Any]]:
    """Every enrolled unit with its visits and pending alerts, by agency and door."""
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT c.id, c.agency, c.door, c.last_seen_at, c.token_expires_at,"
            " (SELECT count(*) FROM visits v WHERE v.checkpoint_id = c.id),"
            " (SELECT count(*) FROM alerts a WHERE a.checkpoint_id = c.id"
            "  AND a.acked_at IS NULL), c.refused_records"
            " FROM checkpoints c ORDER BY c.agency, c.door, c.id"
        )
    return [
        {
            "checkpoint_id": cp,
            "agency": agency,
            "door": door,
            "last_seen_at": iso(seen),
            "token_expires_at": iso(expires),
            "visits": int(visits),
            "pending_alerts": int(alerts),
            "refused_records": int(refused),
        }
        for cp, agency, door, seen, expires, visits, alerts, refused in rows
    ]
