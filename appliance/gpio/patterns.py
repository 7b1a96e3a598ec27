"""Named signal patterns and the rules that keep them from garbling each other.

Pure: a pattern is a list of steps (how long, green level, red level, buzzer tone); the player
decides which pattern runs. Priorities: fault > prompt > greet > heartbeat: a higher pattern
cuts a lower one off cleanly (everything off first), a lower one arriving while a higher one
plays is dropped. Quiet hours and the mute button silence the buzzer, never the lights.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from appliance.gpio.clock import LoopClock, SignalClock

log = logging.getLogger("checkpoint.gpio")

HIGH = "high"  # a short bright beep: welcome
LOW = "low"  # a lower, longer sequence: please install the app


@dataclass(frozen=True, slots=True)
class Step:
    seconds: float
    green: float = 0.0  # LED brightness 0..1 (PWM)
    red: float = 0.0
    tone: str | None = None  # HIGH, LOW or None (silent)


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str
    priority: int
    steps: tuple[Step, ...]
    loop: bool = False  # background patterns (heartbeat, fault) repeat until replaced


GREET = Pattern("greet", 2, (Step(0.15, green=1.0, tone=HIGH), Step(1.35, green=1.0)))
# Red blinking with a low sequence, three times: noticeable, never a siren.
PROMPT = Pattern(
    "prompt", 3, (Step(0.4, red=1.0, tone=LOW), Step(0.2), Step(0.4, red=1.0, tone=LOW),
                  Step(0.2), Step(0.4, red=1.0, tone=LOW), Step(0.4)),
)  # fmt: skip
FAULT = Pattern("fault", 4, (Step(1.0, red=1.0), Step(1.0)), loop=True)  # slow, silent
HEARTBEAT = Pattern("heartbeat", 1, (Step(0.1, green=0.1), Step(4.9)), loop=True)  # a dim blip
MUTED = Pattern("muted", 1, (Step(0.1, red=0.1), Step(4.9)), loop=True)  # muted: a dim red blip
PATTERNS = {p.name: p for p in (GREET, PROMPT, FAULT, HEARTBEAT, MUTED)}


class Outputs(Protocol):
    def show(self, green: float, red: float, tone: str | None) -> None: ...


class SignalPlayer:
    """Plays patterns on ``outputs`` in the event loop, by priority, timed by ``clock``."""

    def __init__(
        self,
        outputs: Outputs,
        silenced: Callable[[], bool] = lambda: False,
        clock: SignalClock | None = None,
    ) -> None:
        self.outputs = outputs
        self.silenced = silenced
        self.clock: SignalClock = clock if clock is not None else LoopClock()
        self.current: Pattern | None = None
        self.fault = False
        self.muted = False
        self.played: list[str] = []  # names, in order: for the status and tests
        self.failed = False  # the outputs raised: the board needs rebuilding
        self._task: asyncio.Task[None] | None = None

    @property
    def background(self) -> Pattern:
        if self.fault:
            return FAULT
        return MUTED if self.muted else HEARTBEAT

    def play(self, pattern: Pattern) -> bool:
        """Start ``pattern`` now unless something more important is playing."""
        current = self.current
        if current is not None and not current.loop and current.priority >= pattern.priority:
            return False
        if current is not None and current.loop and current.priority > pattern.priority:
            return False
        self._start(pattern)
        return True

    def set_fault(self, active: bool) -> None:
        if active != self.fault:
            self.fault = active
            self._back_to_background(force=True)

    def set_muted(self, active: bool) -> None:
        if active != self.muted:
            self.muted = active
            self._back_to_background(force=False)

    def start(self) -> None:
        self._start(self.background)

    def _back_to_background(self, force: bool) -> None:
        current = self.current
        if current is None or current.loop or force:
            self._start(self.background)

    def _start(self, pattern: Pattern) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = None
        self.current = None
        self.outputs.show(0.0, 0.0, None)  # a clean cut: nothing of the old pattern lingers
        # The first step is shown right here, not when the task first runs: the visitor sees
        # the light as soon as the phone is decided, whatever else the loop is doing.
        self._show(pattern.steps[0])
        self.current = pattern  # only once the outputs took it: a failure leaves no ghost
        self.played.append(pattern.name)
        self._task = asyncio.get_running_loop().create_task(self._run(pattern))

    def _show(self, step: Step) -> None:
        tone = None if self.silenced() or self.muted else step.tone
        self.outputs.show(step.green, step.red, tone)

    async def _run(self, pattern: Pattern) -> None:
        clock = self.clock
        # Each step ends at a deadline counted from the pattern's start, so a late wake-up
        # shortens the next step instead of stretching the whole pattern.
        deadline = clock.monotonic()
        first = True
        try:
            while True:
                for step in pattern.steps:
                    if not first:
                        self._show(step)
                    first = False
                    deadline += step.seconds
                    await clock.sleep(max(0.0, deadline - clock.monotonic()))
                if not pattern.loop:
                    break
        except asyncio.CancelledError:
            return
        except Exception:  # the board failed mid-pattern: dark, and let the owner retry
            log.exception("signal pattern %s failed", pattern.name)
            self.current = None
            self._task = None
            self.failed = True
            return
        self.outputs.show(0.0, 0.0, None)
        self.current = None
        self._task = None
        self._start(self.background)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.current = None
        self.outputs.show(0.0, 0.0, None)
