"""The write queue: doorway decisions queued as they happen and committed together.

``flush()`` (the daemon calls it about once a second) commits everything queued in one
transaction, so a busy door costs one commit a second, not one per event. A time taken before
the clock was synchronised keeps its boot-relative reading, so the log can make it right once
it is (docs/architecture.md §time).

Raw SQL on purpose: an entry's stay ends with ``max(?, entered_at)``, a change bumps
``revision + 1`` and a late token is an INSERT … SELECT, none of which sqlite-utils' table API
expresses; and its ``insert(ignore=True)`` cannot say whether a row went in (it points
``last_rowid`` at the existing row when it can), which decides whether tokens or a manual
entry's details follow.
"""

from __future__ import annotations

import sqlite3
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import sqlite_utils

from appliance.clock import BootReading, SessionClock
from appliance.core.doorway import MANUAL, Entry, EntryUpdate
from appliance.store.files import explain

# Decisions held in memory while they cannot be committed (a full card: docs/architecture.md
# §degraded-mode). A busy door decides about 3,000 a day (entries, stays' ends, late tokens) and
# one costs about 530 bytes queued (measured with tracemalloc: app entries with three tokens,
# unsynchronised, with their updates), so this is several days of a card nobody has replaced in
# about 11 MB, which even a 512 MiB Pi Zero 2 W can spare. Beyond it, dropped and counted.
MAX_PENDING: Final = 20_000

Decision = Entry | EntryUpdate


def _boot_id(boot: BootReading | None) -> str | None:
    return None if boot is None else boot.boot_id


def _boot_time(boot: BootReading | None, wall: float) -> float | None:
    return None if boot is None else boot.boot_time_of(wall)


def _utc_day(t: float) -> date:
    return datetime.fromtimestamp(t, UTC).date()


def _shifted(decision: Decision, shift: float) -> Decision:
    """A decision taken in session time, in wall time (every time moved by ``shift``)."""
    if isinstance(decision, Entry):
        tokens = tuple((token, seen + shift) for token, seen in decision.tokens)
        return replace(decision, time=decision.time + shift, tokens=tokens)
    left_at = None if decision.left_at is None else decision.left_at + shift
    token = None if decision.token is None else (decision.token[0], decision.token[1] + shift)
    return replace(decision, left_at=left_at, token=token)


@dataclass(frozen=True, slots=True)
class ManualVisitor:
    """What the receptionist typed."""

    name: str
    organisation: str | None = None
    phone: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class ManualRow:
    """A manual entry as it is inserted, its times read when it was recorded."""

    uuid: str
    visitor: ManualVisitor
    when: float
    clock_synced: bool
    created: float
    boot_id: str | None  # with entered_boot_s: this boot's clock, for a later correction
    entered_boot_s: float | None


# created, decision (or a manual entry), synced, boot
Queued = tuple[float, Decision | ManualRow, bool, BootReading | None]


class EntryWriter:
    """The one writer of entries on one connection. Not thread-safe: the daemon's loop."""

    def __init__(
        self,
        path: Path,
        *,
        origin: str,
        boot_clock: Callable[[], BootReading | None],
        session: SessionClock | None,
        key_day_of: Callable[[str], date | None] | None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        """The connection (``db``) is given once the file is open: until then, and while
        commits fail, decisions wait in the queue, at most ``max_pending`` of them."""
        self.db: sqlite_utils.Database | None = None
        self._path = path
        self.origin = origin
        self.boot_clock = boot_clock
        self.session = session
        self.key_day_of = key_day_of
        self.max_pending = max_pending
        self.dropped = 0  # decisions refused because the queue was full
        self._queue: list[Queued] = []

    def _database(self) -> sqlite_utils.Database:
        if self.db is None:
            raise sqlite3.ProgrammingError(f"the visit log {self._path} is not open")
        return self.db

    def record(self, decision: Decision, *, clock_synced: bool = True) -> None:
        """Queue a doorway decision; ``flush()`` commits it.

        In a session, each time is the moment's boot time plus the wall clock's offset *now*:
        the true time if the clock is synchronised now, even for what was observed before.
        Unsynchronised, both clocks are read now: the decision's wall times are (or were read)
        with the same offset, so each gets its boot-relative time from this one reading.
        """
        reading = None
        if self.session is not None or not clock_synced:
            reading = self.boot_clock()
        if self.session is not None and reading is not None:
            decision = _shifted(decision, self.session.wall_shift(reading))
        if len(self._queue) >= self.max_pending:
            # Full: the held decisions are older and kept; the daemon says how many were lost.
            self.dropped += 1
            return
        self._queue.append((time.time(), decision, clock_synced, None if clock_synced else reading))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Commit everything queued in one transaction; returns how many items."""
        if not self._queue:
            return 0
        queue, self._queue = self._queue, []
        try:
            with self._database().conn as conn:
                for created, item, synced, boot in queue:
                    if isinstance(item, Entry):
                        self._insert(conn, item, created, synced, boot)
                    elif isinstance(item, EntryUpdate):
                        self._update(conn, item, boot)
                    else:
                        self._insert_manual(conn, item)
        except (sqlite3.Error, OSError) as exc:
            self._queue = queue + self._queue  # nothing lost: retried on the next flush
            raise explain(self._path, exc) from None
        return len(queue)

    def _key_day(self, token: str, seen: float) -> str | None:
        """The day whose key made ``token``, where it is not ``seen``'s UTC date (the clock
        was set between making it and recording it)."""
        made = self.key_day_of(token) if self.key_day_of is not None else None
        if made is None or made == _utc_day(seen):
            return None
        return made.isoformat()

    def _insert(
        self,
        conn: sqlite3.Connection,
        entry: Entry,
        created: float,
        synced: bool,
        boot: BootReading | None,
    ) -> None:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO entries (uuid, kind, protocol, entered_at, clock_synced,"
            " via_sensor, created_at, origin, boot_id, entered_boot_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.uuid, entry.kind, entry.protocol, entry.time, synced, entry.via_sensor,
             created, self.origin, _boot_id(boot), _boot_time(boot, entry.time)),
        )  # fmt: skip
        if entry.tokens and cursor.rowcount:
            conn.executemany(
                "INSERT OR IGNORE INTO entry_tokens (entry_id, token, first_seen,"
                " first_seen_boot_s, key_day) VALUES (?, ?, ?, ?, ?)",
                [(cursor.lastrowid, token, seen, _boot_time(boot, seen),
                  self._key_day(token, seen)) for token, seen in entry.tokens],
            )  # fmt: skip

    def _update(
        self, conn: sqlite3.Connection, update: EntryUpdate, boot: BootReading | None
    ) -> None:
        changed = False
        if update.left_at is not None:
            changed = (
                conn.execute(
                    # Never before the entry: a clock stepped back mid-stay must not make a
                    # record the collector refuses.
                    "UPDATE entries SET left_at = max(?, entered_at), left_boot_s = ?,"
                    " boot_id = coalesce(?, boot_id) WHERE uuid = ?",
                    (update.left_at, _boot_time(boot, update.left_at), _boot_id(boot),
                     update.uuid),
                ).rowcount
                > 0
            )  # fmt: skip
        if update.token is not None:
            changed |= self._add_token(conn, update.uuid, update.token, boot)
        if changed:
            # Back into the outbox, so the collector gets the stay's end and the new token.
            conn.execute(
                "UPDATE entries SET revision = revision + 1, synced_at = NULL,"
                " sync_error = NULL WHERE uuid = ?",
                (update.uuid,),
            )

    def _add_token(
        self,
        conn: sqlite3.Connection,
        entry_uuid: str,
        token_seen: tuple[str, float],
        boot: BootReading | None,
    ) -> bool:
        token, seen = token_seen
        added = (
            conn.execute(
                "INSERT OR IGNORE INTO entry_tokens (entry_id, token, first_seen,"
                " first_seen_boot_s, key_day) SELECT id, ?, ?, ?, ? FROM entries"
                " WHERE uuid = ?",
                (token, seen, _boot_time(boot, seen), self._key_day(token, seen), entry_uuid),
            ).rowcount
            > 0
        )
        if added and boot is not None:
            conn.execute(
                "UPDATE entries SET boot_id = ? WHERE uuid = ?", (boot.boot_id, entry_uuid)
            )
        return added

    def _manual_row(
        self,
        visitor: ManualVisitor,
        when: float | None,
        clock_synced: bool,
        entry_uuid: str | None,
        when_boot: tuple[str, float] | None,
    ) -> ManualRow:
        now = time.time()
        boot_id: str | None = None
        entered_boot_s: float | None = None
        boot = None if clock_synced else self.boot_clock()
        if boot is not None:
            if when is None:
                when, boot_id, entered_boot_s = boot.wall, boot.boot_id, boot.boot_s
            elif when_boot is not None and when_boot[0] == boot.boot_id:
                boot_id, entered_boot_s = when_boot
        return ManualRow(entry_uuid or str(uuidlib.uuid4()), visitor,
                         when if when is not None else now, clock_synced, now, boot_id,
                         entered_boot_s)  # fmt: skip

    def _insert_manual(self, conn: sqlite3.Connection, row: ManualRow) -> None:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO entries (uuid, kind, entered_at, clock_synced,"
            " created_at, origin, boot_id, entered_boot_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.uuid, MANUAL, row.when, row.clock_synced, row.created, self.origin,
             row.boot_id, row.entered_boot_s),
        )  # fmt: skip
        if cursor.rowcount:
            visitor = row.visitor
            conn.execute(
                "INSERT INTO manual_details (entry_id, name, organisation, phone, purpose)"
                " VALUES (?, ?, ?, ?, ?)",
                (cursor.lastrowid, visitor.name, visitor.organisation, visitor.phone,
                 visitor.purpose),
            )  # fmt: skip

    def add_manual(
        self,
        visitor: ManualVisitor,
        *,
        when: float | None = None,
        clock_synced: bool = True,
        entry_uuid: str | None = None,
        when_boot: tuple[str, float] | None = None,
    ) -> str:
        """Record a visitor typed in by the receptionist; committed at once. An ``entry_uuid``
        already recorded is not recorded twice (a request applied again after a crash).

        Unsynchronised, the entry can be corrected later if its time is now (``when`` None) or
        ``when_boot`` gives ``when`` on the boot clock, as (boot ID, CLOCK_BOOTTIME) of this
        boot. Any other time (typed by a person, or from an earlier boot) stays flagged.
        """
        row = self._manual_row(visitor, when, clock_synced, entry_uuid, when_boot)
        try:
            with self._database().conn as conn:
                self._insert_manual(conn, row)
        except (sqlite3.Error, OSError) as exc:
            raise explain(self._path, exc) from None
        return row.uuid

    def queue_manual(self, visitor: ManualVisitor, *, clock_synced: bool = True) -> str:
        """A visitor recorded now with nothing on disk to keep it until committed (the
        button's long press): queued like a doorway decision, so a full disk holds it too."""
        row = self._manual_row(visitor, None, clock_synced, None, None)
        if len(self._queue) >= self.max_pending:
            self.dropped += 1
        else:
            self._queue.append((row.created, row, clock_synced, None))
        return row.uuid
