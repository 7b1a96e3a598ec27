"""How Bluezone (v2/v3) derives its rotating IDs, exactly as the app does (docs/protocols.md §1.5).

base key --SHA-256 n times--> daily key of day n --SHA-256(key ‖ "bluzonesubkey")--> SK0,
SK(i+1) = SHA-256(SK(i)); the ID for 15-minute UTC slot i is 12 bytes picked from SK(i).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

KEY_LENGTH = 32
ID_LENGTH = 12
SLOT_MINUTES = 15
SLOT_SECONDS = SLOT_MINUTES * 60  # IDs rotate at every UTC quarter-hour
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES  # 96 (version 2.0.0 used 144 ten-minute slots)
SUBKEY_SALT = b"bluzonesubkey"  # spelled so in the app
ID_OFFSETS = (0, 4, 8, 12, 16, 18, 20, 22, 24, 26, 28, 30)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a Bluezone key is {KEY_LENGTH} bytes, got {len(key)}")


def daily_key(base_key: bytes, days_after: int) -> bytes:
    """The daily key ``days_after`` UTC days after the base key's day (0 = the base key)."""
    _check_key(base_key)
    if days_after < 0:
        raise ValueError("days_after must not be negative")
    key = base_key
    for _ in range(days_after):
        key = hashlib.sha256(key).digest()
    return key


def next_daily_key(key: bytes) -> bytes:
    """The following UTC day's daily key."""
    _check_key(key)
    return hashlib.sha256(key).digest()


def _pick(subkey: bytes) -> bytes:
    return bytes(subkey[offset] for offset in ID_OFFSETS)


def day_ids(key: bytes, slots: int = SLOTS_PER_DAY) -> list[bytes]:
    """The IDs of every slot of the day whose daily key is ``key``, slot 0 first."""
    _check_key(key)
    subkey = hashlib.sha256(key + SUBKEY_SALT).digest()
    ids = [_pick(subkey)]
    for _ in range(slots - 1):
        subkey = hashlib.sha256(subkey).digest()
        ids.append(_pick(subkey))
    return ids


def slot_id(key: bytes, slot: int) -> bytes:
    """The ID for one slot of the day whose daily key is ``key``."""
    if not 0 <= slot < SLOTS_PER_DAY:
        raise ValueError(f"slot must be 0..{SLOTS_PER_DAY - 1}, got {slot}")
    return day_ids(key, slot + 1)[slot]


def slot_of(when: datetime) -> int:
    """The UTC quarter-hour slot of an aware datetime."""
    when = when.astimezone(UTC)
    return (when.hour * 60 + when.minute) // SLOT_MINUTES


def slot_start(day: date, slot: int) -> datetime:
    """The UTC start of a slot."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        minutes=slot * SLOT_MINUTES
    )


def slot_boundary_after(unix_seconds: float) -> float:
    """The next UTC quarter-hour boundary strictly after ``unix_seconds``."""
    return (unix_seconds // SLOT_SECONDS + 1) * SLOT_SECONDS


def case_ids(key: bytes, first_day: date, days: int = 1) -> Iterator[tuple[date, int, bytes]]:
    """(UTC day, slot, ID) for ``days`` days from ``first_day``, whose daily key is ``key``.

    Later days are hashed forward from ``key`` as the app does.
    """
    _check_key(key)
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for slot, value in enumerate(day_ids(key)):
            yield day, slot, value
        key = next_daily_key(key)


def id_at(base_key: bytes, base_day: date, when: datetime) -> bytes:
    """The ID a Bluezone phone (or the checkpoint's beacon) whose base key was made on
    ``base_day`` sends at ``when``: daily key of that UTC day, then the slot's sub-key."""
    when = when.astimezone(UTC)
    days = (when.date() - base_day).days
    if days < 0:
        raise ValueError(f"{when.date()} is before the key's day {base_day}")
    return slot_id(daily_key(base_key, days), slot_of(when))
