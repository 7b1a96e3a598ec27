"""bleak's parsed advertisement turned back into AD structures decodes exactly as on the air."""

from __future__ import annotations

from bleak.backends.scanner import AdvertisementData

from appliance.ble.scanner import advertisement_bytes
from appliance.protocols.registry import Classifier

classifier = Classifier()
ID = bytes.fromhex("130CEA6472130C185D8643DF")


def adv(**fields: object) -> AdvertisementData:
    base: dict[str, object] = {
        "local_name": None, "manufacturer_data": {}, "service_data": {}, "service_uuids": [],
        "tx_power": None, "rssi": -60, "platform_data": (),
    }  # fmt: skip
    base.update(fields)
    return AdvertisementData(**base)  # type: ignore[arg-type]


def test_android_bluezone_from_bleak() -> None:
    data = advertisement_bytes(adv(
        manufacturer_data={0x22B5: ID},
        service_uuids=["00004e56-0000-1000-8000-00805f9b34fb"],
    ))  # fmt: skip
    detection = classifier.classify_bytes(data)
    assert detection is not None and (detection.protocol, detection.raw_id) == ("bluezone", ID)


def test_gaen_service_data_from_bleak() -> None:
    rpi_aem = bytes(range(20))
    data = advertisement_bytes(adv(
        service_uuids=["0000fd6f-0000-1000-8000-00805f9b34fb"],
        service_data={"0000fd6f-0000-1000-8000-00805f9b34fb": rpi_aem},
    ))  # fmt: skip
    detection = classifier.classify_bytes(data)
    assert detection is not None and detection.protocol == "gaen"
    assert detection.raw_id == rpi_aem[:16]


def test_iphone_overflow_and_foreground_from_bleak() -> None:
    overflow = advertisement_bytes(adv(manufacturer_data={0x004C: b"\x01\x08" + bytes(15)}))
    foreground = advertisement_bytes(adv(
        service_uuids=["00004e56-73f5-4bc4-a12f-17d1ad07a667"], local_name="Bluezone"
    ))  # fmt: skip
    for data in (overflow, foreground):
        detection = classifier.classify_bytes(data)
        assert detection is not None and detection.protocol == "bluezone-ios"


def test_oversized_or_odd_fields_never_raise() -> None:
    data = advertisement_bytes(adv(
        manufacturer_data={0xFFFF: bytes(600)},
        service_uuids=["not-a-uuid", *(f"{i:08x}-0000-1000-8000-00805f9b34fb" for i in range(40))],
        service_data={"bad": b"x", "b82ab3fc-1595-4f6a-80f0-fe094cc218f9": bytes(300)},
        local_name="x" * 500,
        tx_power=400,
    ))  # fmt: skip
    assert isinstance(data, bytes)
    classifier.classify_bytes(data)
