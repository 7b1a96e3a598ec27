"""Google/Apple Exposure Notification: service 0xFD6F data of 16-byte RPI + 4-byte AEM.

The RPI and the random MAC change together every 10–20 minutes. The AEM is encrypted and kept
only as opaque metadata.
"""

from __future__ import annotations

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement
from appliance.protocols.registry import DecodeOptions, Decoder

SERVICE_UUID16 = 0xFD6F
RPI_LENGTH = 16
AEM_LENGTH = 4
ID_SCHEME = "gaen"


def decode(adv: Advertisement, options: DecodeOptions) -> Detection | None:
    for uuid, payload in adv.service_data16:
        if uuid == SERVICE_UUID16 and len(payload) == RPI_LENGTH + AEM_LENGTH:
            return Detection(
                "gaen",
                bytes(payload[:RPI_LENGTH]),
                id_scheme=ID_SCHEME,
                metadata=bytes(payload[RPI_LENGTH:]),
            )
    return None


DECODER = Decoder(
    name="gaen",
    priority=10,
    decode=decode,
    summary="Exposure Notification: service 0xFD6F, 16-byte RPI + 4-byte AEM",
)
