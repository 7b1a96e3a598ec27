"""The doorway: app presences and sensor crossings become entries and greet/prompt signals."""

from __future__ import annotations

from itertools import count

from appliance.core.doorway import (
    APP,
    NO_APP,
    Decision,
    DoorTuning,
    Doorway,
    Entry,
    EntryUpdate,
    Signal,
    adoption_rate,
)
from appliance.models import PresenceEvent, SensorEvent


def doorway(**tuning: object) -> Doorway:
    numbers = count(1)
    return Doorway(DoorTuning(**tuning), new_uuid=lambda: f"entry-{next(numbers)}")  # type: ignore[arg-type]


def entered(
    t: float, pid: int, token: str | None = "tok", protocol: str = "bluezone"
) -> PresenceEvent:
    return PresenceEvent("entered", pid, t, protocol, token, -60.0)


def left(t: float, pid: int) -> PresenceEvent:
    return PresenceEvent("left", pid, t, "bluezone")


def entries(decisions: list[Decision]) -> list[tuple[str, float]]:
    return [(d.kind, d.time) for d in decisions if isinstance(d, Entry)]


def signals(decisions: list[Decision]) -> list[tuple[str, float]]:
    return [(d.intent, d.time) for d in decisions if isinstance(d, Signal)]


def run(
    door: Doorway, timeline: list[tuple[float, PresenceEvent | SensorEvent]], until: float
) -> list[Decision]:
    """Feed events in time order with a tick every half second, as the daemon does."""
    out: list[Decision] = []
    events = sorted(timeline, key=lambda item: item[0])
    t = events[0][0] if events else 0.0
    while t <= until:
        while events and events[0][0] <= t:
            _, event = events.pop(0)
            out += (
                door.on_sensor(event) if isinstance(event, SensorEvent) else door.on_presence(event)
            )
        out += door.tick(t)
        t += 0.5
    return out


def test_phone_heard_before_the_crossing_is_an_app_entry_greeted_at_the_crossing() -> None:
    door = doorway()
    out = run(door, [(100, entered(100, 1)), (104, SensorEvent(104, "in"))], until=140)
    assert entries(out) == [(APP, 104)]
    assert signals(out) == [("greet", 104)]
    entry = next(d for d in out if isinstance(d, Entry))
    assert entry.tokens == (("tok", 100),) and entry.via_sensor and entry.protocol == "bluezone"


def test_crossing_without_app_phone_is_no_app_prompted_after_the_window() -> None:
    door = doorway()
    out = run(door, [(100, SensorEvent(100, "in"))], until=140)
    assert entries(out) == [(NO_APP, 100)]
    assert signals(out) == [("prompt", 100 + door.tuning.match_after_s)]


def test_late_phone_of_someone_already_in_is_still_an_app_entry() -> None:
    # Android Bluezone in the background may be silent while its owner walks in.
    door = doorway()
    out = run(door, [(100, SensorEvent(100, "in")), (112, entered(112, 1))], until=160)
    assert entries(out) == [(APP, 100)]
    assert [s[0] for s in signals(out)] == ["greet"]


def test_phone_heard_after_one_crossing_but_before_the_next_belongs_to_the_next() -> None:
    door = doorway()
    timeline = [
        (100, SensorEvent(100, "in")),  # a visitor without the app
        (107, entered(107, 1)),  # the next visitor walking up with the app…
        (110, SensorEvent(110, "in")),  # …comes through three seconds later
    ]
    out = run(door, timeline, until=160)
    assert set(entries(out)) == {(NO_APP, 100), (APP, 110)}


def test_going_out_is_neither_an_entry_nor_a_prompt() -> None:
    door = doorway()
    out = run(
        door,
        [(100, entered(100, 1)), (103, SensorEvent(103, "out")), (200, SensorEvent(200, "out"))],
        until=260,
    )
    assert entries(out) == [] and signals(out) == []
    assert door.exits == 1


def test_someone_leaving_does_not_take_the_phone_of_a_visitor_coming_in() -> None:
    # Review finding: a phone heard, a staff member going out, the phone's owner coming in.
    door = doorway()
    near = {1}
    timeline = [
        (100, entered(100, 1)),
        (103, SensorEvent(103, "out")),
        (106, SensorEvent(106, "in")),
    ]
    out: list[Decision] = []
    for _t, event in timeline:
        out += door.on_sensor(event) if isinstance(event, SensorEvent) else door.on_presence(event)
    for k in range(80):
        out += door.tick(100 + k * 0.5, still_near=lambda pid, now: pid in near)
    assert entries(out) == [(APP, 106)]
    assert [s[0] for s in signals(out)] == ["greet"]
    assert door.exits == 0


def test_a_phone_leaving_with_its_owner_lets_the_next_visitor_be_prompted() -> None:
    door = doorway()
    timeline: list[tuple[float, PresenceEvent | SensorEvent]] = [
        (100, entered(100, 1)),
        (103, SensorEvent(103, "out")),  # its owner leaves…
        (106, SensorEvent(106, "in")),  # …as someone without the app comes in
        (112, left(112, 1)),  # the phone walks out of range
    ]
    out = run(door, timeline, until=140)
    assert entries(out) == [(NO_APP, 106)]
    assert door.exits == 1


def test_without_a_sensor_every_app_presence_is_an_entry_at_once() -> None:
    door = doorway(sensor=False)
    out = door.on_presence(entered(100, 1))
    assert entries(out) == [(APP, 100)] and signals(out) == [("greet", 100)]


def test_rotation_and_leaving_update_the_entry() -> None:
    door = doorway()
    out = run(door, [(100, entered(100, 1)), (102, SensorEvent(102, "in"))], until=110)
    uuid = next(d.uuid for d in out if isinstance(d, Entry))
    update = door.on_presence(PresenceEvent("identifier", 1, 900, "bluezone", "tok2"))
    assert update == [EntryUpdate(uuid, token=("tok2", 900))]
    assert door.on_presence(left(1000, 1)) == [EntryUpdate(uuid, left_at=1000)]


def test_app_presence_that_never_comes_through_is_not_an_entry() -> None:
    door = doorway()
    out = run(door, [(100, entered(100, 1))], until=100 + door.tuning.pending_max_s + 5)
    assert entries(out) == []
    assert door.lobby_presences == 1


def test_visitor_waiting_outside_with_the_app_is_matched_when_coming_in() -> None:
    door = doorway()
    out = run(door, [(100, entered(100, 1)), (160, SensorEvent(160, "in"))], until=200)
    assert entries(out) == [(APP, 160)]


def test_pir_retriggers_are_one_crossing() -> None:
    door = doorway()
    timeline = [(100 + k * 0.3, SensorEvent(100 + k * 0.3)) for k in range(3)]
    out = run(door, timeline, until=140)
    assert entries(out) == [(NO_APP, 100)]
    assert door.debounced == 2


def test_prompt_waits_while_the_tracker_is_undecided() -> None:
    door = doorway()
    door.on_sensor(SensorEvent(100, "in"))
    assert door.tick(100 + door.tuning.match_after_s + 1, hold=True) == []
    out = door.on_presence(entered(100 + door.tuning.match_after_s + 2, 1))
    out += door.tick(100 + door.tuning.match_after_s + 2 + door.tuning.late_grace_s)
    assert entries(out) == [(APP, 100)]


def test_two_crossings_two_phones_two_app_entries() -> None:
    door = doorway()
    timeline = [
        (100, entered(100, 1)),
        (101, entered(101, 2)),
        (104, SensorEvent(104, "in")),
        (106, SensorEvent(106, "in")),
    ]
    out = run(door, timeline, until=150)
    assert entries(out) == [(APP, 104), (APP, 106)]


def test_adoption_rate() -> None:
    assert adoption_rate({"app": 3, "no_app": 1, "manual": 5}) == 0.75
    assert adoption_rate({"manual": 2}) is None
