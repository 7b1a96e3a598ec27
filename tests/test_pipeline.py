"""The pipeline wiring: decode → tracker → doorway → sink, as the daemon and replay drive it."""

from __future__ import annotations

from appliance.core.doorway import DoorTuning, Doorway
from appliance.core.pipeline import Pipeline
from appliance.core.presence import PresenceTracker
from appliance.models import SensorEvent, Sighting
from appliance.protocols import frames
from appliance.protocols.registry import Classifier
from tests.builders import bluezone_id, fake_token
from tests.sim import MemorySink


def pipeline(sink: MemorySink, sensor: bool = True) -> Pipeline:
    return Pipeline(
        Classifier(), PresenceTracker(fake_token), Doorway(DoorTuning(sensor=sensor)), sink
    )


def test_shutdown_right_after_a_late_phone_still_records_an_app_entry() -> None:
    # Review finding: closing the tracker first threw away the phone that explained the crossing.
    sink = MemorySink()
    p = pipeline(sink)
    p.on_sensor(SensorEvent(100.0, "in"))
    for k in range(6):
        p.on_sighting(
            Sighting(
                103.0 + k * 0.5, "4A:00:00:00:00:01", -58, frames.bluezone_android(bluezone_id(9))
            )
        )
        p.tick(103.0 + k * 0.5)
    p.close(106.0)
    kinds = [e.kind for e in sink.entries.values()]
    assert kinds == ["app"]
    (uuid,) = sink.entries
    assert sink.tokens[uuid] == ["bluezone:" + bluezone_id(9).hex()]
    assert uuid in sink.left  # the stay was ended too


def test_noise_and_malformed_reports_are_counted_not_fatal() -> None:
    sink = MemorySink()
    p = pipeline(sink, sensor=False)
    for data in (b"", b"\xff\xff", bytes([0x1F, 0xFF, 0x4C]), frames.apple_nearby_info()):
        p.on_sighting(Sighting(1.0, "6C:00:00:00:00:01", -50, data))
    assert p.counters.reports == 4 and p.counters.app_reports == 0
    assert p.counters.malformed_reports == 2  # both run past their end
    assert sink.entries == {}


def test_an_iphone_id_read_over_gatt_gives_its_visit_a_token() -> None:
    sink = MemorySink()
    p = pipeline(sink, sensor=False)
    asked: list[str] = []
    p.on_needs_gatt = lambda address, when: asked.append(address)
    for k in range(3):
        p.on_sighting(
            Sighting(100.0 + k, "7A:00:00:00:00:01", -60, frames.bluezone_ios_background())
        )
    (uuid,) = sink.entries
    assert sink.entries[uuid].protocol == "bluezone-ios" and sink.tokens[uuid] == []
    assert asked == ["7A:00:00:00:00:01"] * 3  # the reader dedups per slot itself
    p.identify("bluezone-ios", "7A:00:00:00:00:01", bluezone_id(5), 104.0)
    assert sink.tokens[uuid] == ["bluezone:" + bluezone_id(5).hex()]
    p.identify("bluezone-ios", "7A:00:00:00:00:01", bluezone_id(5), 105.0)  # the same again
    assert len(sink.tokens[uuid]) == 1
