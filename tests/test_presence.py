"""The presence tracker: hysteresis, gaps, rotation and memory, with time driven explicitly."""

from __future__ import annotations

import random

from appliance.core.phone import Phone
from appliance.core.presence import PresenceTracker, PresenceTuning
from appliance.core.rotation import RotationLinker
from appliance.models import PresenceEvent
from appliance.protocols import frames
from appliance.protocols.bluezone_keys import SLOT_SECONDS
from tests.builders import MAC_A, MAC_B, bluezone_id, detect, fake_token, sighting

BOUNDARY = 1_597_881_600.0 + 9 * SLOT_SECONDS  # 2020-08-20 02:15 UTC, a quarter-hour


def feed(
    tracker: PresenceTracker, t: float, rssi: int, data: bytes, mac: str = MAC_A
) -> list[PresenceEvent]:
    s = sighting(t, rssi, data, mac)
    return tracker.observe(s, detect(s)) + tracker.tick(t)


def kinds(events: list[PresenceEvent]) -> list[str]:
    return [e.kind for e in events]


def test_phone_at_the_door_enters_after_two_strong_reports() -> None:
    tracker = PresenceTracker(fake_token)
    frame = frames.bluezone_android(bluezone_id(7))
    assert feed(tracker, 100.0, -60, frame) == []
    events = feed(tracker, 100.3, -61, frame)
    assert kinds(events) == ["entered"]
    assert events[0].token == "bluezone:" + bluezone_id(7).hex()
    assert events[0].protocol == "bluezone"


def test_one_noise_spike_from_a_passer_by_does_not_enter() -> None:
    tracker = PresenceTracker(fake_token)
    frame = frames.bluezone_android(bluezone_id(7))
    events = []
    for i, rssi in enumerate([-92, -90, -65, -91, -93, -89, -90]):
        events += feed(tracker, 100.0 + i, rssi, frame)
    assert events == []
    assert tracker.present == 0


def test_hysteresis_keeps_a_phone_hovering_between_thresholds() -> None:
    tracker = PresenceTracker(fake_token)
    frame = frames.bluezone_android(bluezone_id(7))
    events = []
    for i in range(5):
        events += feed(tracker, 100.0 + i, -60, frame)
    # Between the exit (-84) and entry (-72) levels for a minute: still present, no churn.
    for i in range(60):
        events += feed(tracker, 105.0 + i, random.Random(i).choice([-74, -78, -82]), frame)
    assert kinds(events) == ["entered"]
    for i in range(6):
        events += feed(tracker, 170.0 + i, -95, frame)
    assert kinds(events) == ["entered", "left"]


def test_android_background_pause_is_not_an_exit() -> None:
    tracker = PresenceTracker(fake_token)
    frame = frames.bluezone_android(bluezone_id(7))
    events = []
    t = 100.0
    for _cycle in range(6):  # 15 s on, 15 s off, three minutes
        for i in range(15):
            events += feed(tracker, t + i, -60, frame)
        t += 30
        events += tracker.tick(t)
    assert kinds(events) == ["entered"]
    events = tracker.tick(t + tracker.tuning.absence_timeout_s + 1)
    assert kinds(events) == ["left"]
    assert events[0].time == t - 16  # the last time it was heard


def test_staff_phone_counts_once_across_id_rotation_all_day() -> None:
    tracker = PresenceTracker(fake_token)
    rng = random.Random(3)
    events: list[PresenceEvent] = []
    start = BOUNDARY - 300
    seconds = 10 * 3600  # ten hours at the reception desk: 40 rotations
    t = start
    while t < start + seconds:
        slot = int(t // SLOT_SECONDS)
        frame = frames.bluezone_android(bluezone_id(slot))  # a new ID every quarter-hour
        on = (t - start) % 30 < 15  # Android background duty cycle
        if on:
            events += feed(
                tracker,
                t,
                round(-58 + rng.gauss(0, 4)),
                frame,
                mac=f"4A:00:00:00:{int((t - start) // 30) % 256:02X}:01",
            )
        else:
            events += tracker.tick(t)
        t += rng.uniform(0.5, 1.5)
    entered = [e for e in events if e.kind == "entered"]
    identifiers = [e for e in events if e.kind == "identifier"]
    assert len(entered) == 1
    assert len(identifiers) == 40
    assert "left" not in kinds(events)
    assert tracker.rotations == 40


def test_two_staff_phones_rotating_together_stay_two() -> None:
    tracker = PresenceTracker(fake_token)
    events: list[PresenceEvent] = []
    t = BOUNDARY - 120
    while t < BOUNDARY + 3 * SLOT_SECONDS:
        slot = int(t // SLOT_SECONDS)
        events += feed(tracker, t, -55, frames.bluezone_android(bluezone_id(slot * 2)), MAC_A)
        events += feed(
            tracker, t + 0.2, -75 + 5, frames.bluezone_android(bluezone_id(slot * 2 + 1)), MAC_B
        )
        t += 1.0
    assert kinds(events).count("entered") == 2
    assert tracker.present == 2
    assert tracker.rotations == 6


def test_a_new_bluezone_phone_away_from_a_boundary_is_a_new_presence() -> None:
    tracker = PresenceTracker(fake_token)
    t = BOUNDARY + 300  # five minutes after the boundary
    events = []
    for i in range(5):
        events += feed(tracker, t + i, -60, frames.bluezone_android(bluezone_id(1)), MAC_A)
    for i in range(5):
        events += feed(tracker, t + 5 + i, -60, frames.bluezone_android(bluezone_id(2)), MAC_B)
    assert kinds(events) == ["entered", "entered"]


def test_gaen_rotation_with_mac_change_is_the_same_stay() -> None:
    tracker = PresenceTracker(fake_token)
    events: list[PresenceEvent] = []
    rpi_old, rpi_new = bytes(16), bytes([1]) * 16
    for i in range(20):
        events += feed(tracker, 100 + i * 0.25, -62, frames.gaen(rpi_old), MAC_A)
    for i in range(40):  # new RPI and MAC; the old one is never heard again
        events += feed(tracker, 105.2 + i * 0.25, -63, frames.gaen(rpi_new), MAC_B)
    assert kinds(events) == ["entered", "identifier"]
    assert events[1].token == "gaen:" + rpi_new.hex()
    assert tracker.present == 1


def test_a_second_gaen_phone_beside_the_first_is_not_a_rotation() -> None:
    tracker = PresenceTracker(fake_token)
    events: list[PresenceEvent] = []
    a, b = bytes(16), bytes([2]) * 16
    for i in range(20):
        events += feed(tracker, 100 + i * 0.25, -62, frames.gaen(a), MAC_A)
    for i in range(40):  # both keep advertising
        events += feed(tracker, 105 + i * 0.25, -62, frames.gaen(a), MAC_A)
        events += feed(tracker, 105.1 + i * 0.25, -61, frames.gaen(b), MAC_B)
    assert kinds(events) == ["entered", "entered"]
    assert tracker.rotations == 0


def test_bluezone_beacon_alone_never_makes_a_presence() -> None:
    tracker = PresenceTracker(fake_token)
    events = []
    for i in range(10):
        events += feed(tracker, 100 + i, -55, frames.bluezone_beacon())
    assert events == [] and tracker.tracked == 0
    assert tracker.ignored_corroborating == 10


def test_iphone_without_id_is_an_app_presence_without_token() -> None:
    tracker = PresenceTracker(fake_token)
    events = []
    for i in range(3):
        events += feed(tracker, 100 + i, -60, frames.bluezone_ios_background())
    assert kinds(events) == ["entered"]
    assert events[0].protocol == "bluezone-ios" and events[0].token is None


def test_memory_is_released_when_presences_end() -> None:
    tracker = PresenceTracker(fake_token)
    for n in range(500):
        for i in range(3):
            feed(
                tracker,
                100 + n * 0.01 + i,
                -60,
                frames.bluezone_android(bluezone_id(n)),
                f"4A:00:00:00:{n // 256:02X}:{n % 256:02X}",
            )
    assert tracker.tracked == 500 and tracker.known_identifiers == 500
    events = tracker.tick(110 + tracker.tuning.absence_timeout_s)
    assert kinds(events).count("left") == 500
    assert tracker.tracked == 0 and tracker.known_identifiers == 0


def test_close_ends_everything_with_left_events() -> None:
    tracker = PresenceTracker(fake_token)
    for i in range(3):
        feed(tracker, 100 + i, -60, frames.bluezone_android(bluezone_id(1)))
    assert kinds(tracker.close(200.0)) == ["left"]
    assert tracker.tracked == 0


# --- the rotation linker on its own (core/rotation.py), as the tracker drives it -------------


def gaen_phone(rpi: bytes, t: float, rssi: int, tuning: PresenceTuning) -> Phone:
    phone = Phone(("gaen", rpi), "gaen", "gaen", rpi, t)
    phone.add_sample(t, rssi, tuning)
    return phone


def test_linker_holds_a_new_gaen_id_and_names_the_phone_that_went_quiet() -> None:
    tuning = PresenceTuning()
    linker = RotationLinker(tuning)
    old = gaen_phone(bytes(16), 100.0, -62, tuning)
    linker.add(old)
    new = gaen_phone(bytes([1]) * 16, 101.0, -63, tuning)
    assert linker.hold(new.current, new, 101.0)
    assert linker.held(new.current) is new and len(linker) == 1
    assert linker.take_due(101.0 + tuning.gaen_confirm_s - 0.1) == []
    assert linker.take_due(101.0 + tuning.gaen_confirm_s) == [(new.current, new)]
    assert len(linker) == 0
    assert linker.predecessor(new) is old


def test_linker_leaves_a_new_id_far_from_every_known_level_to_be_a_new_phone() -> None:
    tuning = PresenceTuning()
    linker = RotationLinker(tuning)
    linker.add(gaen_phone(bytes(16), 100.0, -50, tuning))
    far = gaen_phone(
        bytes([1]) * 16, 101.0, -50 - int(2 * tuning.rotation_rssi_tolerance_db) - 1, tuning
    )
    assert not linker.hold(far.current, far, 101.0)
    assert len(linker) == 0


def test_linker_forgets_a_removed_phone_as_a_predecessor() -> None:
    tuning = PresenceTuning()
    linker = RotationLinker(tuning)
    old = gaen_phone(bytes(16), 100.0, -62, tuning)
    linker.add(old)
    new = gaen_phone(bytes([1]) * 16, 101.0, -62, tuning)
    assert linker.hold(new.current, new, 101.0)
    linker.remove(old)
    assert linker.take_due(200.0) == [(new.current, new)]
    assert linker.predecessor(new) is None
