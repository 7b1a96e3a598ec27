"""Visit tokens follow docs/protocols.md §4 exactly: the collector recomputes them independently."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from appliance.core.tokens import TokenMaker, day_key, token

SECRET = bytes(range(100, 132))
RAW_ID = bytes.fromhex("130CEA6472130C185D8643DF")


def reference_token(secret: bytes, tag: bytes, raw_id: bytes, day: str) -> str:
    key = hmac.new(secret, b"checkpoint-day:" + day.encode(), hashlib.sha256).digest()
    return hmac.new(key, tag + raw_id, hashlib.sha256).hexdigest()[:32]


def test_token_is_the_documented_construction() -> None:
    when = datetime(2020, 8, 20, 9, 30, tzinfo=UTC)
    expected = reference_token(SECRET, b"bluezone:", RAW_ID, "2020-08-20")
    assert token(SECRET, "bluezone", RAW_ID, when) == expected
    assert len(expected) == 32


def test_token_uses_the_utc_date_not_the_local_one() -> None:
    # 06:30 on 21 August in Hanoi is still 20 August in UTC.
    hanoi = timezone(timedelta(hours=7))
    when = datetime(2020, 8, 21, 6, 30, tzinfo=hanoi)
    assert token(SECRET, "gaen", RAW_ID, when) == reference_token(
        SECRET, b"gaen:", RAW_ID, "2020-08-20"
    )


def test_tokens_differ_by_day_scheme_and_secret() -> None:
    when = datetime(2020, 8, 20, tzinfo=UTC)
    base = token(SECRET, "bluezone", RAW_ID, when)
    assert token(SECRET, "bluezone", RAW_ID, when + timedelta(days=1)) != base
    assert token(SECRET, "gaen", RAW_ID, when) != base
    assert token(bytes(32), "bluezone", RAW_ID, when) != base


def test_token_maker_matches_token_across_midnight() -> None:
    maker = TokenMaker(SECRET)
    start = datetime(2020, 8, 20, 23, 50, tzinfo=UTC)
    for minutes in range(0, 30, 5):
        when = start + timedelta(minutes=minutes)
        assert maker.token("bluezone", RAW_ID, when) == token(SECRET, "bluezone", RAW_ID, when)


def test_short_secret_and_naive_time_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        day_key(bytes(16), date(2020, 8, 20))
    with pytest.raises(ValueError, match="exactly 32 bytes"):  # the key and a newline
        day_key(bytes(32) + b"\n", date(2020, 8, 20))
    with pytest.raises(ValueError, match="timezone-aware"):
        token(SECRET, "bluezone", RAW_ID, datetime(2020, 8, 20))
