"""Build advertising data: the inverse of the decoders.

The simulator puts these frames on its imaginary air, so that simulation runs through exactly
the same parser and decoders as real Bluetooth; tests and the benchmark build their cases here
too. Frames follow the apps' documented layouts (docs/protocols.md) and public descriptions of Apple
Continuity, iBeacon and Microsoft CDP.
"""

from __future__ import annotations

from appliance.protocols.adstructs import (
    AD_FLAGS,
    AD_MANUFACTURER,
    AD_NAME_COMPLETE,
    AD_SERVICE_DATA16,
    AD_TX_POWER,
    AD_UUID16_COMPLETE,
    AD_UUID128_COMPLETE,
    uuid128,
)
from appliance.protocols.apple import APPLE_COMPANY_ID

LE_GENERAL_DISCOVERABLE = 0x02
BR_EDR_NOT_SUPPORTED = 0x04
DEFAULT_FLAGS = LE_GENERAL_DISCOVERABLE | BR_EDR_NOT_SUPPORTED


def ad(ad_type: int, payload: bytes) -> bytes:
    """One AD structure."""
    if len(payload) > 254:
        raise ValueError("AD structure payload too long")
    return bytes([len(payload) + 1, ad_type]) + payload


def flags(value: int = DEFAULT_FLAGS) -> bytes:
    return ad(AD_FLAGS, bytes([value]))


def uuid16_list(*uuids: int) -> bytes:
    return ad(AD_UUID16_COMPLETE, b"".join(u.to_bytes(2, "little") for u in uuids))


def uuid128_list(*uuids: str) -> bytes:
    return ad(AD_UUID128_COMPLETE, b"".join(uuid128(u)[::-1] for u in uuids))


def manufacturer(company_id: int, payload: bytes) -> bytes:
    return ad(AD_MANUFACTURER, company_id.to_bytes(2, "little") + payload)


def service_data16(uuid: int, payload: bytes) -> bytes:
    return ad(AD_SERVICE_DATA16, uuid.to_bytes(2, "little") + payload)


def local_name(name: str) -> bytes:
    return ad(AD_NAME_COMPLETE, name.encode("utf-8"))


def tx_power(dbm: int) -> bytes:
    return ad(AD_TX_POWER, (dbm & 0xFF).to_bytes(1, "little"))


# --- The apps -----------------------------------------------------------------------------


def bluezone_android(raw_id: bytes) -> bytes:
    """Android Bluezone v2/v3: flags, 16-bit UUID 0x4E56, company 0x22B5 with the 12-byte ID."""
    return flags() + uuid16_list(0x4E56) + manufacturer(0x22B5, raw_id)


def bluezone_legacy(text_id: str) -> bytes:
    """Bluezone v1: the 6-character ASCII ID in company 0x22B5 data."""
    return flags() + manufacturer(0x22B5, text_id.encode("ascii"))


def bluezone_ios_foreground(with_name: bool = True) -> bytes:
    """iPhone app in the foreground: 128-bit service UUID; the name in the scan response."""
    data = flags() + uuid128_list("00004E56-73F5-4BC4-A12F-17D1AD07A667")
    return data + local_name("Bluezone") if with_name else data


def apple_overflow(bitmap: bytes) -> bytes:
    """iPhone in the background: Apple's overflow area (type 0x01 and a 16-byte bitmap)."""
    if len(bitmap) != 16:
        raise ValueError("the overflow bitmap is 16 bytes")
    return flags(0x1A) + manufacturer(APPLE_COMPANY_ID, b"\x01" + bitmap)


def bluezone_ios_background(
    byte: int = 0, mask: int = 0x08, other_bits: bytes = bytes(16)
) -> bytes:
    bitmap = bytearray(other_bits)
    bitmap[byte] |= mask
    return apple_overflow(bytes(bitmap))


def ibeacon_payload(
    proximity_uuid: str, major: int, minor: int, measured_power: int = -59
) -> bytes:
    """Apple manufacturer data (without the company ID) of an iBeacon."""
    return (
        b"\x02\x15"
        + uuid128(proximity_uuid)
        + major.to_bytes(2, "big")
        + minor.to_bytes(2, "big")
        + (measured_power & 0xFF).to_bytes(1, "big")
    )


def ibeacon(proximity_uuid: str, major: int, minor: int, measured_power: int = -59) -> bytes:
    payload = ibeacon_payload(proximity_uuid, major, minor, measured_power)
    return flags(0x06) + manufacturer(APPLE_COMPANY_ID, payload)


def bluezone_beacon() -> bytes:
    """The iBeacon that Android Bluezone ≥ 3.0.7 sends beside its own advertisement."""
    return ibeacon("C7AFEF7B-1788-4F4A-A87D-691D53BF21C4", 20, 20)


def gaen(rpi: bytes, aem: bytes = b"\x40\x12\x34\x56") -> bytes:
    """Exposure Notification: flags, UUID list 0xFD6F, service data RPI ‖ AEM."""
    return flags(0x1A) + uuid16_list(0xFD6F) + service_data16(0xFD6F, rpi + aem)


def bluetrace() -> bytes:
    return flags() + uuid128_list("B82AB3FC-1595-4F6A-80F0-FE094CC218F9")


# --- Things that are not apps ---------------------------------------------------------------


def apple_continuity(*messages: tuple[int, bytes]) -> bytes:
    """Apple Continuity: TLV messages (type, length, data) in company 0x004C data."""
    payload = b"".join(bytes([kind, len(data)]) + data for kind, data in messages)
    return flags(0x1A) + manufacturer(APPLE_COMPANY_ID, payload)


def apple_nearby_info(status: int = 0x1B, action: bytes = b"\x1e\x5e\x3a\x8e\x28") -> bytes:
    return apple_continuity((0x10, bytes([status]) + action))


def microsoft_cdp(salt_and_hash: bytes = bytes(range(19))) -> bytes:
    """Microsoft Connected Devices Platform beacon (company 0x0006, scenario 0x01)."""
    return manufacturer(0x0006, b"\x01\x09\x20\x02" + salt_and_hash)
