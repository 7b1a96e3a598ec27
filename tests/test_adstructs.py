"""The AD structure parser: never trusts a length byte, keeps everything it can."""

from __future__ import annotations

import pytest

from appliance.protocols import frames
from appliance.protocols.adstructs import parse, parse_hex, uuid128


def test_parses_every_common_structure_and_scan_response_together() -> None:
    adv_data = frames.flags(0x06) + frames.uuid16_list(0x4E56, 0x180F) + frames.tx_power(-12)
    scan_response = frames.local_name("Bluezone") + frames.manufacturer(0x22B5, b"x" * 12)
    adv = parse(adv_data + scan_response)
    assert adv.flags == 0x06
    assert adv.uuid16 == (0x4E56, 0x180F)
    assert adv.tx_power == -12
    assert adv.local_name == "Bluezone"
    assert adv.manufacturer == ((0x22B5, b"x" * 12),)
    assert not adv.malformed


def test_length_running_past_the_end_stops_and_marks_malformed() -> None:
    good = frames.uuid16_list(0xFD6F)
    adv = parse(good + bytes([0x1F, 0xFF, 0x4C, 0x00]))
    assert adv.uuid16 == (0xFD6F,)
    assert adv.manufacturer == ()
    assert adv.malformed


def test_zero_padding_between_advertisement_and_scan_response_is_skipped() -> None:
    padded = frames.flags() + bytes(28)
    adv = parse(padded + frames.local_name("Phone"))
    assert adv.local_name == "Phone"
    assert not adv.malformed


@pytest.mark.parametrize(
    "data",
    [
        bytes([0x02, 0xFF, 0x4C]),  # manufacturer data without a full company ID
        bytes([0x02, 0x16, 0x6F]),  # service data without a full UUID
        bytes([0x04, 0x03, 0x6F, 0xFD, 0x01]),  # odd-length 16-bit UUID list
        bytes([0x03, 0x0A, 0x01, 0x02]),  # TX power of two bytes
        bytes([0x05, 0x07, 1, 2, 3, 4]),  # truncated 128-bit UUID list
    ],
)
def test_structures_too_short_for_their_type_are_flagged_not_fatal(data: bytes) -> None:
    adv = parse(data + frames.local_name("after"))
    assert adv.malformed
    assert adv.local_name == "after"


def test_128_bit_uuids_are_reversed_from_air_order() -> None:
    adv = parse(frames.uuid128_list("B82AB3FC-1595-4F6A-80F0-FE094CC218F9"))
    assert adv.uuid128 == (uuid128("B82AB3FC-1595-4F6A-80F0-FE094CC218F9"),)


def test_base_uuid_forms_become_16_bit() -> None:
    as128 = frames.uuid128_list("0000FD6F-0000-1000-8000-00805F9B34FB")
    as32 = bytes([0x05, 0x05, 0x6F, 0xFD, 0x00, 0x00])
    assert parse(as128).uuid16 == (0xFD6F,)
    assert parse(as32).uuid16 == (0xFD6F,)
    assert parse(as128).uuid128 == ()


def test_service_data_128_on_base_uuid_becomes_16_bit_service_data() -> None:
    body = uuid128("0000FD6F-0000-1000-8000-00805F9B34FB")[::-1] + b"p" * 20
    adv = parse(bytes([len(body) + 1, 0x21]) + body)
    assert adv.service_data(0xFD6F) == b"p" * 20


def test_repeated_manufacturer_structures_are_all_kept() -> None:
    adv = parse(frames.manufacturer(0x004C, b"\x10\x00") + frames.manufacturer(0x22B5, b"abc"))
    assert [company for company, _ in adv.manufacturer] == [0x004C, 0x22B5]
    assert adv.manufacturer_data(0x22B5) == b"abc"
    assert adv.manufacturer_data(0x0006) is None


def test_invalid_utf8_name_is_replaced_not_raised() -> None:
    adv = parse(bytes([0x03, 0x09, 0xFF, 0xFE]))
    assert adv.local_name == "\ufffd\ufffd"


@pytest.mark.parametrize(
    "text",
    ["0303564E", "03 03 56 4e", "03:03:56:4E", "0x0303564E", " 03-03-56-4E \n"],
)
def test_hex_may_be_typed_with_separators(text: str) -> None:
    assert parse_hex(text) == bytes.fromhex("0303564E")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("", "empty"), ("030", "odd number"), ("03zz", "not hex: 'z'"), ("  ", "empty")],
)
def test_bad_hex_says_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_hex(text)
