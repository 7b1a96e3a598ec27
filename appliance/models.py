"""The appliance's own immutable data types, shared by every layer past the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Detection:
    """What a decoder recognised in one advertisement: an app phone, maybe with its identifier.

    ``raw_id`` is the identifier as sent on the air (Bluezone ID, GAEN RPI). It lives in memory
    only and is never written to disk (DESIGN.md §4.3); ``id_scheme`` names the derivation it
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
