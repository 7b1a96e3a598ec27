"""A short human description of an advertisement that is not an app phone.

Only for people (``checkpoint decode``) and debugging; never on the hot path, never a reason to
classify anything as an app.
"""

from __future__ import annotations

from appliance.protocols.adstructs import Advertisement, uuid_text
from appliance.protocols.apple import (
    APPLE_COMPANY_ID,
    CONTINUITY_TYPES,
    continuity_types,
    ibeacon,
    overflow_bitmap,
)

MICROSOFT_COMPANY_ID = 0x0006
SAMSUNG_COMPANY_ID = 0x0075
GOOGLE_FAST_PAIR_UUID16 = 0xFE2C
EDDYSTONE_UUID16 = 0xFEAA
TILE_UUID16 = 0xFEED


# Recognised by their company ID alone.
_COMPANY_NAMES = {
    MICROSOFT_COMPANY_ID: "Microsoft CDP (Swift Pair / Windows device)",
    SAMSUNG_COMPANY_ID: "Samsung device",
}
# Recognised by a 16-bit service UUID, listed or with data; the first match wins.
_SERVICE_NAMES = (
    (GOOGLE_FAST_PAIR_UUID16, "Google Fast Pair"),
    (EDDYSTONE_UUID16, "Eddystone beacon"),
    (TILE_UUID16, "Tile tracker"),
)


def describe(adv: Advertisement) -> str | None:
    """What the advertisement most likely is, or None when nothing is recognisable."""
    for company, payload in adv.manufacturer:
        if company == APPLE_COMPANY_ID:
            return _apple(payload)
        if company in _COMPANY_NAMES:
            return _COMPANY_NAMES[company]
    uuids = set(adv.uuid16) | {uuid for uuid, _ in adv.service_data16}
    for uuid, name in _SERVICE_NAMES:
        if uuid in uuids:
            return name
    if adv.local_name:
        return f"device named {adv.local_name!r}"
    if adv.manufacturer:
        return f"manufacturer 0x{adv.manufacturer[0][0]:04X}"
    return None


def _apple(payload: bytes) -> str:
    beacon = ibeacon(payload)
    if beacon is not None:
        return f"iBeacon {uuid_text(beacon[0])} major {beacon[1]} minor {beacon[2]}"
    if overflow_bitmap(payload) is not None:
        return "Apple overflow area (iPhone app in the background)"
    names = [CONTINUITY_TYPES.get(t, f"type 0x{t:02X}") for t in continuity_types(payload)]
    return "Apple Continuity: " + ", ".join(names) if names else "Apple"
