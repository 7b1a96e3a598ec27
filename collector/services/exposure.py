"""The exposure check: a confirmed case's published key turned into the tokens door units
stored (the device's own derivation), the case's visits at every checkpoint, who else was
there, and an alert queued for each checkpoint visited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from appliance.core.exposure import MAX_OPEN_STAY_S, Case, CaseIdentifier, case_tokens
from appliance.records import SENT_KINDS
from collector.services.alerts import add_alert
from collector.services.base import Db, iso

# An exposure check widens each identifier's window by this much, as the device does
# (appliance.exposure_check.DAY_SLACK): a phone clock a little off around midnight still matches.
EXPOSURE_SLACK: Final = timedelta(minutes=20)
TOKENS_PER_QUERY: Final = 500  # an IN list both engines take without complaint


@dataclass(frozen=True, slots=True)
class ExposureMatch:
    visit: str
    checkpoint_id: str
    agency: str
    door: str
    protocol: str | None
    entered_at: float
    left_at: float | None
    matched_tokens: int
    overlapping: dict[str, int]

    def as_json(self, zone: ZoneInfo) -> dict[str, Any]:
        def local(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, zone).isoformat()

        return {
            "visit": self.visit,
            "checkpoint_id": self.checkpoint_id,
            "agency": self.agency,
            "door": self.door,
            "protocol": self.protocol,
            "entered_at": iso(self.entered_at),
            "left_at": iso(self.left_at),
            "entered_local": local(self.entered_at),
            "left_local": local(self.left_at),
            "matched_tokens": self.matched_tokens,
            "overlapping": self.overlapping,
        }


def _rekeyed_days(tx: Any) -> dict[date, set[date]]:
    """UTC day → the other days whose keys made tokens of visits on that day (tokens made
    before a unit's clock was synchronised). The collector does not have each token's time:
    every day of the visit's stay counts, widened by the slack."""
    found: dict[date, set[date]] = {}
    for key_day, entered, left in tx.all(
        "SELECT DISTINCT t.key_day, v.entered_at, v.left_at FROM visit_tokens t"
        " JOIN visits v ON v.uuid = t.visit_uuid WHERE t.key_day IS NOT NULL"
    ):
        try:
            keyed = date.fromisoformat(key_day)
        except (TypeError, ValueError):
            continue
        end = left if left is not None else entered + MAX_OPEN_STAY_S
        day = (datetime.fromtimestamp(entered, UTC) - EXPOSURE_SLACK).date()
        last = (datetime.fromtimestamp(end, UTC) + EXPOSURE_SLACK).date()
        while day <= last:
            found.setdefault(day, set()).add(keyed)
            day += timedelta(days=1)
    return found


def exposure_check(
    db: Db, secret: bytes, case: Case, *, now: float, alert: bool = True
) -> list[ExposureMatch]:
    """Recompute the case's tokens (the device's derivation), find its visits at every
    checkpoint, count who else was there, and queue an alert for each checkpoint it visited."""
    with db.transaction(write=alert) as tx:
        wanted: dict[str, CaseIdentifier] = case_tokens(
            case, secret, slack=EXPOSURE_SLACK, rekeyed=_rekeyed_days(tx)
        )
        hits = _visits_with(tx, list(wanted))
        matches: list[ExposureMatch] = []
        for hit in sorted(hits.values(), key=lambda h: (h[5], h[0])):  # in time order
            visit, cp, agency, door, protocol, entered, left, count = hit
            overlap = _overlapping(tx, hit, now=now)
            matches.append(
                ExposureMatch(visit, cp, agency, door, protocol, entered, left, count, overlap)
            )
        if alert:
            _alert_checkpoints(tx, matches, now=now)
    return matches


def _visits_with(tx: Any, tokens: list[str]) -> dict[str, list[Any]]:
    """Visit UUID → its row (uuid, checkpoint, agency, door, protocol, entered, left) and how
    many of ``tokens`` it carries."""
    hits: dict[str, list[Any]] = {}
    for i in range(0, len(tokens), TOKENS_PER_QUERY):
        part = tokens[i : i + TOKENS_PER_QUERY]
        marks = ", ".join("?" * len(part))
        for row in tx.all(
            "SELECT v.uuid, v.checkpoint_id, v.agency, v.door, v.protocol, v.entered_at,"
            " v.left_at FROM visit_tokens t JOIN visits v ON v.uuid = t.visit_uuid"
            f" WHERE t.token IN ({marks})",
            part,
        ):
            hit = hits.setdefault(row[0], [*row, 0])
            hit[7] += 1
    return hits


def _overlapping(tx: Any, hit: list[Any], *, now: float) -> dict[str, int]:
    """The other entries of each kind at the visit's checkpoint during the visit."""
    v_uuid, cp, _, _, _, entered, left, _ = hit
    end = left if left is not None else min(now, entered + MAX_OPEN_STAY_S)
    overlap = dict.fromkeys(SENT_KINDS, 0)
    # As on the device (VisitLog.overlapping_app_entries): an app stay with no end lasts until
    # now, at most MAX_OPEN_STAY_S; entries without a stay (no app, manual) count if they came
    # in during the visit.
    for kind, n in tx.all(
        "SELECT kind, count(*) FROM visits WHERE checkpoint_id = ? AND uuid <> ?"
        " AND entered_at < ? AND (CASE WHEN kind = 'app' THEN coalesce(left_at,"
        " CASE WHEN entered_at + ? < ? THEN entered_at + ? ELSE ? END)"
        " ELSE entered_at END) >= ? GROUP BY kind",
        (cp, v_uuid, end, MAX_OPEN_STAY_S, now, MAX_OPEN_STAY_S, now, entered),
    ):
        overlap[kind] = int(n)
    return overlap


def _alert_checkpoints(tx: Any, matches: list[ExposureMatch], *, now: float) -> None:
    """One exposure alert per checkpoint visited, listing the case's visits there."""
    by_checkpoint: dict[str, list[ExposureMatch]] = {}
    for m in matches:
        by_checkpoint.setdefault(m.checkpoint_id, []).append(m)
    for cp, visits in by_checkpoint.items():
        details = {
            "visits": [{"entered_at": iso(m.entered_at), "left_at": iso(m.left_at)} for m in visits]
        }
        add_alert(tx, cp, "exposure", details, now)
