"""Apple's manufacturer data (company 0x004C): iBeacon, the overflow area, Continuity types.

Shared by the Bluezone decoders (which must recognise the iPhone overflow bit and Bluezone's
iBeacon) and by the "what is this, if not an app" description.
"""

from __future__ import annotations

APPLE_COMPANY_ID = 0x004C

IBEACON_TYPE = 0x02
IBEACON_LENGTH = 0x15  # 16-byte UUID + major + minor + measured power
OVERFLOW_TYPE = 0x01
OVERFLOW_BITMAP_LENGTH = 16

# Continuity message types, from public reverse engineering (furiousMAC/continuity, Celosia &
# Cunche 2020). None of them is a contact-tracing app.
CONTINUITY_TYPES = {
    0x03: "AirPrint",
    0x05: "AirDrop",
    0x06: "HomeKit",
    0x07: "Proximity Pairing (AirPods)",
    0x08: "Hey Siri",
    0x09: "AirPlay Target",
    0x0A: "AirPlay Source",
    0x0B: "Magic Switch",
    0x0C: "Handoff",
    0x0D: "Tethering Target",
    0x0E: "Tethering Source",
    0x0F: "Nearby Action",
    0x10: "Nearby Info",
    0x12: "Find My",
    0x13: "Find My (separated)",
    0x16: "Nearby Action (iOS 16)",
}


def ibeacon(payload: bytes) -> tuple[bytes, int, int] | None:
    """(proximity UUID as big-endian bytes, major, minor) if Apple payload is an iBeacon."""
    if len(payload) >= 23 and payload[0] == IBEACON_TYPE and payload[1] == IBEACON_LENGTH:
        return payload[2:18], payload[18] << 8 | payload[19], payload[20] << 8 | payload[21]
    return None


def overflow_bitmap(payload: bytes) -> bytes | None:
    """The 16-byte service-UUID bitmap if the Apple payload is an iOS overflow area."""
    if len(payload) == 1 + OVERFLOW_BITMAP_LENGTH and payload[0] == OVERFLOW_TYPE:
        return payload[1:]
    return None


def continuity_types(payload: bytes) -> list[int]:
    """The type bytes of the Continuity TLVs in an Apple payload (stops at a bad length)."""
    types: list[int] = []
    i = 0
    while i + 1 < len(payload):
        kind, length = payload[i], payload[i + 1]
        types.append(kind)
        i += 2 + length
    return types
