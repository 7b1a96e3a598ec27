"""The board: gpiozero devices for the LEDs, buzzer, presence sensor(s) and button.

The only gpiozero importer. Pins come from ``[gpio]``; ``pin_factory`` is injectable (tests use
gpiozero's MockFactory). On a Pi the lgpio factory is chosen explicitly. gpiozero calls the
sensor and button callbacks from its own threads; they are handed to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from gpiozero import (
    PWMLED,
    RGBLED,
    Button,
    Buzzer,
    Device,
    DigitalInputDevice,
    MotionSensor,
    TonalBuzzer,
)

from appliance.config import GpioSection
from appliance.errors import GpioError
from appliance.gpio.patterns import HIGH
from appliance.models import SensorEvent

log = logging.getLogger("checkpoint.gpio")

# For a passive (tonal) buzzer: within gpiozero's default one-octave range around A4.
TONES_HZ = {HIGH: 880.0, "low": 247.0}
BEAM_ORDER_S = 2.0  # outer then inner within this long is one person going in (and back out)


def _rgb(config: GpioSection) -> Callable[..., RGBLED]:
    """An RGBLED constructor taking the red pin first, like the other devices here."""

    def make(red: int, **kwargs: Any) -> RGBLED:
        return RGBLED(red, config.green_pin, config.blue_pin, **kwargs)

    return make


def default_pin_factory() -> Any:
    """lgpio on a Pi (chosen explicitly: gpiozero would silently fall back to another)."""
    from gpiozero.pins.lgpio import LGPIOFactory

    return LGPIOFactory()


class DoorBoard:
    """Drives the outputs (``show``) and reports the inputs to the event loop."""

    def __init__(
        self,
        config: GpioSection,
        loop: asyncio.AbstractEventLoop,
        on_sensor: Callable[[SensorEvent], None],
        on_short_press: Callable[[], None],
        on_long_press: Callable[[], None],
        pin_factory: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._loop = loop
        self._on_sensor = on_sensor
        self._clock = clock
        self._devices: list[Any] = []
        self._held = False
        self._outer_at: float | None = None
        self._inner_at: float | None = None
        try:
            factory = pin_factory if pin_factory is not None else default_pin_factory()
            self.rgb: RGBLED | None = None
            if config.led == "rgb":
                self.rgb = self._add("RGB LED", config.red_pin, _rgb(config), factory)
            else:
                self.green = self._add("green LED", config.green_pin, PWMLED, factory)
                self.red = self._add("red LED", config.red_pin, PWMLED, factory)
            buzzer_class = TonalBuzzer if config.buzzer == "tonal" else Buzzer
            self.buzzer = self._add("buzzer", config.buzzer_pin, buzzer_class, factory)
            if config.sensor == "pir":
                pir = self._add("presence sensor", config.sensor_pin, MotionSensor, factory)
                pir.when_motion = lambda: self._sensor(None)
            elif config.sensor in ("beam", "two-beams"):
                # A break-beam receiver pulls its output low when the beam is broken; with
                # pull_up=True gpiozero calls that "active": the crossing is timed when the
                # beam breaks, not when it is restored.
                outer = self._add("outer beam", config.sensor_pin, DigitalInputDevice, factory,
                                  pull_up=True)  # fmt: skip
                if config.sensor == "beam":
                    outer.when_activated = lambda: self._sensor(None)
                else:
                    inner = self._add("inner beam", config.inner_beam_pin, DigitalInputDevice,
                                      factory, pull_up=True)  # fmt: skip
                    outer.when_activated = lambda: self._beam("outer")
                    inner.when_activated = lambda: self._beam("inner")
            if config.button_pin is not None:
                button = self._add("button", config.button_pin, Button, factory,
                                   hold_time=config.long_press_s)  # fmt: skip
                button.when_held = lambda: self._hold(on_long_press)
                button.when_released = lambda: self._release(on_short_press)
        except GpioError:
            self.close()
            raise
        except Exception as exc:  # lgpio raises its own error type (no /dev/gpiochip, …)
            self.close()
            raise GpioError(
                f"GPIO unavailable: {exc}",
                advice="is this a Raspberry Pi with /dev/gpiochip0 readable by the service user?",
            ) from exc

    def _add(self, what: str, pin: int, cls: Any, factory: Any, **kwargs: Any) -> Any:
        try:
            device = cls(pin, pin_factory=factory, **kwargs)
        except Exception as exc:  # GPIOZeroError, OSError, or lgpio's own error on a Pi
            raise GpioError(
                f"{what} on GPIO{pin}: {exc}",
                advice=f"check the wiring and [gpio] in the configuration; is GPIO{pin} used by "
                "something else?",
            ) from exc
        self._devices.append(device)
        return device

    # -- outputs -----------------------------------------------------------------------------

    def show(self, green: float, red: float, tone: str | None) -> None:
        if self.rgb is not None:
            self.rgb.value = (red, green, 0.0)
        else:
            self.green.value = green
            self.red.value = red
        if isinstance(self.buzzer, TonalBuzzer):
            if tone is None:
                self.buzzer.stop()
            else:
                self.buzzer.play(TONES_HZ[tone])
        elif tone is None:
            self.buzzer.off()
        else:
            self.buzzer.on()

    # -- inputs (gpiozero's threads → the event loop) ---------------------------------------

    def _sensor(self, direction: str | None) -> None:
        event = SensorEvent(self._clock(), direction)
        self._loop.call_soon_threadsafe(self._on_sensor, event)

    def _beam(self, which: str) -> None:
        """Two beams: outer then inner is going in, inner then outer going out."""
        now = self._clock()
        other = self._inner_at if which == "outer" else self._outer_at
        if other is not None and now - other <= BEAM_ORDER_S:
            self._outer_at = self._inner_at = None
            self._sensor("out" if which == "outer" else "in")
        elif which == "outer":
            self._outer_at = now
        else:
            self._inner_at = now

    def _hold(self, action: Callable[[], None]) -> None:
        self._held = True
        self._loop.call_soon_threadsafe(action)

    def _release(self, action: Callable[[], None]) -> None:
        if self._held:
            self._held = False  # the end of a long press, not a short one
            return
        self._loop.call_soon_threadsafe(action)

    def close(self) -> None:
        """Release every pin; safe to call twice."""
        devices, self._devices = self._devices, []
        for device in reversed(devices):
            try:
                device.close()
            except Exception as exc:
                log.info("closing a GPIO device: %s", exc)


__all__ = ["Device", "DoorBoard", "GpioError", "default_pin_factory"]
