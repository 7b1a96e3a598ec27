"""Bluezone on iPhone: no ID in the air, it must be read over GATT (``needs_gatt``).

In the foreground the app advertises its 128-bit service UUID; in the background iOS moves the
UUID into Apple's overflow area, where Bluezone's bit is tested with a mask (other apps on the
same phone set other bits). The bit was found empirically, so ``DecodeOptions`` makes it
configurable.
"""

from __future__ import annotations

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement, uuid128
from appliance.protocols.apple import APPLE_COMPANY_ID, overflow_bitmap
from appliance.protocols.registry import DecodeOptions, Decoder

SERVICE_UUID = uuid128("00004E56-73F5-4BC4-A12F-17D1AD07A667")
# GATT: read this characteristic in the service above; exactly 12 bytes, no pairing.
ID_CHARACTERISTIC_UUID = "00004E56-73F5-4BC4-A12F-17D1AD07A689"
ID_LENGTH = 12

_DETECTION = Detection("bluezone-ios", needs_gatt=True, id_scheme="bluezone")


def decode(adv: Advertisement, options: DecodeOptions) -> Detection | None:
    if SERVICE_UUID in adv.uuid128:
        return _DETECTION
    for company, payload in adv.manufacturer:
        if company == APPLE_COMPANY_ID:
            bitmap = overflow_bitmap(payload)
            if bitmap is not None and bitmap[options.ios_overflow_byte] & options.ios_overflow_mask:
                return _DETECTION
    return None


DECODER = Decoder(
    name="bluezone-ios",
    priority=40,
    decode=decode,
    summary="Bluezone iPhone: service 00004E56-…-A667 or Apple overflow bit; ID over GATT",
)
