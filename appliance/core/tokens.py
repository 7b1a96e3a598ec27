"""Visit tokens: what an app visit is stored and synced as instead of the raw identifier.

docs/protocols.md §4, shared by the device and the collector, which must agree on it exactly:

    day_key = HMAC-SHA256(province_secret, "checkpoint-day:" ‖ YYYY-MM-DD)   (UTC date)
    token   = HMAC-SHA256(day_key, tag ‖ raw_id)[:16], hex, tag = "<scheme>:"

Only a holder of the province secret and a confirmed case's published key can link a token to
a phone; two days' tokens of one phone are unlinkable without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime

SECRET_LENGTH = 32  # the province secret: exactly this many random bytes, shared with the collector
TOKEN_BYTES = 16
DAY_KEY_PREFIX = b"checkpoint-day:"


def day_key(secret: bytes, day: date) -> bytes:
    """The key of one UTC day."""
    if len(secret) != SECRET_LENGTH:
        # A longer one would make other tokens than the collector's copy, never matching.
        raise ValueError(f"the province secret must be exactly {SECRET_LENGTH} bytes")
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


KEY_DAYS_REMEMBERED = 16_384  # tokens whose key day is kept: far more than wait to be recorded


class TokenMaker:
    """Computes tokens, caching the current day key (one HMAC per sighting instead of two).

    It remembers which day's key made each recent token (a date, never the identifier): the
    visit log keeps it if the clock moved between making and recording (docs/architecture.md §time).
    """

    __slots__ = ("_day", "_key", "_key_days", "_secret")

    def __init__(self, secret: bytes) -> None:
        day_key(secret, date(2020, 1, 1))  # validates the secret
        self._secret = secret
        self._day: date | None = None
        self._key = b""
        self._key_days: dict[str, date] = {}

    def token(self, scheme: str, raw_id: bytes, when: datetime) -> str:
        day = when.astimezone(UTC).date()
        if day != self._day:
            self._key = day_key(self._secret, day)
            self._day = day
        made = token_with_day_key(self._key, scheme, raw_id)
        if len(self._key_days) >= KEY_DAYS_REMEMBERED:
            del self._key_days[next(iter(self._key_days))]  # the oldest
        self._key_days[made] = day
        return made

    def key_day(self, token: str) -> date | None:
        """The UTC day whose key made ``token``, if it was made recently."""
        return self._key_days.get(token)
