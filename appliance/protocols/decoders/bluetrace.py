"""TraceTogether / BlueTrace: detected by its service UUID and counted, never collected.

Its identifiers are exchanged over GATT and encrypted by the health authority's server.
"""

from __future__ import annotations

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement, uuid128
from appliance.protocols.registry import DecodeOptions, Decoder

SERVICE_UUID = uuid128("B82AB3FC-1595-4F6A-80F0-FE094CC218F9")

_DETECTION = Detection("bluetrace")


def decode(adv: Advertisement, options: DecodeOptions) -> Detection | None:
    if SERVICE_UUID in adv.uuid128:
        return _DETECTION
    for uuid, _payload in adv.service_data128:
        if uuid == SERVICE_UUID:
            return _DETECTION
    return None


DECODER = Decoder(
    name="bluetrace",
    priority=60,
    decode=decode,
    summary="TraceTogether/BlueTrace: service B82AB3FC-…; counted only",
)
