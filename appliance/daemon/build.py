"""From the configuration to the daemon's parts: every adapter built, wired and complete.

``build`` opens the visit log (closing the stays a crash left open, correcting what an earlier
run of this boot recorded before the clock was set), builds the pipeline, the advertisement
source, the lights and the uploader. ``Parts`` holds them all; nothing in it is filled in later.
Its clocks are the door's (``DoorClock``) and the real wall clock (``wall``), both injected here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from appliance import ble
from appliance.config import Config, load_secret
from appliance.core.doorway import DoorTuning, Doorway, Signal
from appliance.core.pipeline import Pipeline
from appliance.core.presence import PresenceTracker
from appliance.core.tokens import TokenMaker
from appliance.daemon.applier import InboxApplier
from appliance.daemon.clocks import ClockWatch, DoorClock, real_wall
from appliance.daemon.status_doc import StatusFile
from appliance.daemon.ticker import ErrorCount, Flusher
from appliance.errors import CheckpointError
from appliance.protocols.registry import Classifier, DecodeOptions
from appliance.sdnotify import Notifier
from appliance.status import status_path
from appliance.store import VisitLog, WaitForSpace

if TYPE_CHECKING:
    from collections.abc import Callable

    from appliance.gpio.signals import DoorSignals
    from appliance.sync.uploader import Uploader

log = logging.getLogger("checkpoint")

PAPER_VISITOR = "(sổ giấy)"  # the name of a visitor the receptionist registered on paper


class SignalRelay:
    """The doorway's greet or prompt: remembered for the status, played on the lights."""

    def __init__(self, wall_of: Callable[[float], float]) -> None:
        self.wall_of = wall_of
        self.last: dict[str, Any] | None = None
        self.door: DoorSignals | None = None  # set by build(): the lights need the pipeline

    def on_signal(self, signal_: Signal) -> None:
        self.last = {"intent": signal_.intent, "at": self.wall_of(signal_.time)}
        if self.door is not None:
            self.door.signal(signal_)
        log.info("signal %s", signal_.intent)


@dataclass(frozen=True, slots=True)
class SyncLink:
    """The uploader, or why there is none."""

    uploader: Uploader | None = None
    problem: str | None = None  # sync configured but not possible (the status says why)

    def health(self) -> dict[str, Any]:
        if self.uploader is not None:
            # On the uploader's own clock, which set its next attempt.
            return self.uploader.status.as_json(self.uploader.clock.wall())
        if self.problem is not None:
            return {"state": "error", "last_error": self.problem}
        return {"state": "off"}


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything the daemon runs, built from one configuration."""

    config: Config
    simulated: bool
    clock: DoorClock
    # The real wall clock, which the simulated lobby's virtual time does not replace: the
    # status's times, a mute's end, the console's requests, retention.
    wall: Callable[[], float]
    visits: VisitLog
    watch: ClockWatch
    pipeline: Pipeline
    signals: SignalRelay
    source: ble.AdvertisementSource
    door: DoorSignals | None
    sync: SyncLink
    inbox: InboxApplier
    flusher: Flusher
    errors: ErrorCount
    status: StatusFile
    notifier: Notifier

    def close(self) -> None:
        """Close the visit log (the daemon's shutdown flushes first)."""
        self.visits.close()


def close_stale_stays(visits: VisitLog) -> None:
    """Once the visit log is open, before anything of this run is committed: the stays a crash
    left open end."""
    reopened = visits.close_open_entries()
    if reopened:
        log.info("closed %d stays left open by the last run", reopened)


def open_visits(config: Config, clock: DoorClock, tokens: TokenMaker, origin: str) -> VisitLog:
    """The visit log; on a full disk, one that holds decisions in memory until it can open
    (docs/architecture.md §degraded-mode)."""
    visits = VisitLog(
        config.storage.database, origin=origin,
        session=clock.session, key_day_of=tokens.key_day,
        wait_for_space=WaitForSpace(on_open=close_stale_stays),
    )  # fmt: skip
    if visits.waiting is not None:
        log.error("%s: running in degraded mode, entries held in memory", visits.waiting)
    return visits


def make_pipeline(
    config: Config,
    tokens: TokenMaker,
    clock: DoorClock,
    *,
    visits: VisitLog,
    watch: ClockWatch,
    signals: SignalRelay,
    door_tuning: DoorTuning,
) -> Pipeline:
    """Decoders → presence tracker → doorway → visit log and signals."""
    classifier = Classifier(
        DecodeOptions(
            config.protocols.bluezone_ios_overflow_byte,
            config.protocols.bluezone_ios_overflow_mask,
        )
    )
    # A token's key is the wall clock's UTC date now (docs/architecture.md §privacy): the visit
    # log remembers it if the clock is set before the token is recorded.
    tracker = PresenceTracker(
        lambda scheme, raw, when: tokens.token(
            scheme, raw, datetime.fromtimestamp(clock.wall_of(when), UTC)
        )
    )
    return Pipeline(classifier, tracker, Doorway(door_tuning), visits, signals.on_signal,
                    clock_synced=watch.clock_synced)  # fmt: skip


def open_door(
    config: Config, pipeline: Pipeline, clock: DoorClock, paper_visitor: Callable[[], None]
) -> DoorSignals | None:
    """The lights, buzzer, sensor and button, when [gpio] is enabled (gpiozero only then)."""
    if not config.gpio.enabled:
        return None
    from appliance.gpio.clock import LoopClock
    from appliance.gpio.signals import DoorSignals

    return DoorSignals(
        config.gpio, config.checkpoint.timezone, pipeline.on_sensor, paper_visitor,
        clock=LoopClock(door=clock.door_now),
    )  # fmt: skip


def open_sync(config: Config, heartbeat: Callable[[], dict[str, Any]]) -> SyncLink:
    sync = config.sync
    if sync is None or not sync.url:
        return SyncLink()
    from appliance.store.outbox import Outbox
    from appliance.sync import build_uploader

    database = config.storage.database
    try:
        return SyncLink(build_uploader(config, outbox=lambda: Outbox(database), health=heartbeat))
    except CheckpointError as exc:
        # Visits are still recorded and kept in the outbox; the status says why not sent.
        log.error("sync off: %s", exc)
        return SyncLink(problem=str(exc))


def build(
    config: Config,
    *,
    simulate: bool = False,
    speed: float = 1.0,
    door_tuning: DoorTuning | None = None,
    wall: Callable[[], float] = real_wall,
    live_simulation: bool = False,
) -> Parts:
    """The daemon's parts; ``door_tuning`` replaces the doorway's (tests give a sensor), and
    ``wall`` the real wall clock (Parts.wall). ``live_simulation`` (tests only: the crash test)
    marks the simulated lobby's entries live, so the uploader sends them like a door's."""
    simulated = simulate or live_simulation or config.ble.source == "simulate"
    if live_simulation:
        log.warning(
            "TEST ONLY: simulated entries are recorded as live and sent to the collector;"
            " never run --simulate-live on a door unit"
        )
    tokens = TokenMaker(load_secret(config, create=simulated))
    # The door's clock never steps with NTP; in simulation the lobby's clock is the door's.
    clock = DoorClock.simulated(speed) if simulated else DoorClock.live()
    origin = "simulated" if simulated and not live_simulation else "live"
    visits = open_visits(config, clock, tokens, origin)
    watch = ClockWatch(visits, simulated=simulated)
    watch.check()  # a run restarted after sync corrects what this boot left
    signals = SignalRelay(clock.wall_of)
    # The simulated lobby has a two-beam door; a real one has what [gpio] sensor says.
    has_sensor = simulated or (config.gpio.enabled and config.gpio.sensor != "none")
    tuning = door_tuning or DoorTuning(sensor=has_sensor)
    pipeline = make_pipeline(config, tokens, clock, visits=visits, watch=watch, signals=signals,
                             door_tuning=tuning)  # fmt: skip
    errors = ErrorCount()

    def paper_visitor() -> None:
        """The receptionist's long press: a visitor registered on paper, queued with the
        doorway's decisions (nothing else keeps it: a full disk must not lose it)."""
        visits.queue_manual(PAPER_VISITOR, clock_synced=watch.synced)
        log.info("manual entry: visitor registered on paper")

    door = open_door(config, pipeline, clock, paper_visitor)
    signals.door = door
    wiring = ble.Wiring(
        pipeline, clock=clock.door_now, wall_of=clock.wall_of,
        utc_offset=lambda: pipeline.tracker.utc_offset_s, on_error=errors.add,
    )  # fmt: skip
    source = ble.open_source(config.ble, wiring, simulate=simulated, speed=speed)
    status = StatusFile(status_path(config), simulated=simulated, wall=wall)
    return Parts(
        config=config, simulated=simulated, clock=clock, wall=wall, visits=visits, watch=watch,
        pipeline=pipeline, signals=signals, source=source, door=door,
        sync=open_sync(config, status.heartbeat),
        inbox=InboxApplier(config.storage.database, visits, mute_minutes=config.gpio.mute_minutes,
                           clock_synced=watch.clock_synced, door=door, wall=wall),
        flusher=Flusher(visits), errors=errors, status=status, notifier=Notifier(),
    )  # fmt: skip
