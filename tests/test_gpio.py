"""Door signals on gpiozero's mock pins: exact pin sequences and timings of each pattern,
priorities, quiet hours and mute, the sensor and button, and the end-to-end door."""

from __future__ import annotations

import asyncio
import time as clock
from datetime import datetime, time
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.config import GpioSection
from appliance.errors import GpioError
from appliance.gpio.board import DoorBoard
from appliance.gpio.patterns import (
    FAULT,
    GREET,
    PROMPT,
    SignalPlayer,
    in_quiet_hours,
    parse_quiet_hours,
)
from appliance.models import SensorEvent

# Pattern steps are deadlines counted from the pattern's start, so a loaded machine makes a
# change late but never early, and lateness does not add up. Each change is checked against
# its deadline: not before it (beyond clock granularity), and not more than SLACK_S after.
EARLY_S = 0.03
SLACK_S = 0.25


def assert_timeline(pin: Any, expected: list[tuple[float, Any]]) -> None:
    actual = list(pin.states)
    assert len(actual) >= len(expected), (actual, expected)
    elapsed = deadline = 0.0
    for got, (gap, state) in zip(actual, expected, strict=False):
        elapsed += got.timestamp
        deadline += gap
        assert float(got.state) == pytest.approx(float(state)), (actual, expected)
        assert deadline - EARLY_S <= elapsed <= deadline + SLACK_S, (elapsed, deadline, actual)


@pytest.fixture
def factory() -> Any:
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()
    Device.pin_factory = None


def board(
    factory: Any, loop: asyncio.AbstractEventLoop, **pins: Any
) -> tuple[DoorBoard, list[Any]]:
    events: list[Any] = []
    config = GpioSection(**{"sensor": "none", "button_pin": None, **pins})
    door = DoorBoard(
        config, loop, events.append, lambda: events.append("short"),
        lambda: events.append("long"), pin_factory=factory,
    )  # fmt: skip
    return door, events


def states(factory: Any, pin: int) -> list[float]:
    return [s.state for s in factory.pin(pin).states]


def test_greet_is_green_with_a_short_high_beep(factory: Any) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door)
        for pin in (17, 27, 22):
            factory.pin(pin).clear_states()
        player.play(GREET)
        await asyncio.sleep(1.7)
        player.close()
        door.close()

    asyncio.run(scenario())
    buzzer = factory.pin(22)
    assert_timeline(buzzer, [(0.0, False), (0.0, True), (0.15, False)])
    green = factory.pin(17)
    assert_timeline(green, [(0.0, 0), (0.0, 1.0), (1.5, 0)])  # then the heartbeat
    assert set(states(factory, 27)) == {0}  # the red LED never lit


def test_prompt_is_red_blinking_with_three_low_beeps_then_stops(factory: Any) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door)
        factory.pin(22).clear_states()
        factory.pin(27).clear_states()
        player.play(PROMPT)
        await asyncio.sleep(2.3)
        player.close()
        door.close()

    asyncio.run(scenario())
    assert_timeline(factory.pin(22), [
        (0.0, False), (0.0, True), (0.4, False), (0.2, True), (0.4, False), (0.2, True),
        (0.4, False),
    ])  # fmt: skip
    assert_timeline(factory.pin(27), [
        (0.0, 0), (0.0, 1.0), (0.4, 0), (0.2, 1.0), (0.4, 0), (0.2, 1.0), (0.4, 0),
    ])  # fmt: skip


def test_fault_outranks_prompt_and_greet_cannot_interrupt_prompt(factory: Any) -> None:
    async def scenario() -> list[str]:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door)
        player.play(PROMPT)
        assert player.play(GREET) is False  # a lower pattern never garbles a higher one
        await asyncio.sleep(0.5)
        player.set_fault(True)  # scanner down: the fault pattern takes over at once
        assert player.current is FAULT
        assert player.play(PROMPT) is False and player.play(GREET) is False
        await asyncio.sleep(0.3)
        player.set_fault(False)
        assert player.play(GREET) is True
        await asyncio.sleep(0.2)
        played = list(player.played)
        player.close()
        door.close()
        return played

    assert asyncio.run(scenario()) == ["prompt", "fault", "heartbeat", "greet"]


def test_muted_and_quiet_hours_silence_the_buzzer_but_not_the_lights(factory: Any) -> None:
    async def scenario(silenced: bool, muted: bool) -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door, silenced=lambda: silenced)
        player.set_muted(muted)
        factory.pin(22).clear_states()
        factory.pin(27).clear_states()
        player.play(PROMPT)
        await asyncio.sleep(1.0)
        player.close()
        door.close()

    for silenced, muted in ((True, False), (False, True)):
        asyncio.run(scenario(silenced, muted))
        assert set(states(factory, 22)) == {False}
        assert 1.0 in states(factory, 27)
        factory.reset()


def test_quiet_hours_span_midnight() -> None:
    quiet = parse_quiet_hours("22:00-06:00")
    assert in_quiet_hours(datetime(2020, 8, 20, 23, 0), quiet)
    assert in_quiet_hours(datetime(2020, 8, 20, 5, 59), quiet)
    assert not in_quiet_hours(datetime(2020, 8, 20, 6, 0), quiet)
    assert parse_quiet_hours("12:00-13:30") == (time(12), time(13, 30))
    with pytest.raises(ValueError):
        parse_quiet_hours("noon")


def test_two_beams_feed_the_doorway_with_direction(factory: Any) -> None:
    async def scenario() -> list[Any]:
        loop = asyncio.get_running_loop()
        door, events = board(factory, loop, sensor="two-beams", sensor_pin=23, inner_beam_pin=24)
        outer, inner = factory.pin(23), factory.pin(24)
        outer.drive_low()
        outer.drive_high()
        inner.drive_low()
        inner.drive_high()
        await asyncio.sleep(0.1)
        inner.drive_low()
        inner.drive_high()
        outer.drive_low()
        outer.drive_high()
        await asyncio.sleep(0.1)
        door.close()
        return events

    events = asyncio.run(scenario())
    assert [e.direction for e in events if isinstance(e, SensorEvent)] == ["in", "out"]


def test_button_short_press_mutes_long_press_records(factory: Any) -> None:
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


def test_the_door_end_to_end_prompt_without_app_and_greet_with_it(factory: Any) -> None:
    from appliance.core.doorway import DoorTuning, Doorway
    from appliance.core.presence import PresenceTracker
    from appliance.gpio.signals import DoorSignals
    from appliance.models import Sighting
    from appliance.pipeline import Pipeline
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
                           "Asia/Ho_Chi_Minh", pipeline.on_sensor, lambda: None,
                           pin_factory=factory)  # fmt: skip
        pipeline.on_signal = door.signal
        door.ensure()
        beam = factory.pin(23)

        async def tick_for(seconds: float) -> None:
            end = asyncio.get_running_loop().time() + seconds
            while asyncio.get_running_loop().time() < end:
                pipeline.tick(clock.time())
                await asyncio.sleep(0.1)

        beam.drive_low()  # someone without the app breaks the beam
        beam.drive_high()
        await tick_for(1.6)
        assert door.player is not None and door.player.current is not None
        assert door.player.current.name == "prompt"
        await asyncio.sleep(2.5)  # the prompt ends
        for _k in range(3):  # an app phone at the door…
            pipeline.on_sighting(Sighting(clock.time(), "4A:00:00:00:00:01", -58,
                                          frames.bluezone_android(bytes(12))))  # fmt: skip
            await asyncio.sleep(0.05)
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


def test_background_patterns_heartbeat_muted_and_fault_timings(factory: Any) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop())
        player = SignalPlayer(door)
        for pin in (17, 27, 22):
            factory.pin(pin).clear_states()
        player.start()  # heartbeat: a dim green blip every 5 s
        await asyncio.sleep(0.3)
        assert_timeline(factory.pin(17), [(0.0, 0), (0.0, 0.1), (0.1, 0)])
        factory.pin(27).clear_states()
        player.set_muted(True)  # muted: a dim red blip instead
        await asyncio.sleep(0.3)
        assert_timeline(factory.pin(27), [(0.0, 0), (0.0, 0.1), (0.1, 0)])
        factory.pin(27).clear_states()
        player.set_fault(True)  # fault: slow red blinking, one second on, one off
        await asyncio.sleep(2.5)
        assert_timeline(factory.pin(27), [(0.0, 0), (0.0, 1.0), (1.0, 0), (1.0, 1.0)])
        player.close()
        door.close()

    asyncio.run(scenario())
    assert set(states(factory, 22)) == {False}  # no background pattern ever beeps


def test_gpio_failure_is_reported_and_retried_while_the_door_goes_on(factory: Any) -> None:
    from appliance.gpio import signals

    async def scenario() -> None:
        squatter = occupy_pin(factory, 17)  # another program holds the green LED's pin
        door = signals.DoorSignals(GpioSection(sensor="none", button_pin=None),
                                   "Asia/Ho_Chi_Minh", lambda e: None, lambda: None,
                                   pin_factory=factory)  # fmt: skip
        door.ensure()
        assert door.player is None and "GPIO17" in (door.status()["message"] or "")
        assert door.status()["state"] == "error"
        squatter.close()
        door._last_try -= signals.RETRY_S  # the retry interval has passed
        door.tick(fault=False)
        assert door.player is not None and door.status()["state"] == "ok"
        door.close()

    asyncio.run(scenario())


def occupy_pin(factory: Any, pin: int) -> Any:
    from gpiozero import PWMLED

    return PWMLED(pin, pin_factory=factory)


def test_one_rgb_led_instead_of_two(factory: Any) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop(), led="rgb", red_pin=27,
                        green_pin=17, blue_pin=18)  # fmt: skip
        player = SignalPlayer(door)
        player.play(PROMPT)
        await asyncio.sleep(0.1)
        assert (factory.pin(27).state, factory.pin(17).state, factory.pin(18).state) == (1, 0, 0)
        player.close()
        player.play(GREET)
        await asyncio.sleep(0.1)
        assert (factory.pin(27).state, factory.pin(17).state, factory.pin(18).state) == (0, 1, 0)
        player.close()
        door.close()

    asyncio.run(scenario())


def test_a_board_failing_while_running_is_dropped_reported_and_rebuilt(factory: Any) -> None:
    from appliance.core.doorway import Signal
    from appliance.gpio import signals

    async def scenario() -> None:
        door = signals.DoorSignals(GpioSection(sensor="none", button_pin=None),
                                   "Asia/Ho_Chi_Minh", lambda e: None, lambda: None,
                                   pin_factory=factory)  # fmt: skip
        door.ensure()
        assert door.board is not None

        def broken(*args: object) -> None:
            raise OSError("pin went away")

        door.board.show = broken  # the wiring fails while the door is running
        door.signal(Signal("greet", 0.0))  # must not raise into the pipeline
        assert door.board is None and door.status()["state"] == "error"
        door._last_try = (door._last_try or 0.0) - signals.RETRY_S
        door.tick(fault=False)  # the retry builds a fresh board
        assert door.board is not None and door.status()["state"] == "ok"
        door.signal(Signal("greet", 0.0))
        assert door.player is not None and door.player.current is not None
        door.close()

    asyncio.run(scenario())


def test_a_passive_tonal_buzzer_plays_both_tones(factory: Any) -> None:
    async def scenario() -> None:
        door, _ = board(factory, asyncio.get_running_loop(), buzzer="tonal")
        player = SignalPlayer(door)
        player.play(GREET)
        await asyncio.sleep(0.05)
        assert door.buzzer.is_active
        player.close()
        player.play(PROMPT)
        await asyncio.sleep(0.05)
        assert door.buzzer.is_active
        player.close()
        assert not door.buzzer.is_active
        door.close()

    asyncio.run(scenario())
