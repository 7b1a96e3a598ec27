"""Identifier derivations, pinned by the worked examples of docs/protocols.md §1.5, §2.2."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from appliance.protocols import bluezone_keys, gaen_keys

BASE = bytes(range(32))
TEK = bytes(range(16))


@pytest.mark.parametrize(
    ("slot", "expected"),
    [
        (0, "130CEA6472130C185D8643DF"),
        (1, "893DAE342437130CE5E23837"),
        (95, "0AE9AB99C50104E835045ABF"),
    ],
)
def test_bluezone_day0_examples(slot: int, expected: str) -> None:
    assert bluezone_keys.slot_id(BASE, slot).hex().upper() == expected
    assert bluezone_keys.day_ids(BASE)[slot].hex().upper() == expected


def test_bluezone_day1_daily_key_and_first_id() -> None:
    key = bluezone_keys.daily_key(BASE, 1)
    assert key.hex() == "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    assert bluezone_keys.slot_id(key, 0).hex().upper() == "970E23C0E19DE93F8CC4057B"


def test_bluezone_day0_is_the_base_key_itself() -> None:
    assert bluezone_keys.daily_key(BASE, 0) == BASE


def test_case_ids_hash_forward_across_days() -> None:
    ids = list(bluezone_keys.case_ids(BASE, date(2020, 8, 20), days=2))
    assert len(ids) == 192
    assert ids[96] == (date(2020, 8, 21), 0, bytes.fromhex("970E23C0E19DE93F8CC4057B"))


@pytest.mark.parametrize(
    ("when", "slot"),
    [
        (datetime(2020, 8, 20, 0, 0, tzinfo=UTC), 0),
        (datetime(2020, 8, 20, 0, 14, 59, tzinfo=UTC), 0),
        (datetime(2020, 8, 20, 0, 15, tzinfo=UTC), 1),
        (datetime(2020, 8, 20, 23, 59, 59, tzinfo=UTC), 95),
        # 07:00 in Hanoi is 00:00 UTC: slots are UTC, not local
        (datetime.fromisoformat("2020-08-20T07:00:00+07:00"), 0),
    ],
)
def test_slots_are_utc_quarter_hours(when: datetime, slot: int) -> None:
    assert bluezone_keys.slot_of(when) == slot


def test_slot_boundary_after() -> None:
    t = datetime(2020, 8, 20, 0, 14, 59, tzinfo=UTC).timestamp()
    assert (
        bluezone_keys.slot_boundary_after(t) == datetime(2020, 8, 20, 0, 15, tzinfo=UTC).timestamp()
    )


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33)])
def test_bluezone_key_length_is_checked(bad: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        bluezone_keys.day_ids(bad)


def test_gaen_rpik_example() -> None:
    assert gaen_keys.rpik(TEK).hex() == "4c3615250075e094e42e1b72e538ded2"


def test_gaen_rpi_examples() -> None:
    first, second = gaen_keys.rpis(TEK, 2650032, 2)
    assert first.hex() == "4b0cf5c1f7df9c034746e5d13e84de55"
    assert second.hex() == "8bb413946aadb7085c53e636b24f2892"


def test_gaen_full_period_is_144_distinct_rpis() -> None:
    values = gaen_keys.rpis(TEK, 2650032)
    assert len(values) == 144 and len(set(values)) == 144
    assert values[1] == gaen_keys.rpis(TEK, 2650033, 1)[0]


def test_gaen_interval_numbers() -> None:
    start = gaen_keys.interval_start(2650032)
    assert start == datetime(2020, 5, 21, tzinfo=UTC)
    assert gaen_keys.interval_of(start) == 2650032


def test_hkdf_matches_rfc5869_case_3() -> None:
    # RFC 5869 test case 3 (SHA-256, zero-length salt and info).
    okm = gaen_keys.hkdf_sha256(bytes([0x0B] * 22), b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_gaen_tek_length_is_checked() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        gaen_keys.rpik(bytes(15))
