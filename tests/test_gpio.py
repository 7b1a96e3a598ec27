"""Door signals on gpiozero's mock pins: exact pin sequences and timings of each pattern,
priorities, quiet hours and mute, the sensor and button, and the end-to-end door.

Time is virtual (``ManualClock``): the player and DoorSignals sleep on it, gpiozero's mock pins
stamp their history with it, and a test moves it with ``advance``, so every change lands
exactly on its deadline and no test waits for a pattern in real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Any

import gpiozero.pins.mock
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.config import GpioSection
from appliance.core.quiet_hours import in_quiet_hours, parse_quiet_hours
from appliance.errors import GpioError
from appliance.gpio.board import DoorBoard
from appliance.gpio.clock import ManualClock
from appliance.gpio.patterns import FAULT, GREET, PROMPT, SignalPlayer
from appliance.models import SensorEvent

# Well inside one Bluezone slot (new IDs near a quarter-hour are held for pairing).
DOOR_START = datetime(2020, 8, 20, 2, 5, tzinfo=UTC).timestamp()
ZONE = "Asia/Ho_Chi_Minh"  # UTC+7


@pytest.fixture
def factory() -> Iterator[Any]:
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()
    Device.pin_factory = None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """A virtual clock; the mock pins record their changes on it (made after this fixture)."""
    clock = ManualClock(wall_start=DOOR_START)
    monkeypatch.setattr(gpiozero.pins.mock, "monotonic", clock.monotonic)
    return clock


def timeline(pin: Any) -> list[tuple[float, float]]:
    """The pin's history as (seconds since ``clear_states``, state), to the microsecond."""
    elapsed = 0.0
    out = []
    for change in pin.states:
        elapsed += change.timestamp
        out.append((round(elapsed, 6), float(change.state)))
    return out


def clear(factory: Any, *pins: int) -> None:
    for pin in pins:
        factory.pin(pin).clear_states()


def board(
    factory: Any, loop: asyncio.AbstractEventLoop, clock: ManualClock | None = None, **pins: Any
) -> tuple[DoorBoard, list[Any]]:
    events: list[Any] = []
    config = GpioSection(**{"sensor": "none", "button_pin": None, **pins})
    stamps = clock.door if clock is not None else (lambda: DOOR_START)
    door = DoorBoard(
        config, loop, events.append, lambda: events.append("short"),
        lambda: events.append("long"), pin_factory=factory, clock=stamps,
    )  # fmt: skip
    return door, events


def door_signals(factory: Any, clock: ManualClock, **gpio: Any) -> Any:
    from appliance.gpio.signals import DoorSignals

    config = GpioSection(**{"sensor": "none", "button_pin": None, **gpio})
    return DoorSignals(config, ZONE, lambda e: None, lambda: None, pin_factory=factory,
                       clock=clock)  # fmt: skip


def states(factory: Any, pin: int) -> list[float]:
    return [s.state for s in factory.pin(pin).states]


def test_greet_is_green_with_a_short_high_beep(factory: Any, clock: ManualClock) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door, clock=clock)
        clear(factory, 17, 27, 22)
        player.play(GREET)
        await clock.advance(1.7)
        player.close()
        door.close()

    asyncio.run(scenario())
    assert timeline(factory.pin(22)) == [(0.0, False), (0.0, True), (0.15, False)]
    # 1.5 s of green, then the heartbeat's dim blip.
    assert timeline(factory.pin(17))[:5] == [(0.0, 0), (0.0, 1.0), (1.5, 0), (1.5, 0.1), (1.6, 0)]
    assert set(states(factory, 27)) == {0}  # the red LED never lit


def test_prompt_is_red_blinking_with_three_low_beeps_then_stops(
    factory: Any, clock: ManualClock
) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door, clock=clock)
        clear(factory, 17, 27, 22)
        player.play(PROMPT)
        await clock.advance(2.3)
        player.close()
        door.close()

    asyncio.run(scenario())
    assert timeline(factory.pin(22)) == [
        (0.0, False), (0.0, True), (0.4, False), (0.6, True), (1.0, False), (1.2, True),
        (1.6, False),
    ]  # fmt: skip
    assert timeline(factory.pin(27)) == [
        (0.0, 0), (0.0, 1.0), (0.4, 0), (0.6, 1.0), (1.0, 0), (1.2, 1.0), (1.6, 0),
    ]  # fmt: skip
    # Then it stops (nothing more in red or on the buzzer above): from 2.0 s the heartbeat.
    assert timeline(factory.pin(17)) == [(0.0, 0), (2.0, 0.1), (2.1, 0)]


def test_fault_outranks_prompt_and_greet_cannot_interrupt_prompt(
    factory: Any, clock: ManualClock
) -> None:
    async def scenario() -> list[str]:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door, clock=clock)
        player.play(PROMPT)
        assert player.play(GREET) is False  # a lower pattern never garbles a higher one
        await clock.advance(0.5)
        player.set_fault(True)  # scanner down: the fault pattern takes over at once
        assert player.current is FAULT
        assert player.play(PROMPT) is False and player.play(GREET) is False
        await clock.advance(0.3)
        player.set_fault(False)
        assert player.play(GREET) is True
        await clock.advance(0.2)
        played = list(player.played)
        player.close()
        door.close()
        return played

    assert asyncio.run(scenario()) == ["prompt", "fault", "heartbeat", "greet"]


def test_muted_and_quiet_hours_silence_the_buzzer_but_not_the_lights(
    factory: Any, clock: ManualClock
) -> None:
    async def scenario(silenced: bool, muted: bool) -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door, silenced=lambda: silenced, clock=clock)
        player.set_muted(muted)
        clear(factory, 22, 27)
        player.play(PROMPT)
        await clock.advance(1.0)
        player.close()
        door.close()

    for silenced, muted in ((True, False), (False, True)):
        asyncio.run(scenario(silenced, muted))
        assert set(states(factory, 22)) == {False}
        assert 1.0 in states(factory, 27)
        # The red light blinks exactly as it does with sound, then closes.
        assert timeline(factory.pin(27))[-4:] == [(0.0, 1.0), (0.4, 0), (0.6, 1.0), (1.0, 0)]
        factory.reset()


def test_quiet_hours_span_midnight() -> None:
    quiet = parse_quiet_hours("22:00-06:00")
    assert in_quiet_hours(datetime(2020, 8, 20, 23, 0), quiet)
    assert in_quiet_hours(datetime(2020, 8, 20, 5, 59), quiet)
    assert not in_quiet_hours(datetime(2020, 8, 20, 6, 0), quiet)
    assert parse_quiet_hours("12:00-13:30") == (time(12), time(13, 30))
    with pytest.raises(ValueError):
        parse_quiet_hours("noon")


def test_quiet_hours_follow_the_door_clock_in_the_configured_zone(
    factory: Any, clock: ManualClock
) -> None:
    async def scenario() -> list[bool]:
        door = door_signals(factory, clock, quiet_hours="12:00-13:30")
        await clock.advance(lunch - clock.wall() - 1)  # 11:59:59 in Ho Chi Minh City
        door.ensure()
        before = door.status()["quiet_hours"]
        await clock.advance(1)  # noon: quiet
        during = door.status()["quiet_hours"]
        clear(factory, 17, 22)
        door.signal(Signal("greet", clock.door()))
        await clock.advance(1.6)
        door.close()
        return [before, during]

    from appliance.core.doorway import Signal

    lunch = datetime(2020, 8, 20, 5, 0, tzinfo=UTC).timestamp()  # 12:00 at UTC+7
    assert asyncio.run(scenario()) == [False, True]
    assert set(states(factory, 22)) == {False}  # the greeting at noon is silent…
    assert timeline(factory.pin(17))[:3] == [(0.0, 0.0), (0.0, 1.0), (1.5, 0.0)]  # …and green


def test_two_beams_feed_the_doorway_with_direction(factory: Any, clock: ManualClock) -> None:
    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        door, events = board(factory, loop, clock, sensor="two-beams", sensor_pin=23,
                             inner_beam_pin=24)  # fmt: skip
        outer, inner = factory.pin(23), factory.pin(24)
        outer.drive_low()
        outer.drive_high()
        inner.drive_low()
        inner.drive_high()
        await clock.advance(0.1)
        inner.drive_low()
        inner.drive_high()
        outer.drive_low()
        outer.drive_high()
        await clock.advance(0.1)
        door.close()
        return events

    events = asyncio.run(scenario())
    crossings = [e for e in events if isinstance(e, SensorEvent)]
    assert [e.direction for e in crossings] == ["in", "out"]
    # Stamped with the door's clock when the second beam broke.
    assert [round(e.time - DOOR_START, 6) for e in crossings] == [0.0, 0.1]


def test_button_short_press_mutes_long_press_records(factory: Any) -> None:
    # gpiozero's own hold thread times the press on the real clock: real sleeps here (no
    # pattern is waited for).
    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        door, events = board(factory, loop, button_pin=25, long_press_s=0.5)
        button = factory.pin(25)
        button.drive_low()
        await asyncio.sleep(0.1)
        button.drive_high()  # short
        await asyncio.sleep(0.2)
        button.drive_low()
        await asyncio.sleep(0.9)  # held past long_press_s
        button.drive_high()
        await asyncio.sleep(0.2)
        door.close()
        return events

    assert asyncio.run(scenario()) == ["short", "long"]


def test_a_busy_pin_is_a_clear_error_naming_it(factory: Any) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        first, _ = board(factory, loop)
        try:
            with pytest.raises(GpioError, match="green LED on GPIO17"):
                board(factory, loop)
        finally:
            first.close()

    asyncio.run(scenario())


def test_the_door_end_to_end_prompt_without_app_and_greet_with_it(
    factory: Any, clock: ManualClock
) -> None:
    from appliance.core.doorway import DoorTuning, Doorway
    from appliance.core.pipeline import Pipeline
    from appliance.core.presence import PresenceTracker
    from appliance.gpio.signals import DoorSignals
    from appliance.models import Sighting
    from appliance.protocols import frames
    from appliance.protocols.registry import Classifier
    from tests.builders import fake_token
    from tests.sim import MemorySink

    async def scenario() -> list[str]:
        sink = MemorySink()
        # Short windows so the test does not wait 17 s for the prompt; the logic is the same.
        doorway = Doorway(DoorTuning(sensor=True, match_after_s=1.0, late_grace_s=0.5))
        pipeline = Pipeline(Classifier(), PresenceTracker(fake_token), doorway, sink)
        door = DoorSignals(GpioSection(sensor="beam", sensor_pin=23, button_pin=None),
                           ZONE, pipeline.on_sensor, lambda: None, pin_factory=factory,
                           clock=clock)  # fmt: skip
        pipeline.on_signal = door.signal
        door.ensure()
        beam = factory.pin(23)

        async def tick_for(seconds: float) -> None:
            end = clock.monotonic() + seconds
            while clock.monotonic() < end:
                pipeline.tick(clock.door())
                await clock.advance(0.1)

        beam.drive_low()  # someone without the app breaks the beam
        beam.drive_high()
        clear(factory, 27)
        await tick_for(1.6)
        assert door.player is not None and door.player.current is not None
        assert door.player.current.name == "prompt"
        await clock.advance(2.5)  # the prompt ends
        for _k in range(3):  # an app phone at the door…
            pipeline.on_sighting(Sighting(clock.door(), "4A:00:00:00:00:01", -58,
                                          frames.bluezone_android(bytes(12))))  # fmt: skip
            await clock.advance(0.05)
        beam.drive_low()  # …comes through
        beam.drive_high()
        await tick_for(0.3)
        assert door.player.current.name == "greet"
        played = list(door.player.played)
        door.close()
        return played

    played = asyncio.run(scenario())
    assert "prompt" in played and played[-1] == "greet"
    assert 1.0 in states(factory, 27) and 1.0 in states(factory, 17)
    # The prompt's three red blinks, 0.4 s on and 0.2 s off, from whenever it was decided.
    red = timeline(factory.pin(27))
    start = red[1][0]
    assert [(round(t - start, 6), s) for t, s in red[1:7]] == [
        (0.0, 1.0), (0.4, 0), (0.6, 1.0), (1.0, 0), (1.2, 1.0), (1.6, 0),
    ]  # fmt: skip


def test_with_gpio_disabled_gpiozero_is_never_imported(tmp_path: Any) -> None:
    import subprocess
    import sys

    config = tmp_path / "c.toml"
    config.write_text(
        f'[storage]\ndatabase = "{tmp_path}/v.db"\n[privacy]\nkey_file = "{tmp_path}/k"\n'
        '[gpio]\nenabled = false\n[ble]\nsource = "simulate"\n'
    )
    code = (
        "import sys, asyncio\n"
        "from appliance.config import load_config\n"
        "from appliance.daemon import build\n"
        f"build(load_config({str(config)!r}), simulate=True).close()\n"
        "assert 'gpiozero' not in sys.modules, 'gpiozero imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_background_patterns_heartbeat_muted_and_fault_timings(
    factory: Any, clock: ManualClock
) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door, clock=clock)
        clear(factory, 17, 27, 22)
        player.start()  # heartbeat: a dim green blip every 5 s
        await clock.advance(0.3)
        assert timeline(factory.pin(17)) == [(0.0, 0), (0.0, 0.1), (0.1, 0)]
        clear(factory, 27)
        player.set_muted(True)  # muted: a dim red blip instead
        await clock.advance(0.3)
        assert timeline(factory.pin(27)) == [(0.0, 0), (0.0, 0.1), (0.1, 0)]
        clear(factory, 27)
        player.set_fault(True)  # fault: slow red blinking, one second on, one off
        await clock.advance(2.5)
        assert timeline(factory.pin(27)) == [(0.0, 0), (0.0, 1.0), (1.0, 0), (2.0, 1.0)]
        player.close()
        door.close()

    asyncio.run(scenario())
    assert set(states(factory, 22)) == {False}  # no background pattern ever beeps


def test_gpio_failure_is_reported_and_retried_while_the_door_goes_on(
    factory: Any, clock: ManualClock
) -> None:
    from appliance.gpio import signals

    async def scenario() -> None:
        squatter = occupy_pin(factory, 17)  # another program holds the green LED's pin
        door = door_signals(factory, clock)
        door.ensure()
        assert door.player is None and "GPIO17" in (door.status()["message"] or "")
        assert door.status()["state"] == "error"
        squatter.close()
        await clock.advance(signals.RETRY_S - 1)
        door.tick(fault=False)  # too soon: not tried again yet
        assert door.player is None and door.status()["state"] == "error"
        await clock.advance(1)  # the retry interval has passed
        door.tick(fault=False)
        assert door.player is not None and door.status()["state"] == "ok"
        door.close()

    asyncio.run(scenario())


def occupy_pin(factory: Any, pin: int) -> Any:
    from gpiozero import PWMLED

    return PWMLED(pin, pin_factory=factory)


def test_one_rgb_led_instead_of_two(factory: Any, clock: ManualClock) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop(), led="rgb", red_pin=27,
                        green_pin=17, blue_pin=18)  # fmt: skip
        player = SignalPlayer(door, clock=clock)
        player.play(PROMPT)
        await clock.advance(0.1)
        assert (factory.pin(27).state, factory.pin(17).state, factory.pin(18).state) == (1, 0, 0)
        player.close()
        player.play(GREET)
        await clock.advance(0.1)
        assert (factory.pin(27).state, factory.pin(17).state, factory.pin(18).state) == (0, 1, 0)
        player.close()
        door.close()

    asyncio.run(scenario())


def test_a_board_failing_while_running_is_dropped_reported_and_rebuilt(
    factory: Any, clock: ManualClock
) -> None:
    from appliance.core.doorway import Signal
    from appliance.gpio import signals

    async def scenario() -> None:
        door = door_signals(factory, clock)
        door.ensure()
        assert door.board is not None

        def broken(*args: object) -> None:
            raise OSError("pin went away")

        door.board.show = broken  # the wiring fails while the door is running
        door.signal(Signal("greet", 0.0))  # must not raise into the pipeline
        assert door.board is None and door.status()["state"] == "error"
        await clock.advance(signals.RETRY_S)
        door.tick(fault=False)  # the retry builds a fresh board
        assert door.board is not None and door.status()["state"] == "ok"
        door.signal(Signal("greet", 0.0))
        assert door.player is not None and door.player.current is not None
        door.close()

    asyncio.run(scenario())


def test_a_passive_tonal_buzzer_plays_both_tones(factory: Any, clock: ManualClock) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop(), buzzer="tonal")
        player = SignalPlayer(door, clock=clock)
        player.play(GREET)
        await clock.advance(0.05)
        assert door.buzzer.is_active
        player.close()
        player.play(PROMPT)
        await clock.advance(0.05)
        assert door.buzzer.is_active
        player.close()
        assert not door.buzzer.is_active
        door.close()

    asyncio.run(scenario())


def test_mute_lasts_mute_minutes_on_the_door_clock_then_the_heartbeat_returns(
    factory: Any, clock: ManualClock
) -> None:
    async def scenario() -> None:
        door = door_signals(factory, clock, mute_minutes=2)
        door.ensure()
        clear(factory, 17, 27)
        door.mute()  # the receptionist's short press
        assert door.status()["muted"] and door.status()["pattern"] == "muted"
        await clock.advance(119.9)
        door.tick(fault=False)
        assert door.status()["muted"]
        await clock.advance(0.1)
        door.tick(fault=False)  # two minutes on: the dim green heartbeat again
        assert not door.status()["muted"] and door.status()["pattern"] == "heartbeat"
        await clock.advance(0.2)
        door.close()

    asyncio.run(scenario())
    # Dim red blips every 5 s while muted (at 0, 5, …, 120 s: that one was due before the
    # tick at 120 s ended the mute), then the green heartbeat.
    red = [t for t, s in timeline(factory.pin(27)) if s == pytest.approx(0.1)]
    assert red == [5.0 * k for k in range(25)]
    assert timeline(factory.pin(17)) == [(0.0, 0.1), (0.0, 0), (120.0, 0.1), (120.1, 0)]
