"""Builders for tests: sightings of app phones with the real frames, in a line."""

from __future__ import annotations

from appliance.models import Detection, Sighting
from appliance.protocols import frames
from appliance.protocols.registry import Classifier

_classifier = Classifier()

MAC_A = "4A:11:22:33:44:55"
MAC_B = "5B:66:77:88:99:AA"


def bluezone_id(n: int) -> bytes:
    return n.to_bytes(12, "big")


def sighting(t: float, rssi: int = -60, data: bytes | None = None, mac: str = MAC_A) -> Sighting:
    return Sighting(
        t, mac, rssi, data if data is not None else frames.bluezone_android(bluezone_id(1))
    )


def detect(s: Sighting) -> Detection:
    detection = _classifier.classify_bytes(s.data)
    assert detection is not None, "builder made a non-app frame"
    return detection


def fake_token(scheme: str, raw: bytes, when: float) -> str:
    """A readable stand-in for the HMAC token: tests check which ID an event carried."""
    return f"{scheme}:{raw.hex()}"
