"""The doorway: joins app presences with the door's presence sensor into entries and signals.

Pure and synchronous, time passed in. An *entry with app* is a new app presence near the door
within a window around a sensor event going in; an *entry with no app detected* is a sensor
event going in that no app presence explains; an app presence with an *out* event is someone
leaving. Without a sensor every new app presence is an entry. With one undirected sensor (a
PIR) every crossing counts as going in: exits cannot be told apart, and reports say so.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.models import PresenceEvent, SensorEvent

APP = "app"
NO_APP = "no_app"
MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class DoorTuning:
    """The doorway's windows, with the reason for each."""

    sensor: bool = True  # False: no presence sensor wired; every app presence is an entry
    # A phone is usually heard while its owner walks up to the door, seconds before the sensor.
    match_before_s: float = 12.0
    # …or only after it: Android Bluezone in the background is silent 15 s out of 30, so its
    # owner may be through the door before the phone is heard. The no-app prompt waits this
    # long rather than prompt someone who has the app.
    match_after_s: float = 17.0
    # A phone first heard after a crossing is usually the next visitor walking up, heard a few
    # seconds before they reach the door. Only when no crossing follows this soon, and the
    # phone is still near (someone leaving walks out of range within seconds), is it taken as
    # the late phone of someone who already came in.
    late_grace_s: float = 10.0
    # While the tracker is still deciding about a strong new identifier (a rotation or a new
    # phone?), the prompt waits for it, but never longer than this.
    max_hold_s: float = 25.0
    # Someone may wait outside with the app open before coming in: an unmatched app presence
    # stays matchable this long.
    pending_max_s: float = 180.0
    # PIR sensors retrigger while a person is in view: one crossing, one event.
    debounce_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Entry:
    """A decided entry. ``time`` is when the person came in (UNIX seconds, UTC)."""

    uuid: str
    kind: str  # APP | NO_APP | MANUAL
    time: float
    protocol: str | None = None
    tokens: tuple[tuple[str, float], ...] = ()  # (token, first seen)
    via_sensor: bool = False


@dataclass(frozen=True, slots=True)
class EntryUpdate:
    """Later news of an app entry: the phone left, or showed a new identifier."""

    uuid: str
    left_at: float | None = None
    token: tuple[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """What the door should show: ``greet`` or ``prompt`` (gpio turns these into patterns)."""

    intent: str
    time: float


Decision = Entry | EntryUpdate | Signal


def adoption_rate(counts: dict[str, int]) -> float | None:
    """Share of sensed entries that had the app: app / (app + no app).

    Manual entries are reported beside it, not in it: a receptionist often registers on paper
    someone the sensor already counted as "no app".
    """
    sensed = counts.get(APP, 0) + counts.get(NO_APP, 0)
    return counts.get(APP, 0) / sensed if sensed else None


@dataclass(slots=True)
class _Waiting:
    """An app presence near the door that no crossing has explained yet."""

    event: PresenceEvent
    tokens: list[tuple[str, float]] = field(default_factory=list)
    # Taken, tentatively, by a crossing going out at this time: someone leaving. A crossing
    # going in soon after takes it back, since prompting a visitor who has the app is the
    # worse mistake.
    exit_claim: float | None = None


@dataclass(slots=True)
class _Crossing:
    event: SensorEvent
    matched: bool = False
    # Going in, with only a phone that an exit took just before: whoever stays near the door
    # afterwards came in (people leaving walk out of range within seconds).
    contested: _Waiting | None = None


class Doorway:
    """Decides entries from presence and sensor events."""

    def __init__(
        self,
        tuning: DoorTuning | None = None,
        new_uuid: Callable[[], str] = lambda: str(uuidlib.uuid4()),
    ) -> None:
        self.tuning = tuning or DoorTuning()
        self._new_uuid = new_uuid
        self._waiting: dict[int, _Waiting] = {}
        self._entries: dict[int, str] = {}  # presence id → entry uuid, until it leaves
        self._crossings: list[_Crossing] = []
        self._last_sensor: dict[str | None, float] = {}
        self.exits = 0
        self.lobby_presences = 0  # app presences that never came through the door
        self.debounced = 0

    @property
    def open_entries(self) -> int:
        return len(self._entries)

    # -- input -----------------------------------------------------------------------------

    def on_presence(self, event: PresenceEvent) -> list[Decision]:
        pid = event.presence_id
        if event.kind == "entered":
            token = [(event.token, event.time)] if event.token else []
            waiting = _Waiting(event, token)
            if not self.tuning.sensor:
                return self._enter(waiting, event.time, via_sensor=False)
            self._waiting[pid] = waiting
            return []
        if event.kind == "identifier":
            if event.token is None:
                return []
            if pid in self._entries:
                return [EntryUpdate(self._entries[pid], token=(event.token, event.time))]
            if pid in self._waiting:
                self._waiting[pid].tokens.append((event.token, event.time))
            return []
        # left
        if pid in self._entries:
            return [EntryUpdate(self._entries.pop(pid), left_at=event.time)]
        gone = self._waiting.pop(pid, None)
        if gone is not None and gone.exit_claim is None:
            self.lobby_presences += 1
        return []

    def on_sensor(self, event: SensorEvent) -> list[Decision]:
        if not self.tuning.sensor:
            return []  # a sensor that is not configured cannot be trusted
        last = self._last_sensor.get(event.direction)
        self._last_sensor[event.direction] = event.time
        if last is not None and event.time - last < self.tuning.debounce_s:
            self.debounced += 1
            return []
        crossing = _Crossing(event)
        self._crossings.append(crossing)
        # One crossing, one person: the phone that walked up first goes through first. Others
        # near the door wait for their own crossing.
        window_start = event.time - self.tuning.match_before_s
        fresh = [w for w in self._waiting.values() if window_start <= w.event.time <= event.time]
        unclaimed = [w for w in fresh if w.exit_claim is None]
        waiting = min(unclaimed, key=lambda w: w.event.time, default=None)
        if event.direction == "out":
            if waiting is not None:
                waiting.exit_claim = event.time
                crossing.matched = True
                self.exits += 1
            return []
        if waiting is None:
            # A phone an exit took just now may in fact be this visitor's: decided when the
            # crossing is, by whether the phone stayed.
            crossing.contested = min(
                (w for w in fresh if w.exit_claim is not None),
                key=lambda w: w.event.time,
                default=None,
            )
            if crossing.contested is not None:
                return []
        if waiting is None:
            # Nobody new walked up, but someone may have waited outside with the app open.
            waiting = min(
                (w for w in self._waiting.values()
                 if w.event.time < window_start and w.exit_claim is None),
                key=lambda w: w.event.time,
                default=None,
            )  # fmt: skip
        if waiting is None:
            return []
        return self._match(waiting, crossing, event.time)

    def tick(
        self,
        now: float,
        hold: bool = False,
        still_near: Callable[[int, float], bool] | None = None,
    ) -> list[Decision]:
        """Match late phones, decide crossings whose window has passed; ``hold`` defers
        the no-app decision while the tracker is still deciding about a strong identifier."""
        tuning = self.tuning
        decisions: list[Decision] = []
        for waiting in sorted(self._waiting.values(), key=lambda w: w.event.time):
            if waiting.exit_claim is not None:
                continue  # leaving: it goes when the tracker says the phone left
            # Late phones: heard after a crossing, and no new crossing came for them.
            if now - waiting.event.time >= tuning.late_grace_s:
                crossing = self._late_crossing(waiting.event.time)
                if crossing is not None:
                    decisions += self._match(waiting, crossing, now)
        keep: list[_Crossing] = []
        for crossing in self._crossings:
            age = now - crossing.event.time
            if age < tuning.match_after_s or (hold and age < tuning.max_hold_s):
                keep.append(crossing)
                continue
            if crossing.matched or crossing.event.direction == "out":
                continue  # nobody is prompted on the way out
            contested = crossing.contested
            if (
                contested is not None
                and contested.event.presence_id in self._waiting
                and (still_near is None or still_near(contested.event.presence_id, now))
            ):
                self.exits -= 1  # the phone stayed: its owner came in, nobody went out
                decisions += self._match(contested, crossing, now)
                continue
            late = min(
                (
                    w
                    for w in self._waiting.values()
                    if w.event.time >= crossing.event.time and w.exit_claim is None
                ),
                key=lambda w: w.event.time,
                default=None,
            )
            if late is not None:
                decisions += self._match(late, crossing, now)
            else:
                decisions.append(
                    Entry(self._new_uuid(), NO_APP, crossing.event.time, via_sensor=True)
                )
                decisions.append(Signal("prompt", now))
        self._crossings = keep
        horizon = now - tuning.pending_max_s
        for pid in [p for p, w in self._waiting.items() if w.event.time < horizon]:
            del self._waiting[pid]
            self.lobby_presences += 1
        return decisions

    def close(self, now: float) -> list[Decision]:
        """Decide everything still open (shutdown, end of a capture)."""
        return self.tick(now + self.tuning.max_hold_s + self.tuning.match_after_s)

    # -- internals -------------------------------------------------------------------------

    def _late_crossing(self, heard: float) -> _Crossing | None:
        """The latest unexplained crossing before a phone was first heard near the door: if
        it went out, the phone is that person's, leaving."""
        for crossing in reversed(self._crossings):
            if not crossing.matched and crossing.event.time <= heard:
                return crossing
        return None

    def _match(self, waiting: _Waiting, crossing: _Crossing, now: float) -> list[Decision]:
        del self._waiting[waiting.event.presence_id]
        crossing.matched = True
        if crossing.event.direction == "out":
            self.exits += 1
            return []
        return self._enter(waiting, crossing.event.time, via_sensor=True, signal_at=now)

    def _enter(
        self, waiting: _Waiting, when: float, via_sensor: bool, signal_at: float | None = None
    ) -> list[Decision]:
        event = waiting.event
        entry = Entry(
            self._new_uuid(), APP, when, event.protocol, tuple(waiting.tokens), via_sensor
        )
        self._entries[event.presence_id] = entry.uuid
        return [entry, Signal("greet", event.time if signal_at is None else signal_at)]
