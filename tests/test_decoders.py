"""Each app decoder: what it must recognise, and the look-alikes it must refuse.

A false "app" means a visitor without the app is greeted green and never prompted, so the
negative cases (real-world Apple Continuity, iBeacon, Microsoft CDP… frames) matter as much.
"""

from __future__ import annotations

import pytest

from appliance.protocols import frames
from appliance.protocols.adstructs import parse
from appliance.protocols.registry import Classifier, DecodeOptions

classifier = Classifier()
BLUEZONE_ID = bytes.fromhex("130CEA6472130C185D8643DF")
RPI = bytes.fromhex("4b0cf5c1f7df9c034746e5d13e84de55")


def classify(data: bytes, options: DecodeOptions | None = None) -> tuple[str | None, str | None]:
    detection = (Classifier(options) if options else classifier).classify_bytes(data)
    if detection is None:
        return None, None
    return detection.protocol, detection.id_hex


# --- bluezone (Android v2/v3) -------------------------------------------------------------


def test_bluezone_android_id_is_the_12_manufacturer_bytes() -> None:
    detection = classifier.classify_bytes(frames.bluezone_android(BLUEZONE_ID))
    assert detection is not None
    assert (detection.protocol, detection.raw_id) == ("bluezone", BLUEZONE_ID)
    assert detection.id_hex == "130CEA6472130C185D8643DF"
    assert detection.id_scheme == "bluezone"
    assert not detection.needs_gatt


def test_bluezone_on_air_bytes_as_documented() -> None:
    # docs/protocols.md §1.1: "03 03 56 4E" and manufacturer data "B5 22" + 12-byte ID.
    data = bytes.fromhex("0201060303564E0FFFB522") + BLUEZONE_ID
    assert classify(data) == ("bluezone", BLUEZONE_ID.hex().upper())


def test_bluezone_id_in_the_scan_response_still_counts() -> None:
    adv = frames.flags() + frames.uuid16_list(0x4E56)
    scan_response = frames.manufacturer(0x22B5, BLUEZONE_ID)
    assert classify(adv + scan_response) == ("bluezone", BLUEZONE_ID.hex().upper())


def test_bluezone_service_without_id_is_an_app_phone_without_id() -> None:
    assert classify(frames.flags() + frames.uuid16_list(0x4E56)) == ("bluezone", None)


@pytest.mark.parametrize("length", [0, 5, 11, 13, 20])
def test_company_22b5_with_wrong_length_and_no_service_is_not_an_app(length: int) -> None:
    payload = b"\xff" * length  # not alphanumeric, so not a v1 ID either
    assert classify(frames.flags() + frames.manufacturer(0x22B5, payload)) == (None, None)


def test_12_bytes_under_another_company_is_not_bluezone() -> None:
    assert classify(frames.flags() + frames.manufacturer(0x22B6, BLUEZONE_ID)) == (None, None)


# --- bluezone-legacy (v1) ---------------------------------------------------------------------


def test_legacy_six_character_id() -> None:
    protocol, ident = classify(frames.bluezone_legacy("aB3xY9"))
    assert protocol == "bluezone-legacy"
    assert ident == b"aB3xY9".hex().upper()


@pytest.mark.parametrize(
    "text", [b"ab-123", b"abc 12", b"\x00\x01\x02\x03\x04\x05", b"abcd\xc3\xa9"]
)
def test_legacy_rejects_non_alphanumeric_ids(text: bytes) -> None:
    assert classify(frames.manufacturer(0x22B5, text)) == (None, None)


def test_legacy_service_uuids_mark_a_v1_phone() -> None:
    android = frames.uuid128_list("E20A39F4-73F5-4BC4-A12F-17D1AD07A889")
    ios = frames.uuid128_list("E20A39F4-73F5-4BC4-A12F-17D1AD07A667")
    assert classify(android) == ("bluezone-legacy", None)
    assert classify(ios) == ("bluezone-legacy", None)


# --- bluezone-ios -----------------------------------------------------------------------------


def test_iphone_foreground_service_uuid_needs_gatt() -> None:
    detection = classifier.classify_bytes(frames.bluezone_ios_foreground())
    assert detection is not None
    assert detection.protocol == "bluezone-ios"
    assert detection.needs_gatt and detection.raw_id is None
    assert detection.id_scheme == "bluezone"  # the ID read over GATT is a Bluezone ID


def test_iphone_background_overflow_bit_needs_gatt() -> None:
    assert classify(frames.bluezone_ios_background()) == ("bluezone-ios", None)


def test_overflow_bit_is_tested_with_a_mask_among_other_apps_bits() -> None:
    others = bytes([0x80 | 0x04 | 0x01]) + bytes([0xFF] * 15)
    with_bluezone = frames.bluezone_ios_background(other_bits=others)
    without = frames.apple_overflow(others)
    assert classify(with_bluezone) == ("bluezone-ios", None)
    assert classify(without) == (None, None)


def test_overflow_bit_position_is_configurable() -> None:
    options = DecodeOptions(ios_overflow_byte=3, ios_overflow_mask=0x40)
    moved = frames.bluezone_ios_background(byte=3, mask=0x40)
    assert classify(moved, options) == ("bluezone-ios", None)
    assert classify(moved) == (None, None)
    assert classify(frames.bluezone_ios_background(), options) == (None, None)


def test_overflow_area_of_wrong_length_is_not_an_app() -> None:
    short = frames.manufacturer(0x004C, b"\x01" + bytes([0x08]) + bytes(14))
    long = frames.manufacturer(0x004C, b"\x01" + bytes([0x08]) + bytes(16))
    assert classify(short) == (None, None)
    assert classify(long) == (None, None)


def test_name_bluezone_alone_is_not_enough() -> None:
    assert classify(frames.flags() + frames.local_name("Bluezone")) == (None, None)


# --- bluezone-beacon ----------------------------------------------------------------------------


def test_bluezone_ibeacon_marker() -> None:
    assert classify(frames.bluezone_beacon()) == ("bluezone-beacon", None)


# --- gaen -------------------------------------------------------------------------------------


def test_gaen_rpi_and_metadata() -> None:
    detection = classifier.classify_bytes(frames.gaen(RPI, b"\x01\x02\x03\x04"))
    assert detection is not None
    assert (detection.protocol, detection.raw_id, detection.metadata) == (
        "gaen",
        RPI,
        b"\x01\x02\x03\x04",
    )


@pytest.mark.parametrize("length", [0, 16, 19, 21, 31])
def test_gaen_service_data_must_be_exactly_20_bytes(length: int) -> None:
    data = frames.uuid16_list(0xFD6F) + frames.service_data16(0xFD6F, b"\x11" * length)
    assert classify(data) == (None, None)


def test_gaen_uuid_alone_is_not_a_detection() -> None:
    assert classify(frames.flags() + frames.uuid16_list(0xFD6F)) == (None, None)


def test_20_bytes_of_another_service_is_not_gaen() -> None:
    assert classify(frames.service_data16(0xFD6E, RPI + b"\0\0\0\0")) == (None, None)


# --- bluetrace ---------------------------------------------------------------------------------


def test_bluetrace_is_counted_without_id() -> None:
    detection = classifier.classify_bytes(frames.bluetrace())
    assert detection is not None
    assert (detection.protocol, detection.raw_id, detection.id_scheme) == ("bluetrace", None, None)


# --- Not an app ---------------------------------------------------------------------------------


# Real-world shapes, from public descriptions (furiousMAC/continuity; Apple's iBeacon spec;
# Microsoft's [MS-CDP] beacon; Google's Eddystone and Fast Pair specs).
def _apple(hex_payload: str) -> bytes:
    return frames.flags(0x1A) + frames.manufacturer(0x004C, bytes.fromhex(hex_payload))


NOT_APPS = {
    "apple nearby info": _apple("10050B1C4A9C21"),
    "apple nearby info (iOS 14)": _apple("1009031F0EB4B2C14A7B08"),
    "airpods proximity pairing": _apple("0719010E2022F58F000045F1A2B3C4D5E6F708192A3B4C5D6E7F"),
    "find my (offline finding)": _apple("121910" + "AB" * 22 + "0100"),
    "handoff": _apple("0C0E00A7F1B3C5D7E9F1A3B5C7D91001"),
    "airdrop": _apple("0512" + "00" * 8 + "01A1B2C3D4E5F60700"),
    "airplay target": _apple("09060302C0A8010F"),
    "nearby action (wifi password)": _apple("0F0840080A0B0C0D0E0F"),
    "hey siri": _apple("080A1234567890ABCDEF1122"),
    "tethering source": _apple("0E060001020304FF"),
    "magic switch": _apple("0B03010203"),
    "find my + nearby info": _apple("1005031C4A9C21" + "1202" + "0011"),
    "airlocate ibeacon": frames.ibeacon("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", 1, 2),
    "estimote ibeacon": frames.ibeacon("B9407F30-F5F8-466E-AFF9-25556B57FE6D", 6699, 15437),
    "ibeacon with bluezone major/minor": frames.ibeacon(
        "FDA50693-A4E2-4FB1-AFCF-C6EB07647825", 20, 20
    ),
    "microsoft cdp": frames.microsoft_cdp(),
    "eddystone uid": frames.flags()
    + frames.uuid16_list(0xFEAA)
    + frames.service_data16(0xFEAA, bytes.fromhex("00E800112233445566778899AABB010203040506")),
    "google fast pair": frames.flags()
    + frames.uuid16_list(0xFE2C)
    + frames.service_data16(0xFE2C, bytes.fromhex("00B727")),
    "tile": frames.flags()
    + frames.uuid16_list(0xFEED)
    + frames.service_data16(0xFEED, b"\x02\x00"),
    "fitness band": frames.flags()
    + frames.local_name("Mi Band 4")
    + frames.manufacturer(0x0157, bytes.fromhex("112233445566778899")),
    "heart rate sensor": frames.flags()
    + frames.uuid16_list(0x180D, 0x180F)
    + frames.local_name("HR-Sensor"),
    "samsung": frames.flags(0x18)
    + frames.manufacturer(0x0075, bytes.fromhex("420401806012345678ABCDEF0123456789ABCDEF")),
    "empty": b"",
}


@pytest.mark.parametrize("data", NOT_APPS.values(), ids=NOT_APPS.keys())
def test_real_world_non_app_advertisements(data: bytes) -> None:
    assert not parse(data).malformed  # refused for what it is, not for a broken length
    assert classify(data) == (None, None)


def test_every_continuity_type_is_not_an_app() -> None:
    for kind in range(0x02, 0x20):
        data = frames.apple_continuity((kind, bytes(range(16))))
        assert classify(data) == (None, None), hex(kind)


def test_registry_finds_every_documented_format_in_priority_order() -> None:
    assert classifier.protocols == (
        "gaen",
        "bluezone",
        "bluezone-legacy",
        "bluezone-ios",
        "bluezone-beacon",
        "bluetrace",
    )
