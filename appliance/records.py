"""The visit record as it travels from a door unit to the collector: one definition for the
device's outbox, which builds it, and the collector, which validates and stores it.

A record carries only what the privacy model allows to leave the device: an app visit's tokens
(HMACs, never an identifier), times, and how the entry was recorded. A manual entry's details
(names, phone numbers) are never part of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from appliance.models import REPORTED_KINDS

# The kinds a unit sends; the collector accepts exactly these.
SENT_KINDS: Final[tuple[str, ...]] = REPORTED_KINDS
# A batch of records per request, at most (the collector refuses more).
MAX_RECORDS_PER_BATCH: Final = 5000
# Tokens (and key days) per record, at most: a desk phone shows ~100 identifiers a day, and a
# month of them still fits.
MAX_TOKENS_PER_RECORD: Final = 5000
# A record's UUID as units write it (str(uuid4()): lower-case, hyphenated); the collector refuses
# any other spelling, so a device must never take one in.
UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# 2100-01-01 UTC: a timestamp beyond it is a bug, not a visit.
LATEST_TIMESTAMP: Final = 4102444800.0


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """One entry at the door, as sent. ``key_days`` names, for tokens made before the unit's
    clock was synchronised, the UTC day whose key made them when that is not the day of their
    corrected time."""

    uuid: str
    kind: str
    entered_at: float
    clock_synced: bool
    left_at: float | None = None
    via_sensor: bool = False
    protocol: str | None = None  # app entries only
    tokens: tuple[str, ...] = ()  # app entries only, first seen first
    key_days: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The JSON object sent: optional fields only when they say something, so a record
        without them reads as older units send it."""
        out: dict[str, Any] = {
            "uuid": self.uuid,
            "kind": self.kind,
            "entered_at": self.entered_at,
            "clock_synced": self.clock_synced,
        }
        if self.kind == "app":
            out["protocol"] = self.protocol
            out["tokens"] = list(self.tokens)
            if self.key_days:
                out["key_days"] = dict(self.key_days)
        if self.left_at is not None:
            out["left_at"] = self.left_at
        if self.via_sensor:
            out["via_sensor"] = True
        return out


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A record waiting to be sent, with the revision its acknowledgement must match."""

    uuid: str
    revision: int
    payload: dict[str, Any]  # exactly what is sent
