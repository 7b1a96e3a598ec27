"""Bluezone for Android, versions 2 and 3: service 0x4E56 and a 12-byte ID in company 0x22B5 data.

The ID rotates every UTC quarter-hour (see ``appliance.protocols.bluezone_keys``). A report with
the 0x4E56 service but no valid ID (the manufacturer data lost, or in a scan response we did not
get) is still a Bluezone phone, without an identifier.
"""

from __future__ import annotations

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement
from appliance.protocols.registry import DecodeOptions, Decoder

SERVICE_UUID16 = 0x4E56
COMPANY_ID = 0x22B5
ID_LENGTH = 12
ID_SCHEME = "bluezone"

_WITHOUT_ID = Detection("bluezone")


def decode(adv: Advertisement, options: DecodeOptions) -> Detection | None:
    for company, payload in adv.manufacturer:
        if company == COMPANY_ID and len(payload) == ID_LENGTH:
            return Detection("bluezone", bytes(payload), id_scheme=ID_SCHEME)
    if SERVICE_UUID16 in adv.uuid16:
        return _WITHOUT_ID
    return None


DECODER = Decoder(
    name="bluezone",
    priority=20,
    decode=decode,
    summary="Bluezone Android v2/v3: service 0x4E56, 12-byte ID in company 0x22B5 data",
)
