"""Bluezone version 1 (April–May 2020): a static 6-character ASCII ID in company 0x22B5 data.

Its own 128-bit service UUIDs (``…A889`` Android, ``…A667`` iOS) also mark a v1 phone, with no
ID in the air.
"""

from __future__ import annotations

from appliance.models import Detection
from appliance.protocols.adstructs import Advertisement, uuid128
from appliance.protocols.registry import DecodeOptions, Decoder

COMPANY_ID = 0x22B5
ID_LENGTH = 6
ID_SCHEME = "bluezone-legacy"
SERVICE_UUIDS = (
    uuid128("E20A39F4-73F5-4BC4-A12F-17D1AD07A889"),  # Android
    uuid128("E20A39F4-73F5-4BC4-A12F-17D1AD07A667"),  # iOS
)
_ALPHANUMERIC = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_WITHOUT_ID = Detection("bluezone-legacy")


def decode(adv: Advertisement, options: DecodeOptions) -> Detection | None:
    for company, payload in adv.manufacturer:
        if (
            company == COMPANY_ID
            and len(payload) == ID_LENGTH
            and _ALPHANUMERIC.issuperset(payload)
        ):
            return Detection("bluezone-legacy", bytes(payload), id_scheme=ID_SCHEME)
    for value in adv.uuid128:
        if value in SERVICE_UUIDS:
            return _WITHOUT_ID
    return None


DECODER = Decoder(
    name="bluezone-legacy",
    priority=30,
    decode=decode,
    summary="Bluezone v1: 6-character ASCII ID in company 0x22B5 data",
)
