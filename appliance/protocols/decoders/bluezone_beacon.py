"""The plain iBeacon that Android Bluezone 3.0.7 and later also sends: "a phone with Bluezone".

It carries no ID. Any other iBeacon is not an app.
"""

from __future__ import annotations

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement, uuid128
from appliance.protocols.apple import APPLE_COMPANY_ID, ibeacon
from appliance.protocols.registry import DecodeOptions, Decoder

PROXIMITY_UUID = uuid128("C7AFEF7B-1788-4F4A-A87D-691D53BF21C4")
MAJOR = 20
MINOR = 20

_DETECTION = Detection("bluezone-beacon")


def decode(adv: Advertisement, options: DecodeOptions) -> Detection | None:
    for company, payload in adv.manufacturer:
        if company == APPLE_COMPANY_ID:
            beacon = ibeacon(payload)
            if beacon is not None and beacon[0] == PROXIMITY_UUID:
                return _DETECTION
    return None


DECODER = Decoder(
    name="bluezone-beacon",
    priority=50,
    decode=decode,
    summary="Bluezone ≥ 3.0.7 iBeacon marker (UUID C7AFEF7B-…); no ID",
)
