"""The daemon: the composition root that builds the adapters from the configuration and runs
the door pipeline on one asyncio loop.

Advertisements (BlueZ, or the simulated lobby) and door crossings feed ``Pipeline``; a ticker
advances its clock, commits the visit log about once a second and writes the status file. On
SIGTERM or SIGINT everything still open is decided, flushed and closed, in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from appliance import __version__, clock
from appliance.ble.simulator import Lobby, busy_scenario
from appliance.config import Config, load_secret
from appliance.core.doorway import DoorTuning, Doorway, Signal
from appliance.core.presence import PresenceTracker
from appliance.core.tokens import TokenMaker
from appliance.errors import CheckpointError, StoreError
from appliance.models import SensorEvent, Sighting
from appliance.pipeline import TICK_S, Pipeline
from appliance.protocols.registry import Classifier, DecodeOptions
from appliance.sdnotify import Notifier
from appliance.status import status_path, write_status
from appliance.store import VisitLog

if TYPE_CHECKING:
    from appliance.ble.gatt import GattIdReader
    from appliance.ble.health import ScannerSupervisor
    from appliance.gpio.signals import DoorSignals
    from appliance.sync.uploader import Uploader

log = logging.getLogger("checkpoint")

FLUSH_S = 1.0  # at most about one commit a second; an entry is on disk within 2 s
STATUS_S = 1.0  # the console refreshes about once a second
YIELD_EVERY = 200  # events handled before letting the ticker run, when catching up
PAPER_VISITOR = "(sổ giấy)"  # the name of a visitor the receptionist registered on paper
RETENTION_EVERY_S = 3600  # retention is by the day: hourly is plenty
SIMULATION_PREROLL_S = 15 * 60  # simulated lobby history replayed at start-up
DISK_LOW_BYTES = 50 * 1024 * 1024  # below this, warn: SQLite needs room for its journal
# adjtimex is cheap, but decisions are many: the answer is kept this long. A record taken in
# the second after sync is still marked unsynchronised, and corrected with the rest.
CLOCK_CHECK_S = 1.0
CLOCK_STEP_S = 1.0  # a request's wall and boot times further apart: the clock was set since


def _request_time(value: Any) -> float | None:
    """The time a console request was made, if it is believable: a number (not a boolean),
    not in the future (beyond a minute of clock difference) and after 2000."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if not 946684800 <= value <= time.time() + 60:
        return None
    return float(value)


def _manual_time(data: dict[str, Any]) -> tuple[float | None, tuple[str, float] | None]:
    """When a visitor typed at the console came in, and that time on this boot's clock.

    The console reads both clocks (appliance.visitors). A request from this boot gets its
    time from the boot clock whenever the wall clock was set since it was typed (NTP, after a
    power cut): its ``at`` would be wrong by that step. Any other request has its ``at`` only.
    """
    at = _request_time(data.get("at"))
    boot_id, boot_s = data.get("boot_id"), data.get("boot_s")
    if boot_id is None or boot_id != clock.boot_id():
        return at, None
    if isinstance(boot_s, bool) or not isinstance(boot_s, int | float) or not math.isfinite(boot_s):
        return at, None
    from_boot = _request_time(time.time() - (clock.boottime() - boot_s))
    if from_boot is None:
        return at, None
    if at is None or abs(from_boot - at) > CLOCK_STEP_S:
        at = from_boot
    return at, (str(boot_id), float(boot_s))


def local_day_bounds(now: float, timezone: str) -> tuple[float, float]:
    """UNIX seconds of the start and end of the local day containing ``now``."""
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now, zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=zone)
    return start.timestamp(), end.timestamp()


class SimulatedSource:
    """The simulated lobby, paced against the wall clock (``speed`` × real time)."""

    name = "simulate"

    def __init__(self, speed: float = 1.0, seed: int = 7, hours: float = 2.0) -> None:
        self.speed = speed
        self.seed = seed
        self.hours = hours
        self._wall_start = time.time()
        self._virtual_start = self._wall_start
        # The lobby opened a little before the daemon started: its first minutes are replayed
        # at once, so the console has people and history to show from the first second.
        self.lobby = self._new_lobby(self._virtual_start - SIMULATION_PREROLL_S)

    def _new_lobby(self, start: float) -> Lobby:
        return Lobby(busy_scenario(start, self.hours, self.seed))

    def now(self) -> float:
        return self._virtual_start + (time.time() - self._wall_start) * self.speed

    async def events(self) -> AsyncIterator[Sighting | SensorEvent]:
        handled = 0
        while True:
            for event in self.lobby.events():
                delay = (event.time - self.now()) / self.speed
                if delay > 0:
                    await asyncio.sleep(delay)
                    handled = 0
                else:
                    handled += 1
                    if handled % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                yield event
            # The day is over: a new one, so the demo never runs dry.
            self.seed += 1
            self.lobby = self._new_lobby(self.now())


class Daemon:
    def __init__(self, config: Config, *, simulate: bool = False, speed: float = 1.0) -> None:
        self.config = config
        self.simulate = simulate or config.ble.source == "simulate"
        self.speed = speed
        self.status_file = status_path(config)
        self.started_at = time.time()
        self.last_signal: dict[str, Any] | None = None
        self.errors = 0
        self.store_error: str | None = None
        self._stop = asyncio.Event()
        self._source_task: asyncio.Task[None] | None = None
        self.exit_code: int | None = None
        self.uploader: Uploader | None = None
        self.sync_problem: str | None = None
        self.last_status: dict[str, Any] = {}
        self.muted_until = 0.0  # wall time; the console shows it
        self._stuck: set[str] = set()  # inbox requests applied but not removable
        self.notify = Notifier()  # systemd's Type=notify and watchdog (no-op outside systemd)
        self.clock_synced = True  # the last answer of clock.is_synchronized (see _watch_clock)
        self._clock_checked = -math.inf  # time.monotonic() of that answer
        self._correction_due = False  # records of this boot wait for a correction
        # The door's clock (clock.SessionClock): never stepped by NTP; None in simulation,
        # where the lobby's virtual clock is the door's and the wall's.
        self.session: clock.SessionClock | None = None

    # -- composition -----------------------------------------------------------------------

    def _build(self) -> None:
        config = self.config
        secret = load_secret(config, create=self.simulate)
        tokens = TokenMaker(secret)
        self.session = None if self.simulate else clock.SessionClock.start()
        self.store = VisitLog(
            config.storage.database, origin="simulated" if self.simulate else "live",
            session=self.session, key_day_of=tokens.key_day,
        )  # fmt: skip
        reopened = self.store.close_open_entries()
        if reopened:
            log.info("closed %d stays left open by the last run", reopened)
        # A run restarted after sync corrects what an earlier run of this boot left; a clock
        # not yet synchronised is only noted (nothing at start-up waits for the network).
        self._correction_due = True
        self._watch_clock()
        classifier = Classifier(
            DecodeOptions(
                config.protocols.bluezone_ios_overflow_byte,
                config.protocols.bluezone_ios_overflow_mask,
            )
        )
        # A token's day key is the UTC date of the wall clock now (DESIGN.md §4.3): the visit
        # log remembers it if the clock is set before the token is recorded.
        tracker = PresenceTracker(
            lambda scheme, raw, when: tokens.token(
                scheme, raw, datetime.fromtimestamp(self.wall_of(when), UTC)
            )
        )
        # The simulated lobby has a two-beam door; a real one has what [gpio] sensor says.
        has_sensor = self.simulate or (config.gpio.enabled and config.gpio.sensor != "none")
        doorway = Doorway(DoorTuning(sensor=has_sensor))
        self.pipeline = Pipeline(
            classifier, tracker, doorway, self.store, self._on_signal,
            clock_synced=lambda: self.clock_synced,
        )  # fmt: skip
        self.source: SimulatedSource | None = None
        self.supervisor: ScannerSupervisor | None = None
        self.door: DoorSignals | None = None
        if config.gpio.enabled:
            from appliance.gpio.clock import LoopClock
            from appliance.gpio.signals import DoorSignals

            self.door = DoorSignals(
                config.gpio, config.checkpoint.timezone, self.pipeline.on_sensor,
                self._paper_visitor, clock=LoopClock(door=self.core_now),
            )  # fmt: skip
        self.gatt: GattIdReader | None = None
        if self.simulate:
            self.source = SimulatedSource(self.speed)
        elif config.ble.source == "bluez":
            from appliance.ble.health import ScannerSupervisor
            from appliance.ble.scanner import BluezScanner

            scanner = BluezScanner(
                config.ble.adapter, self.pipeline.on_sighting, scanning=config.ble.scanning,
                clock=self.core_now,
            )  # fmt: skip
            # The supervisor compares its time with the scanner's last report: the same clock.
            self.supervisor = ScannerSupervisor(scanner, clock=self.core_now)
            if config.ble.gatt_reads:
                from appliance.ble.gatt import GattIdReader

                pipeline = self.pipeline
                self.gatt = GattIdReader(
                    config.ble.adapter,
                    lambda address, raw, when: pipeline.identify(
                        "bluezone-ios", address, raw, when
                    ),
                    min_interval_s=config.ble.gatt_min_interval_s,
                    clock=self.core_now,
                    utc_offset=self.utc_offset,
                    devices=scanner.devices,
                )
                pipeline.on_needs_gatt = self.gatt.request

        self._build_sync()

    def _build_sync(self) -> None:
        sync = self.config.sync
        if sync is None or not sync.url:
            return
        from appliance.store.outbox import Outbox
        from appliance.sync import build_uploader

        database = self.config.storage.database
        try:
            self.uploader = build_uploader(
                self.config, outbox=lambda: Outbox(database), health=self._heartbeat_health
            )
        except CheckpointError as exc:
            # Visits are still recorded and kept in the outbox; the status says why not sent.
            self.sync_problem = str(exc)
            log.error("sync off: %s", exc)

    def _heartbeat_health(self) -> dict[str, Any]:
        """What the collector is told in the heartbeat: the last status, no personal data."""
        status = self.last_status
        return {
            "version": __version__,
            "state": status.get("state"),
            "simulated": self.simulate,
            "health": {k: v for k, v in status.get("health", {}).items() if k != "sync"},
            "today": status.get("today", {}),
            "errors": status.get("errors", 0),
            "uptime_s": round(time.time() - self.started_at),
        }

    def now(self) -> float:
        """Wall time (the simulated lobby's virtual time): for the status and quiet hours."""
        return self.source.now() if self.source is not None else time.time()

    def core_now(self) -> float:
        """The door's time: what sightings, sensor events and the ticker are stamped with."""
        if self.session is not None:
            return self.session.now()
        return self.now()

    def wall_of(self, t: float) -> float:
        """A door time as wall time, with the wall clock's offset now."""
        return t if self.session is None else self.session.to_wall(t)

    def utc_offset(self) -> float:
        """What to add to a door time for UTC (Bluezone's quarter-hours are UTC's): the wall
        clock's step since the daemon started, as the ticker last read it."""
        return self.pipeline.tracker.utc_offset_s

    def _on_signal(self, signal_: Signal) -> None:
        self.last_signal = {"intent": signal_.intent, "at": self.wall_of(signal_.time)}
        if self.door is not None:
            self.door.signal(signal_)
        log.info("signal %s", signal_.intent)

    def _paper_visitor(self) -> None:
        """The receptionist's long press: a visitor registered on paper."""
        try:
            self.store.add_manual(PAPER_VISITOR, clock_synced=self.pipeline.clock_synced())
            log.info("manual entry: visitor registered on paper")
        except CheckpointError as exc:
            log.error("%s", exc)

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> int:
        self._build()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        log.info(
            "checkpoint %s running: door %s, source %s, database %s",
            __version__, self.config.checkpoint.id,
            self.source.name if self.source else "none", self.config.storage.database,
        )  # fmt: skip
        tasks = [asyncio.create_task(self._ticker(), name="ticker")]
        if self.supervisor is not None:
            await self.supervisor.start()
            tasks.append(asyncio.create_task(self._supervise(self.supervisor), name="scanner"))
        if self.gatt is not None:
            tasks.append(asyncio.create_task(self.gatt.run(), name="gatt"))
        if self.source is not None:
            self._source_task = asyncio.create_task(self._consume(self.source), name="source")
            tasks.append(self._source_task)
        self._write_status("running")
        # Ready: the visit log is open and migrated, the pipeline built, the source started.
        self.notify.ready(f"recording at {self.config.checkpoint.id}")
        if self.uploader is not None:
            self.uploader.start()
        try:
            await self._stop.wait()
        finally:
            if self.uploader is not None:
                self.uploader.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                if self.supervisor is not None:
                    await self.supervisor.close()
            except Exception:  # nothing may keep the visit log from being flushed
                log.exception("closing the scanner")
            if self.door is not None:
                self.door.close()
            lost = self._shutdown()
        if self.exit_code is not None:
            return self.exit_code
        return 1 if lost else 0

    async def _supervise(self, supervisor: ScannerSupervisor) -> None:
        """Run the scanner's healing ladder; when it gives up, stop with its exit code."""
        self.exit_code = await supervisor.run()
        log.error(
            "scanner could not recover: exiting with %d for the recovery helper", self.exit_code
        )
        self._stop.set()

    async def _consume(self, source: SimulatedSource) -> None:
        pipeline = self.pipeline
        async for event in source.events():
            try:
                if isinstance(event, Sighting):
                    pipeline.on_sighting(event)
                else:
                    pipeline.on_sensor(event)
            except Exception:  # a bug must not stop the door: log it, count it, go on
                self.errors += 1
                log.exception("error handling %r", event)

    def _watch_clock(self) -> None:
        """Ask the kernel whether the clock is synchronised (at most once per CLOCK_CHECK_S);
        once it is, correct the records this boot took before (DESIGN.md §4.4)."""
        checked = time.monotonic()
        if checked - self._clock_checked < CLOCK_CHECK_S:
            return
        self._clock_checked = checked
        # The simulated lobby runs on a virtual clock: treated as synchronised, as always.
        synced = self.simulate or clock.is_synchronized()
        if synced and not self.clock_synced:
            self._correction_due = True
        self.clock_synced = synced
        if synced and self._correction_due:
            self._correct_clock()

    def _correct_clock(self) -> None:
        reading = clock.read_boot()
        if reading is None:  # no boot ID (not Linux): nothing was recorded for correction
            self._correction_due = False
            return
        try:
            corrected = self.store.correct_clock(reading.wall, reading.boot_s, reading.boot_id)
        except StoreError as exc:
            log.error("clock correction postponed: %s", exc)  # tried again next second
            return
        self._correction_due = False
        if corrected:
            log.info("clock synchronised: corrected %d records taken before sync", corrected)

    def _retention(self) -> None:
        """Delete what is past retention; with a collector, only what it has acknowledged
        (the same pass as `checkpoint maintenance`)."""
        from appliance.maintenance import apply_retention

        try:
            done = apply_retention(
                self.store, self.config, time.time(), clock_synced=self.clock_synced
            )
        except StoreError as exc:
            log.error("retention: %s", exc)
            return
        if done.postponed:
            # A clock that later jumps forward would make today look weeks old.
            log.info("retention postponed: the clock is not synchronised")
        elif done.removed_anything:
            log.info(
                "retention removed %d entries, %d manual details, %d refused inbox requests",
                done.entries,
                done.manual_details,
                done.inbox_requests,
            )

    async def _ticker(self) -> None:
        last_flush = last_status = 0.0
        last_retention = time.monotonic()
        self._retention()
        while True:
            await asyncio.sleep(TICK_S)
            try:
                self._watch_clock()
            except Exception:
                self.errors += 1
                log.exception("error checking the clock")
            try:
                if self.session is not None:
                    reading = clock.read_boot()
                    if reading is not None:  # Bluezone's quarter-hours are the wall clock's
                        self.pipeline.tracker.utc_offset_s = self.session.wall_shift(reading)
                self.pipeline.tick(self.core_now())
                if self.door is not None:
                    self.door.tick(fault=self._fault())
            except Exception:
                self.errors += 1
                log.exception("error in tick")
            wall = time.monotonic()
            try:
                if wall - last_flush >= FLUSH_S:
                    last_flush = wall
                    self._flush()
                    self._inbox()
                if wall - last_retention >= RETENTION_EVERY_S:
                    last_retention = wall
                    self._retention()
                if wall - last_status >= STATUS_S:
                    last_status = wall
                    self._write_status("running")
            except Exception:  # the ticker is the daemon's heartbeat: it must go on
                self.errors += 1
                log.exception("error in the ticker")
            else:
                # Only a loop that goes round pings the watchdog: a wedged loop gets restarted.
                self.notify.watchdog()

    def _inbox(self) -> None:
        """Apply what the console and `checkpoint log-visitor` asked for (appliance.inbox)."""
        from appliance import inbox
        from appliance.errors import VisitorError
        from appliance.visitors import validate

        waiting = [p for p in inbox.pending(self.config.storage.database) if p.name not in
                   self._stuck]  # fmt: skip
        for path in waiting[:50]:
            request = inbox.read(path)
            if request is None:
                continue
            data = request.data
            if request.kind == "mute":
                minutes = data.get("minutes", self.config.gpio.mute_minutes)
                if (
                    isinstance(minutes, bool)
                    or not isinstance(minutes, int | float)
                    or not 0 < minutes <= 24 * 60
                ):
                    inbox.reject(path, f"bad minutes {minutes!r}")
                    continue
                at = data.get("at")
                asked = _request_time(at)
                until = (asked if asked is not None else time.time()) + float(minutes) * 60
                left = until - time.time()
                if left > 0:  # a request read late (the daemon was down) mutes what is left
                    self.muted_until = until
                    if self.door is not None:
                        self.door.mute(left / 60)
                    log.info("muted for %.0f s from the console", left)
                self._done(path)
            elif request.kind == "manual":
                try:
                    visitor = validate(
                        data.get("name"), data.get("organisation"), data.get("phone"),
                        data.get("purpose"), lang="en",
                    )  # fmt: skip
                    at_value, when_boot = _manual_time(data)
                    entry_uuid = str(data["uuid"])
                    if at_value is None:
                        raise ValueError(f"bad time {data.get('at')!r}")
                    at = at_value
                except (VisitorError, KeyError, TypeError, ValueError) as exc:
                    inbox.reject(path, str(exc))
                    continue
                try:
                    self.store.add_manual(
                        visitor.name, organisation=visitor.organisation, phone=visitor.phone,
                        purpose=visitor.purpose, when=at, entry_uuid=entry_uuid,
                        clock_synced=self.pipeline.clock_synced(), when_boot=when_boot,
                    )  # fmt: skip
                except StoreError as exc:
                    log.error("manual entry waits in the inbox: %s", exc)
                    return  # kept: tried again next tick
                log.info("manual entry recorded from the console")
                self._done(path)
            else:
                inbox.reject(path, f"unknown request {request.kind!r}")

    def _done(self, path: Path) -> None:
        """Remove an applied request; one that cannot be removed is skipped from now on
        (applying it again would be harmless, but it must not hold up the others)."""
        from appliance import inbox

        try:
            inbox.done(path)
        except OSError as exc:
            if path.name not in self._stuck:
                log.error("inbox: applied %s but cannot remove it: %s", path.name, exc)
            self._stuck.add(path.name)

    def _flush(self) -> None:
        try:
            self.store.flush()
            self.store_error = None
        except StoreError as exc:
            if str(exc) != self.store_error:
                log.error("%s", exc)
            self.store_error = str(exc)

    def _shutdown(self) -> int:
        """Close down; returns how many decided records could not be committed."""
        log.info("stopping: deciding open entries and flushing")
        self.notify.stopping()
        try:
            self.pipeline.close(self.core_now())
        except Exception:
            self.errors += 1
            log.exception("error closing the pipeline")
        self._flush()
        lost = self.store.pending
        if lost:
            log.error("%d decided entries could not be written: %s", lost, self.store_error)
        self._write_status("stopped")
        try:
            self.store.close()
        except CheckpointError as exc:
            log.error("%s", exc)
        return lost

    # -- status ----------------------------------------------------------------------------

    def _fault(self) -> bool:
        """What the door's fault pattern shows: the scanner down, or the visit log failing."""
        scanner = self._scanner_health()
        return scanner.get("state") not in ("ok", "starting") or self.store_error is not None

    def _scanner_health(self) -> dict[str, Any]:
        if self.supervisor is not None:
            scanner = self.supervisor.scanner.state
            health = self.supervisor.health.as_json()
            return {
                **health,
                "since": self.wall_of(health["since"]),  # the supervisor's clock is the door's
                "source": "bluez",
                "mode": scanner.mode,
                "fallback": scanner.fallback_reason,
                "reports": scanner.reports,
                "gatt_reads": self.gatt.reads if self.gatt else None,
                "gatt_failures": self.gatt.failures if self.gatt else None,
            }
        name = self.source.name if self.source else "none"
        task = self._source_task
        if task is not None and task.done():
            return {"state": "error", "source": name, "message": "the advertisement source stopped"}
        return {"state": "ok", "source": name}

    def _health(self) -> dict[str, Any]:
        database = self.config.storage.database
        try:
            free = shutil.disk_usage(database.parent).free
        except OSError:
            free = -1
        disk_ok = free < 0 or free >= DISK_LOW_BYTES
        return {
            "scanner": self._scanner_health(),
            "store": {
                "state": "error" if self.store_error else "ok",
                "message": self.store_error,
                "pending": self.store.pending,
            },
            "clock": self._clock_health(),
            "disk": {"state": "ok" if disk_ok else "low", "free_bytes": free},
            "sync": self._sync_health(),
            "gpio": self.door.status() if self.door is not None else {"state": "off"},
        }

    def _clock_health(self) -> dict[str, Any]:
        """Synchronised or not, and how many records of this boot wait for it to be."""
        try:
            waiting = self.store.awaiting_clock_correction(clock.boot_id())
        except (StoreError, sqlite3.Error):
            waiting = None
        return {"synchronized": self.clock_synced, "awaiting_correction": waiting}

    def _door_state(self) -> dict[str, Any]:
        """What the box is doing besides greeting and prompting: muted, quiet hours."""
        from appliance.core.quiet_hours import in_quiet_hours, parse_quiet_hours

        zone = ZoneInfo(self.config.checkpoint.timezone)
        quiet = in_quiet_hours(
            datetime.fromtimestamp(self.now(), zone),
            parse_quiet_hours(self.config.gpio.quiet_hours),
        )
        muted_until = self.muted_until if self.muted_until > time.time() else None
        return {"muted_until": muted_until, "quiet_hours": quiet}

    def _sync_health(self) -> dict[str, Any]:
        if self.uploader is not None:
            return self.uploader.status.as_json(time.time())
        if self.sync_problem is not None:
            return {"state": "error", "last_error": self.sync_problem}
        return {"state": "off"}

    def _write_status(self, state: str) -> None:
        now = self.now()
        start, end = local_day_bounds(now, self.config.checkpoint.timezone)
        try:
            today = self.store.counts(start, end)
        except Exception:
            today = {}
        tracker = self.pipeline.tracker
        status = {
            "state": state,
            "version": __version__,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "updated_at": time.time(),
            "now": now,
            "checkpoint": {
                "id": self.config.checkpoint.id,
                "agency": self.config.checkpoint.agency,
                "door": self.config.checkpoint.door,
            },
            "database": str(Path(self.config.storage.database)),
            "simulated": self.simulate,
            "health": self._health(),
            "counters": self.pipeline.counters.as_json(),
            "errors": self.errors,
            "present": tracker.present,
            "tracked": tracker.tracked,
            "today": today,
            "last_signal": self.last_signal,
            "door": self._door_state(),
        }
        self.last_status = status
        try:
            write_status(self.status_file, status)
        except OSError as exc:
            log.warning("cannot write status file %s: %s", self.status_file, exc)


def run_daemon(config: Config, *, simulate: bool = False, speed: float = 1.0) -> int:
    from appliance.logs import logging_setup

    logging_setup()
    return asyncio.run(Daemon(config, simulate=simulate, speed=speed).run())
