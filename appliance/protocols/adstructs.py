"""Parse BLE advertising data (a list of length-type-value AD structures) without trusting it.

The parser never raises: a length byte that runs past the end stops parsing and marks the
advertisement ``malformed``; a structure too short for its type is skipped and marked too. The
advertisement and its scan response may be passed concatenated. This is the decoding hot path
(hundreds of thousands of reports a second): one flat loop over the structures, and a table
from AD type to a small handler that reads that type's payload.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(slots=True, kw_only=True, eq=False, repr=False)
class Advertisement:
    """The AD structures of one report (advertisement plus scan response), by kind.

    Multi-byte fields are converted from the air's little-endian order: 16-bit values are ints,
    128-bit UUIDs are 16 big-endian bytes (``uuid128("…")`` makes a constant to compare with).
    Repeated structures are all kept, in order. Instances compare by identity (``eq=False``),
    so they stay hashable.
    """

    # In alphabetical order, which is also the order __repr__ shows them in.
    flags: int | None = None
    local_name: str | None = None
    malformed: bool = False
    manufacturer: tuple[tuple[int, bytes], ...] = ()
    service_data16: tuple[tuple[int, bytes], ...] = ()
    service_data128: tuple[tuple[bytes, bytes], ...] = ()
    tx_power: int | None = None
    uuid16: tuple[int, ...] = ()
    uuid128: tuple[bytes, ...] = ()

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


_new = object.__new__  # parse() fills the slots directly: the keyword __init__ costs ~15% here

# A handler reads one structure's payload, data[start:end] (the type byte already read), into
# the advertisement being built, and says whether the payload was well formed for its type. It
# must not raise: `end` is never past the data, but the payload may be shorter than its type
# needs, and is checked first. Fields grow by tuple concatenation: a report holds a handful of
# structures (62 bytes with its scan response, 1650 with extended advertising), and filling lists
# to convert at the end measured slower.
_Handler = Callable[[Advertisement, bytes, int, int], bool]


def _manufacturer(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    if end - start < 2:  # no room for the company ID
        return False
    adv.manufacturer += ((data[start] | data[start + 1] << 8, data[start + 2 : end]),)
    return True


def _uuid16_list(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    for j in range(start, end - 1, 2):
        adv.uuid16 += (data[j] | data[j + 1] << 8,)
    return not (end - start) & 1  # a trailing odd byte is dropped


def _uuid32_list(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    for j in range(start, end - 3, 4):
        number = int.from_bytes(data[j : j + 4], "little")
        if number <= 0xFFFF:
            adv.uuid16 += (number,)
        else:
            adv.uuid128 += (_from32(number),)
    return not (end - start) & 3


def _uuid128_list(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    for j in range(start, end - 15, 16):
        value = data[j : j + 16][::-1]
        short = short_uuid(value)
        if short is None:
            adv.uuid128 += (value,)
        else:
            adv.uuid16 += (short,)
    return not (end - start) % 16


def _service_data16(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    if end - start < 2:
        return False
    adv.service_data16 += ((data[start] | data[start + 1] << 8, data[start + 2 : end]),)
    return True


def _service_data32(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    if end - start < 4:
        return False
    number = int.from_bytes(data[start : start + 4], "little")
    if number <= 0xFFFF:
        adv.service_data16 += ((number, data[start + 4 : end]),)
    else:
        adv.service_data128 += ((_from32(number), data[start + 4 : end]),)
    return True


def _service_data128(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    if end - start < 16:
        return False
    value = data[start : start + 16][::-1]
    short = short_uuid(value)
    if short is None:
        adv.service_data128 += ((value, data[start + 16 : end]),)
    else:
        adv.service_data16 += ((short, data[start + 16 : end]),)
    return True


def _name_complete(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    adv.local_name = data[start:end].decode("utf-8", "replace")
    return True


def _name_short(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    if adv.local_name is None:  # a complete name, or an earlier short one, wins
        adv.local_name = data[start:end].decode("utf-8", "replace")
    return True


def _tx_power(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    if end - start != 1:
        return False
    adv.tx_power = data[start] - 256 if data[start] > 127 else data[start]
    return True


def _flags(adv: Advertisement, data: bytes, start: int, end: int) -> bool:
    # An empty flags structure is odd but harmless: ignored, not malformed.
    if end > start:
        adv.flags = data[start]
    return True


# AD types without a handler (appearance, advertising interval, ...) are skipped silently.
_HANDLERS: dict[int, _Handler] = {
    AD_FLAGS: _flags,
    AD_UUID16_INCOMPLETE: _uuid16_list,
    AD_UUID16_COMPLETE: _uuid16_list,
    AD_UUID32_INCOMPLETE: _uuid32_list,
    AD_UUID32_COMPLETE: _uuid32_list,
    AD_UUID128_INCOMPLETE: _uuid128_list,
    AD_UUID128_COMPLETE: _uuid128_list,
    AD_NAME_SHORT: _name_short,
    AD_NAME_COMPLETE: _name_complete,
    AD_TX_POWER: _tx_power,
    AD_SERVICE_DATA16: _service_data16,
    AD_SERVICE_DATA32: _service_data32,
    AD_SERVICE_DATA128: _service_data128,
    AD_MANUFACTURER: _manufacturer,
}


def parse(data: bytes) -> Advertisement:
    """Split advertising data into AD structures; never raises on any byte string."""
    adv = _new(Advertisement)
    adv.flags = adv.local_name = adv.tx_power = None
    adv.malformed = False
    adv.manufacturer = adv.service_data16 = adv.service_data128 = adv.uuid16 = adv.uuid128 = ()
    handlers = _HANDLERS
    n = len(data)
    i = 0
    while i < n:
        length = data[i]
        if length == 0:  # early termination / padding; a scan response may still follow
            i += 1
            continue
        end = i + 1 + length
        if end > n:
            adv.malformed = True
            break
        handler = handlers.get(data[i + 1])
        if handler is not None and not handler(adv, data, i + 2, end):
            adv.malformed = True
        i = end
    return adv


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
