"""The resend rule: what a copy of a visit record sent again may change in the stored one.

A unit sends a record again only when it learned more about it (docs/architecture.md §sync):
the stay ended, a rotation added a token, its clock was synchronised and its times corrected
(with the key days of its tokens), or the reply to a batch was lost. So a copy may fill in an
end where none is stored, add tokens (a record's tokens only grow: one copy's tokens contain
the other's), tell a token's key day where none is known, and give a record stored with an
unsynchronised clock its corrected times. A copy older than the stored record (fewer tokens,
no end yet, flagged times under corrected ones) changes nothing. Anything else is not a copy
of the same entry but a conflict: refused with its reason, the stored record unchanged.
Pure functions: ``ingest`` reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from appliance.records import VisitRecord


@dataclass(frozen=True, slots=True)
class Visit:
    """A visit as stored (or as it will be): its record's fields and the unit it belongs to."""

    checkpoint_id: str
    kind: str
    protocol: str | None
    entered_at: float
    left_at: float | None
    clock_synced: bool
    via_sensor: bool
    # Tokens with their key day when one is known: all of a record's; of a stored visit, those
    # the copies compared with it share (read by ``(token, visit)``, the table's key).
    key_days: dict[str, str | None]
    token_count: int  # how many tokens it has in all

    @classmethod
    def of(cls, record: VisitRecord, checkpoint_id: str) -> Visit:
        return cls(
            checkpoint_id=checkpoint_id,
            kind=record.kind,
            protocol=record.protocol,
            entered_at=record.entered_at,
            left_at=record.left_at,
            clock_synced=record.clock_synced,
            via_sensor=record.via_sensor,
            key_days={t: record.key_days.get(t) for t in record.tokens},
            token_count=len(set(record.tokens)),
        )

    @property
    def times(self) -> tuple[float, float | None, bool]:
        return self.entered_at, self.left_at, self.clock_synced


def conflict(stored: Visit, copy: Visit) -> str | None:
    """Why ``copy`` cannot be an earlier or later copy of ``stored``'s entry, or None."""
    if copy.checkpoint_id != stored.checkpoint_id:
        return "this uuid is stored for another checkpoint"
    for name in ("kind", "protocol", "via_sensor"):
        if getattr(copy, name) != getattr(stored, name):
            return f"stored with {name} {getattr(stored, name)!r}, sent {getattr(copy, name)!r}"
    common = stored.key_days.keys() & copy.key_days.keys()
    if len(common) not in (stored.token_count, copy.token_count):
        return "its tokens are neither the stored ones nor a later copy's"
    for token in common:
        day, other = stored.key_days[token], copy.key_days[token]
        if day is not None and other is not None and day != other:
            return f"token {token} is stored with key day {day}, sent {other}"
    if copy.clock_synced != stored.clock_synced:
        return None  # a correction, or a copy from before it: times are compared no further
    if copy.entered_at != stored.entered_at:
        return f"stored with entered_at {stored.entered_at}, sent {copy.entered_at}"
    if None not in (copy.left_at, stored.left_at) and copy.left_at != stored.left_at:
        return f"stored with left_at {stored.left_at}, sent {copy.left_at}"
    return None


def merged(stored: Visit, copy: Visit) -> Visit:
    """``stored`` with what ``copy`` adds (``conflict(stored, copy)`` is None)."""
    key_days = dict(stored.key_days)
    added = len(copy.key_days.keys() - key_days.keys())
    for token, day in copy.key_days.items():
        if key_days.get(token) is None:
            key_days[token] = day
    count = stored.token_count + added
    if copy.clock_synced and not stored.clock_synced:
        # The corrected times replace the flagged ones, never the other way round.
        return replace(
            stored, entered_at=copy.entered_at, left_at=copy.left_at, clock_synced=True,
            key_days=key_days, token_count=count,
        )  # fmt: skip
    left_at = stored.left_at
    if left_at is None and copy.clock_synced == stored.clock_synced:
        left_at = copy.left_at  # the stay's end (a flagged copy's end is on the wrong clock)
    return replace(stored, left_at=left_at, key_days=key_days, token_count=count)
