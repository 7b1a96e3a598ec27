"""Upkeep of the visit log: the retention the daemon runs hourly, and `checkpoint maintenance`,
the daily timer's once-through of integrity check, retention, WAL checkpoint and optimize.

Safe beside the running daemon: SQLite in WAL mode lets it read while the daemon writes, and
every write here waits for the daemon's (busy timeout) instead of failing at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance import clock, inbox
from appliance.config import Config
from appliance.errors import StoreError
from appliance.store import VisitLog

DAY_S = 86400
# The daemon commits about once a second: a checkpoint that cannot get the database to itself
# within this long gives up on truncating rather than hold the daemon's next commit back.
CHECKPOINT_BUSY_TIMEOUT_MS = 1000


@dataclass(frozen=True, slots=True)
class Retention:
    """What one pass of retention did; ``postponed`` when the clock could not be trusted."""

    postponed: bool = False
    entries: int = 0
    manual_details: int = 0
    inbox_requests: int = 0

    @property
    def removed_anything(self) -> bool:
        return bool(self.entries or self.manual_details or self.inbox_requests)


def apply_retention(
    store: VisitLog, config: Config, now: float, *, clock_synced: bool
) -> Retention:
    """Delete what is past retention (docs/architecture.md §privacy): refused inbox requests,
    manual entries' personal details, and entries the collector has acknowledged.

    Postponed while the clock is not synchronised: a clock that later jumps forward would make
    today look weeks old. May raise StoreError.
    """
    if not clock_synced:
        return Retention(postponed=True)
    days = config.storage.retention_days
    requests = inbox.expire(config.storage.database, now - days * DAY_S)
    removed = store.apply_retention(now, days)
    return Retention(False, removed["entries"], removed["manual_details"], requests)


def clock_trusted(config: Config, simulate: bool = False) -> bool:
    """The simulated lobby runs on the wall clock whatever NTP says; a door unit needs NTP."""
    return simulate or config.ble.source == "simulate" or clock.is_synchronized()


@dataclass(frozen=True, slots=True)
class Step:
    step: str
    status: str  # ok | skipped | postponed | fail
    detail: str
    advice: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        text = f"{self.status:<9} {self.step}: {self.detail}"
        return f"{text}: {self.advice}" if self.advice else text

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "detail": self.detail,
            "advice": self.advice,
            **self.data,
        }


def _retention_step(store: VisitLog, config: Config, now: float) -> Step:
    days = config.storage.retention_days
    done = apply_retention(store, config, now, clock_synced=clock_trusted(config))
    if done.postponed:
        return Step(
            "retention",
            "postponed",
            "the clock is not synchronised, nothing deleted",
            "check NTP with `timedatectl timesync-status`",
        )
    waiting = store.kept_unsynced(now, days)
    detail = (
        f"past {days} days: {done.entries} entries, {done.manual_details} visitors' details,"
        f" {done.inbox_requests} refused requests deleted; {waiting} older entries kept until"
        " the collector has them"
    )
    data = {
        "entries": done.entries,
        "manual_details": done.manual_details,
        "inbox_requests": done.inbox_requests,
        "kept_unsynced": waiting,
    }
    return Step("retention", "ok", detail, data=data)


def _checkpoint_step(store: VisitLog) -> Step:
    done = store.checkpoint_wal(CHECKPOINT_BUSY_TIMEOUT_MS)
    data = {"busy": done.busy, "wal_frames": done.wal_frames, "copied_frames": done.copied_frames}
    if done.busy:
        detail = (
            f"the daemon was using the log: {done.copied_frames} of {done.wal_frames} frames"
            " copied, the rest at its next checkpoint"
        )
    else:
        detail = "WAL copied into the database and truncated"
    return Step("wal checkpoint", "ok", detail, data=data)


def _optimize_step(store: VisitLog) -> Step:
    store.optimize()
    return Step("optimize", "ok", "query planner statistics refreshed")


def run_maintenance(
    config: Config,
    out: Callable[[str], None] = print,
    *,
    json_lines: bool = False,
    now: float | None = None,
) -> int:
    """One pass, one line (or JSON object) per step. A step that fails raises its StoreError,
    one line for stderr (in --json, after a "fail" object); a failed integrity check stops
    everything before anything is written to the file."""

    def report(step: Step) -> None:
        out(json.dumps(step.as_json(), ensure_ascii=False) if json_lines else step.line())

    def failed(name: str, exc: StoreError) -> StoreError:
        # SQLite's quick_check report spans lines ("*** in database main ***\nPage 4: …").
        error = StoreError(" ".join(exc.message.split()), advice=exc.advice)
        if json_lines:
            report(Step(name, "fail", error.message, error.advice))
        return error

    database = config.storage.database
    if not database.exists():
        report(Step("visit log", "skipped", f"{database} does not exist yet: nothing to do"))
        return 0
    try:
        store = VisitLog(database)  # opening runs PRAGMA quick_check before anything is written
    except StoreError as exc:
        raise failed("quick_check", exc) from None
    when = time.time() if now is None else now
    steps: list[tuple[str, Callable[[], Step]]] = [
        ("retention", lambda: _retention_step(store, config, when)),
        ("wal checkpoint", lambda: _checkpoint_step(store)),
        ("optimize", lambda: _optimize_step(store)),
    ]
    try:
        report(Step("quick_check", "ok", f"{database}: ok, {store.total()} entries"))
        for name, run in steps:
            try:
                report(run())
            except StoreError as exc:  # the store names the step and the file
                raise failed(name, exc) from None
    finally:
        store.close()
    return 0
