"""The daemon's side of the inbox: what the console and `checkpoint log-visitor` asked for,
checked (a request file is untrusted JSON, held to the rules its writers follow:
appliance.inbox, appliance.visitors) and applied: a visitor's entry, or "mute".

A request is removed only once its effect is committed; one that cannot be understood is moved
aside, and one that cannot be removed (or moved) is skipped from then on. A round looks at a
bounded number of files for a bounded time, well-formed ones first, and says what it refused in
one log line, so a flood of junk neither holds up the door's ticker nor the visitors behind it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from appliance import clock, inbox
from appliance.daemon.clocks import real_wall
from appliance.errors import BadRequest, StoreError
from appliance.visitors import ManualRequest

log = logging.getLogger("checkpoint")

CLOCK_STEP_S = 1.0  # a request's wall and boot times further apart: the clock was set since
# A round (once a second) looks at this many requests at most, and after its first
# WELL_FORMED_ALWAYS well-formed ones (what writers make: a visitor never waits behind junk)
# for this long at most: the ticker shares the loop with the scanner, the lights and the status.
# A refusal costs about 0.2 ms: a flood of 5,000 junk files is cleared in about half a minute.
REQUESTS_PER_ROUND = 500
WELL_FORMED_ALWAYS = 50
ROUND_BUDGET_S = 0.1
EARLIEST_REQUEST = 946684800  # 2000-01-01: an earlier time is an unset clock's


def request_time(value: float | None, now: float) -> float | None:
    """The time a console request was made, if it is believable: not in the future of the wall
    time ``now`` (beyond a minute of clock difference) and after 2000."""
    if value is None or not math.isfinite(value):
        return None
    if not EARLIEST_REQUEST <= value <= now + 60:
        return None
    return float(value)


def manual_time(
    request: ManualRequest, now: float
) -> tuple[float | None, tuple[str, float] | None]:
    """When a visitor typed at the console came in, and that time on this boot's clock;
    ``now`` is the wall time.

    The console reads both clocks (appliance.visitors). A request from this boot gets its
    time from the boot clock whenever the wall clock was set since it was typed (NTP, after a
    power cut): its ``at`` would be wrong by that step. Any other request has its ``at`` only.
    """
    at = request_time(request.at, now)
    if request.boot is None or request.boot[0] != clock.boot_id():
        return at, None
    boot_id, boot_s = request.boot
    from_boot = request_time(now - (clock.boottime() - boot_s), now)
    if from_boot is None:
        return at, None
    if at is None or abs(from_boot - at) > CLOCK_STEP_S:
        at = from_boot
    return at, (boot_id, boot_s)


class ManualLog(Protocol):
    """What the applier needs of the visit log."""

    def add_manual(
        self,
        name: str,
        *,
        organisation: str | None = None,
        phone: str | None = None,
        purpose: str | None = None,
        when: float | None = None,
        entry_uuid: str | None = None,
        clock_synced: bool = True,
        when_boot: tuple[str, float] | None = None,
    ) -> str: ...


class Mutable(Protocol):
    """The door's lights and buzzer, which a mute silences."""

    def mute(self, minutes: float) -> None: ...


class Refusals:
    """What one round refused, said in one log line: counts by cause and the first example."""

    def __init__(self) -> None:
        self.causes: Counter[str] = Counter()
        self.example = ""

    def add(self, path: Path, cause: str, detail: str) -> None:
        self.causes[cause] += 1
        if not self.example:
            self.example = f"{path.name}: {detail}"[:160]

    def log(self) -> None:
        total = sum(self.causes.values())
        if not total:
            return
        counts = ", ".join(f"{n} {cause}" for cause, n in self.causes.most_common())
        log.warning(
            "inbox: refused %d request%s this round (%s); first %s",
            total, "" if total == 1 else "s", counts, self.example,
        )  # fmt: skip


class InboxApplier:
    """Applies the requests waiting in the inbox beside ``database``."""

    def __init__(
        self,
        database: Path,
        visits: ManualLog,
        *,
        mute_minutes: float,
        clock_synced: Callable[[], bool],
        door: Mutable | None = None,
        wall: Callable[[], float] = real_wall,
    ) -> None:
        """``wall`` is the real wall clock, even beside the simulated lobby: the console
        stamps its requests with it."""
        self.database = database
        self.visits = visits
        self.mute_minutes = mute_minutes  # a mute request that does not say how long
        self.clock_synced = clock_synced
        self.door = door
        self.wall = wall
        self.muted_until = 0.0  # wall time; the console shows it
        self.refused = 0  # requests moved aside since the start
        self._stuck: set[str] = set()  # applied (or refused) but not removable
        self._listing_error: str | None = None
        self._waits: str | None = None  # why the visit log could not take a manual entry

    def apply(self) -> None:
        """Apply what waits, within the round's budget; a visit log that cannot take a manual
        entry now stops the round, and the request waits for the next one."""
        deadline = time.monotonic() + ROUND_BUDGET_S
        directory = inbox.inbox_dir(self.database)
        try:
            well, others = inbox.pending_names(directory)
        except OSError as exc:
            if str(exc) != self._listing_error:
                log.error("inbox: cannot list it: %s", exc)
            self._listing_error = str(exc)
            return
        self._listing_error = None
        self._stuck.intersection_update(well + others)
        refusals = Refusals()
        aside = inbox.Aside(directory)
        looked = 0
        try:
            for name in well + others:
                if name in self._stuck:
                    continue
                timed = looked >= WELL_FORMED_ALWAYS or looked >= len(well)
                if looked >= REQUESTS_PER_ROUND or (timed and time.monotonic() > deadline):
                    break  # the rest waits for the next round
                looked += 1
                if not self._one(directory / name, refusals, aside):
                    break
        finally:
            aside.close()
            self.refused += sum(refusals.causes.values())
            refusals.log()

    def _one(self, path: Path, refusals: Refusals, aside: inbox.Aside) -> bool:
        """Apply or refuse one request; False when the visit log could not take it."""
        try:
            request = inbox.load(path)
            if request is None:
                return True  # gone
            if request.kind == "mute":
                self._mute(path, inbox.Mute.parse(request.data))
                return True
            return self._manual(path, ManualRequest.parse(request.data))
        except BadRequest as exc:
            if not aside.move(path):
                self._stuck.add(path.name)
                refusals.add(path, "not movable", f"{exc} (left in place)")
            else:
                refusals.add(path, exc.cause, str(exc))
        except OSError as exc:  # unreadable now (I/O): left in place, tried again next round
            log.warning("inbox: cannot read %s: %s", path.name, exc)
        return True

    def _mute(self, path: Path, request: inbox.Mute) -> None:
        minutes = self.mute_minutes if request.minutes is None else request.minutes
        now = self.wall()
        asked = request_time(request.at, now)
        until = (asked if asked is not None else now) + minutes * 60
        left = until - now
        if left > 0:  # a request read late (the daemon was down) mutes what is left
            self.muted_until = until
            if self.door is not None:
                self.door.mute(left / 60)
            log.info("muted for %.0f s from the console", left)
        self._done(path)

    def _manual(self, path: Path, request: ManualRequest) -> bool:
        """False when the visit log could not take it (kept: tried again next round)."""
        at, when_boot = manual_time(request, self.wall())
        if at is None:
            raise BadRequest("bad at", f"{request.at!r} is not a believable time")
        visitor = request.visitor
        try:
            self.visits.add_manual(
                visitor.name, organisation=visitor.organisation, phone=visitor.phone,
                purpose=visitor.purpose, when=at, entry_uuid=request.uuid,
                clock_synced=self.clock_synced(), when_boot=when_boot,
            )  # fmt: skip
        except StoreError as exc:
            if str(exc) != self._waits:  # tried each second: said once (a full disk)
                log.error("manual entry waits in the inbox: %s", exc)
            self._waits = str(exc)
            return False
        self._waits = None
        log.info("manual entry recorded from the console")
        self._done(path)
        return True

    def _done(self, path: Path) -> None:
        """Remove an applied request; one that cannot be removed is skipped from now on
        (applying it again would be harmless, but it must not hold up the others)."""
        try:
            inbox.done(path)
        except OSError as exc:
            if path.name not in self._stuck:
                log.error("inbox: applied %s but cannot remove it: %s", path.name, exc)
            self._stuck.add(path.name)
