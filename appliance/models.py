"""The appliance's own immutable data types, shared by every layer past the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

# How a visit was recorded: a phone with a tracing app heard at the door, a person with no app
# (the doorway sensor saw someone and no app phone came), a visitor the receptionist typed in,
# and a visitor checking themselves in (to come).
EntryKind = Literal["app", "no_app", "manual", "self"]
# The kinds the visit log holds today and that exports and reports count, in their order.
REPORTED_KINDS: Final[tuple[str, ...]] = ("app", "no_app", "manual")


@dataclass(frozen=True, slots=True)
class Detection:
    """What a decoder recognised in one advertisement: an app phone, maybe with its identifier.

    ``raw_id`` is the identifier as sent on the air (Bluezone ID, GAEN RPI). It lives in memory
    only, never on disk (docs/architecture.md §privacy); ``id_scheme`` names the derivation it
    belongs to and is the tag used for its visit token, so that an iPhone's Bluezone ID read over
    GATT and an Android phone's advertised one yield comparable tokens.
    """

    protocol: str
    raw_id: bytes | None = field(default=None, repr=False)  # never in logs
    needs_gatt: bool = False
    id_scheme: str | None = None
    metadata: bytes | None = None

    @property
    def id_hex(self) -> str | None:
        """The identifier as upper-case hex, as the apps show it, or None."""
        return self.raw_id.hex().upper() if self.raw_id is not None else None


@dataclass(frozen=True, slots=True)
class Sighting:
    """One advertising report as heard: raw AD data (plus scan response), signal, time.

    ``address`` is the advertiser's MAC: memory only, never on disk (docs/architecture.md §privacy).
    ``time`` is UNIX seconds (UTC): the wall clock, or a capture's timestamp on replay.
    """

    time: float
    address: str = field(repr=False)
    rssi: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SensorEvent:
    """Someone came through the door: a PIR or break-beam fired.

    ``direction`` is "in" or "out" with two beams (outer, inner), None with one sensor, which
    cannot tell an entry from an exit.
    """

    time: float
    direction: str | None = None


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """A phone near the door: ``entered``, got a new ``identifier`` (rotation), or ``left``.

    Carries the visit token of the identifier, never the identifier itself: raw IDs stay inside
    the tracker.
    """

    kind: str  # "entered" | "identifier" | "left"
    presence_id: int
    time: float
    protocol: str
    token: str | None = None
    rssi: float = 0.0
