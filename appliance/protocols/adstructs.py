"""Parse BLE advertising data (a list of length-type-value AD structures) without trusting it.

The parser never raises: a length byte that runs past the end stops parsing and marks the
advertisement ``malformed``; a structure too short for its type is skipped and marked too. The
advertisement and its scan response may be passed concatenated. This is the decoding hot path
(hundreds of thousands of reports a second), so it is written as one flat loop.
"""

from __future__ import annotations

import uuid

# AD types (Bluetooth Assigned Numbers, "Common Data Types").
AD_FLAGS = 0x01
AD_UUID16_INCOMPLETE = 0x02
AD_UUID16_COMPLETE = 0x03
AD_UUID32_INCOMPLETE = 0x04
AD_UUID32_COMPLETE = 0x05
AD_UUID128_INCOMPLETE = 0x06
AD_UUID128_COMPLETE = 0x07
AD_NAME_SHORT = 0x08
AD_NAME_COMPLETE = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA16 = 0x16
AD_SERVICE_DATA32 = 0x20
AD_SERVICE_DATA128 = 0x21
AD_MANUFACTURER = 0xFF

# The Bluetooth Base UUID 0000xxxx-0000-1000-8000-00805F9B34FB, big-endian bytes.
_BASE_UUID_TAIL = bytes.fromhex("00001000800000805f9b34fb")


def uuid128(text: str) -> bytes:
    """A UUID string as the 16 big-endian bytes this module compares against."""
    return uuid.UUID(text).bytes


def uuid_text(value: bytes) -> str:
    """16 big-endian bytes as the canonical upper-case UUID string."""
    return str(uuid.UUID(bytes=value)).upper()


def short_uuid(value: bytes) -> int | None:
    """The 16-bit form of a 128-bit UUID on the Bluetooth base, or None."""
    if value[4:] == _BASE_UUID_TAIL and value[:2] == b"\x00\x00":
        return value[2] << 8 | value[3]
    return None


def _from32(value: int) -> bytes:
    return value.to_bytes(4, "big") + _BASE_UUID_TAIL


class Advertisement:
    """The AD structures of one report (advertisement plus scan response), by kind.

    Multi-byte fields are converted from the air's little-endian order: 16-bit values are ints,
    128-bit UUIDs are 16 big-endian bytes (``uuid128("…")`` makes a constant to compare with).
    Repeated structures are all kept, in order.
    """

    __slots__ = (
        "flags",
        "local_name",
        "malformed",
        "manufacturer",
        "service_data16",
        "service_data128",
        "tx_power",
        "uuid16",
        "uuid128",
    )

    def __init__(
        self,
        *,
        uuid16: tuple[int, ...] = (),
        uuid128: tuple[bytes, ...] = (),
        manufacturer: tuple[tuple[int, bytes], ...] = (),
        service_data16: tuple[tuple[int, bytes], ...] = (),
        service_data128: tuple[tuple[bytes, bytes], ...] = (),
        local_name: str | None = None,
        tx_power: int | None = None,
        flags: int | None = None,
        malformed: bool = False,
    ) -> None:
        self.uuid16 = uuid16
        self.uuid128 = uuid128
        self.manufacturer = manufacturer
        self.service_data16 = service_data16
        self.service_data128 = service_data128
        self.local_name = local_name
        self.tx_power = tx_power
        self.flags = flags
        self.malformed = malformed

    def manufacturer_data(self, company_id: int) -> bytes | None:
        """The first manufacturer-specific payload of ``company_id`` (without the ID), or None."""
        for company, payload in self.manufacturer:
            if company == company_id:
                return payload
        return None

    def service_data(self, uuid: int) -> bytes | None:
        """The first service data payload for a 16-bit service UUID, or None."""
        for key, payload in self.service_data16:
            if key == uuid:
                return payload
        return None

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
            if getattr(self, name) not in ((), None, False)
        )
        return f"Advertisement({fields})"


def parse(data: bytes) -> Advertisement:
    """Split advertising data into AD structures; never raises on any byte string."""
    uuid16: list[int] = []
    uuid128s: list[bytes] = []
    manufacturer: list[tuple[int, bytes]] = []
    service_data16: list[tuple[int, bytes]] = []
    service_data128: list[tuple[bytes, bytes]] = []
    local_name: str | None = None
    tx_power: int | None = None
    flags: int | None = None
    malformed = False

    n = len(data)
    i = 0
    while i < n:
        length = data[i]
        if length == 0:  # early termination / padding; a scan response may still follow
            i += 1
            continue
        end = i + 1 + length
        if end > n:
            malformed = True
            break
        ad_type = data[i + 1]
        start = i + 2
        if ad_type == AD_MANUFACTURER:
            if length >= 3:
                manufacturer.append((data[start] | data[start + 1] << 8, data[start + 2 : end]))
            else:
                malformed = True
        elif ad_type in (AD_UUID16_COMPLETE, AD_UUID16_INCOMPLETE):
            if (length - 1) & 1:
                malformed = True
            for j in range(start, end - 1, 2):
                uuid16.append(data[j] | data[j + 1] << 8)
        elif ad_type == AD_SERVICE_DATA16:
            if length >= 3:
                service_data16.append((data[start] | data[start + 1] << 8, data[start + 2 : end]))
            else:
                malformed = True
        elif ad_type in (AD_UUID128_COMPLETE, AD_UUID128_INCOMPLETE):
            if (length - 1) % 16:
                malformed = True
            for j in range(start, end - 15, 16):
                value = data[j : j + 16][::-1]
                short = short_uuid(value)
                if short is None:
                    uuid128s.append(value)
                else:
                    uuid16.append(short)
        elif ad_type == AD_NAME_COMPLETE or (ad_type == AD_NAME_SHORT and local_name is None):
            local_name = data[start:end].decode("utf-8", "replace")
        elif ad_type == AD_TX_POWER:
            if length == 2:
                tx_power = data[start] - 256 if data[start] > 127 else data[start]
            else:
                malformed = True
        elif ad_type == AD_FLAGS:
            if length >= 2:
                flags = data[start]
        elif ad_type == AD_SERVICE_DATA128:
            if length >= 17:
                value = data[start : start + 16][::-1]
                short = short_uuid(value)
                if short is None:
                    service_data128.append((value, data[start + 16 : end]))
                else:
                    service_data16.append((short, data[start + 16 : end]))
            else:
                malformed = True
        elif ad_type in (AD_UUID32_COMPLETE, AD_UUID32_INCOMPLETE):
            if (length - 1) & 3:
                malformed = True
            for j in range(start, end - 3, 4):
                number = int.from_bytes(data[j : j + 4], "little")
                if number <= 0xFFFF:
                    uuid16.append(number)
                else:
                    uuid128s.append(_from32(number))
        elif ad_type == AD_SERVICE_DATA32:
            if length >= 5:
                number = int.from_bytes(data[start : start + 4], "little")
                if number <= 0xFFFF:
                    service_data16.append((number, data[start + 4 : end]))
                else:
                    service_data128.append((_from32(number), data[start + 4 : end]))
            else:
                malformed = True
        i = end

    adv = _new(Advertisement)
    adv.uuid16 = tuple(uuid16) if uuid16 else ()
    adv.uuid128 = tuple(uuid128s) if uuid128s else ()
    adv.manufacturer = tuple(manufacturer) if manufacturer else ()
    adv.service_data16 = tuple(service_data16) if service_data16 else ()
    adv.service_data128 = tuple(service_data128) if service_data128 else ()
    adv.local_name = local_name
    adv.tx_power = tx_power
    adv.flags = flags
    adv.malformed = malformed
    return adv


_new = object.__new__  # parse() fills the slots directly: keyword __init__ costs ~15% here


def parse_hex(text: str) -> bytes:
    """Advertising data typed by a person: hex with optional spaces, colons, dashes or 0x.

    Raises ValueError with a short reason on anything else.
    """
    cleaned = text.strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    for sep in (" ", ":", "-", "\t", "\n"):
        cleaned = cleaned.replace(sep, "")
    if not cleaned:
        raise ValueError("empty")
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)})")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next(ch for ch in cleaned if ch not in "0123456789abcdefABCDEF")
        raise ValueError(f"not hex: {bad!r}") from None
