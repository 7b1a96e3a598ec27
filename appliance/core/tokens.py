"""Visit tokens: what an app visit is stored and synced as instead of the raw identifier.

DESIGN.md §4.3, shared by the device and the collector, which must agree on it exactly:

    day_key = HMAC-SHA256(province_secret, "checkpoint-day:" ‖ YYYY-MM-DD)   (UTC date)
    token   = HMAC-SHA256(day_key, tag ‖ raw_id)[:16], hex, tag = "<scheme>:"

Only a holder of the province secret and a confirmed case's published key can link a token to
a phone; two days' tokens of one phone are unlinkable without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime

SECRET_MIN_LENGTH = 32
TOKEN_BYTES = 16
DAY_KEY_PREFIX = b"checkpoint-day:"


def day_key(secret: bytes, day: date) -> bytes:
    """The key of one UTC day."""
    if len(secret) < SECRET_MIN_LENGTH:
        raise ValueError(f"the province secret must be at least {SECRET_MIN_LENGTH} bytes")
    return hmac.new(secret, DAY_KEY_PREFIX + day.isoformat().encode(), hashlib.sha256).digest()


def token_with_day_key(key: bytes, scheme: str, raw_id: bytes) -> str:
    """The token of ``raw_id`` under an already derived day key (for bulk recomputation)."""
    tag = scheme.encode("ascii") + b":"
    return hmac.new(key, tag + raw_id, hashlib.sha256).digest()[:TOKEN_BYTES].hex()


def token(secret: bytes, scheme: str, raw_id: bytes, when: datetime) -> str:
    """The token of an identifier seen at ``when`` (an aware datetime; its UTC date counts)."""
    if when.tzinfo is None:
        raise ValueError("token time must be timezone-aware")
    return token_with_day_key(day_key(secret, when.astimezone(UTC).date()), scheme, raw_id)


class TokenMaker:
    """Computes tokens, caching the current day key (one HMAC per sighting instead of two)."""

    __slots__ = ("_day", "_key", "_secret")

    def __init__(self, secret: bytes) -> None:
        day_key(secret, date(2020, 1, 1))  # validates the secret
        self._secret = secret
        self._day: date | None = None
        self._key = b""

    def token(self, scheme: str, raw_id: bytes, when: datetime) -> str:
        day = when.astimezone(UTC).date()
        if day != self._day:
            self._key = day_key(self._secret, day)
            self._day = day
        return token_with_day_key(self._key, scheme, raw_id)
