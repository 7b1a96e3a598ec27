"""The visit log: one SQLite file of entries, and the one object the rest of the device opens.

``VisitLog`` is a facade: it opens the file (``files``), queues and commits the doorway's
decisions (``writer``), corrects clocks (``clock_fix``), answers the console's, the status
file's and the exposure check's questions (``queries``), runs retention (``retention``) and
upkeep (``upkeep``), and selects what exports write (``export_queries``). Nothing outside the
store writes SQL or touches its connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance import clock
from appliance.clock import BootReading, SessionClock
from appliance.core.doorway import Entry, EntryUpdate
from appliance.errors import DiskFull, StoreError
from appliance.store import clock_fix, queries, retention, upkeep
from appliance.store.export_queries import ExportSelection
from appliance.store.files import explain, open_log
from appliance.store.queries import read_alerts
from appliance.store.rows import EntryRow
from appliance.store.upkeep import WalCheckpoint
from appliance.store.writer import MAX_PENDING, EntryWriter, ManualVisitor

# EntryRow: where the console imports it from.
__all__ = ["EntryRow", "VisitLog", "WaitForSpace", "WalCheckpoint"]

UPKEEP_ADVICE = "try again later; `checkpoint doctor` checks the file"


@dataclass(frozen=True, slots=True)
class WaitForSpace:
    """How the daemon opens its log: a full disk leaves it unopened instead of raising, and
    ``on_open`` runs once the file is open, before anything queued is committed; at most
    ``max_pending`` decisions wait in memory meanwhile."""

    on_open: Callable[[VisitLog], None] | None = None
    max_pending: int = MAX_PENDING


class VisitLog:
    """One SQLite file of entries. Not thread-safe: one writer, in the daemon's loop."""

    def __init__(
        self,
        path: str | Path,
        *,
        readonly: bool = False,
        check: bool = True,
        origin: str = "live",
        boot_clock: Callable[[], BootReading | None] = clock.read_boot,
        session: SessionClock | None = None,
        key_day_of: Callable[[str], date | None] | None = None,
        wait_for_space: WaitForSpace | None = None,
    ) -> None:
        """``origin`` says what this writer's entries are: live, replay or simulated. The live
        daemon's decisions carry session times (``session``), turned into wall times when
        recorded; without one they are wall times already (replay, tests). ``boot_clock`` is
        read for what is recorded unsynchronised or in a session; ``key_day_of`` tells the day
        whose key made a token (TokenMaker.key_day). Raises StoreError.

        With ``wait_for_space`` (the daemon), a full disk does not raise: the log starts
        unopened (``waiting`` says why), queues decisions in memory, and ``reopen()`` tries
        again."""
        self.path = Path(path)
        self.readonly = readonly
        self._check = check
        self._on_open = wait_for_space.on_open if wait_for_space is not None else None
        self._db: sqlite_utils.Database | None = None
        self.waiting: DiskFull | None = None  # the full disk an unopened log waits for
        self._writer = EntryWriter(
            self.path,
            origin=origin,
            boot_clock=boot_clock,
            session=session,
            key_day_of=key_day_of,
            max_pending=wait_for_space.max_pending if wait_for_space else MAX_PENDING,
        )
        try:
            self._attach()
        except DiskFull as exc:
            if wait_for_space is None:
                raise
            self.waiting = exc

    def _attach(self) -> None:
        db = open_log(self.path, readonly=self.readonly, check=self._check)
        self._db = self._writer.db = db
        if self._on_open is not None:
            try:
                self._on_open(self)
            except StoreError:
                # Not open until that step is done: what is queued must not be committed
                # first, and ``waiting`` still says a reopen is due.
                self._db = self._writer.db = None
                db.conn.close()
                raise
        self.waiting = None

    def reopen(self) -> None:
        """Open the file a full disk kept closed (nothing to do otherwise); raises DiskFull
        while it still is full."""
        if self._db is not None or self.waiting is None:
            return
        try:
            self._attach()
        except DiskFull as exc:
            self.waiting = exc
            raise

    @property
    def origin(self) -> str:
        return self._writer.origin

    def _not_waiting(self) -> None:
        """Raise the full disk an unopened log waits for (a new error each time: raising one
        again would grow its traceback)."""
        if self.waiting is not None:
            raise DiskFull(self.waiting.message, advice=self.waiting.advice)

    def _open(self) -> sqlite_utils.Database:
        if self._db is None:
            self._not_waiting()
            raise sqlite3.ProgrammingError(f"the visit log {self.path} is closed")
        return self._db

    def _write(self, action: Callable[[sqlite_utils.Database], Any]) -> Any:
        """``action`` on the file, its failure told as a StoreError."""
        try:
            return action(self._open())
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    # -- writing ---------------------------------------------------------------------------

    def record(self, decision: Entry | EntryUpdate, *, clock_synced: bool = True) -> None:
        """Queue a doorway decision; ``flush()`` commits it (see EntryWriter.record)."""
        self._writer.record(decision, clock_synced=clock_synced)

    @property
    def pending(self) -> int:
        return self._writer.pending

    @property
    def dropped(self) -> int:
        """Decisions refused because MAX_PENDING were already waiting (a long-full disk)."""
        return self._writer.dropped

    def flush(self) -> int:
        """Commit everything queued in one transaction; returns how many items. What fails
        stays queued for the next flush."""
        if self.pending:
            self._not_waiting()
        return self._writer.flush()

    def add_manual(
        self,
        name: str,
        *,
        organisation: str | None = None,
        phone: str | None = None,
        purpose: str | None = None,
        when: float | None = None,
        clock_synced: bool = True,
        entry_uuid: str | None = None,
        when_boot: tuple[str, float] | None = None,
    ) -> str:
        """Record a visitor typed in by the receptionist, committed at once; returns the
        entry's UUID (see EntryWriter.add_manual for ``when_boot``)."""
        visitor = ManualVisitor(name, organisation, phone, purpose)
        self._not_waiting()
        return self._writer.add_manual(visitor, when=when, clock_synced=clock_synced,
                                       entry_uuid=entry_uuid, when_boot=when_boot)  # fmt: skip

    def queue_manual(self, name: str, *, clock_synced: bool = True) -> str:
        """A visitor recorded now, committed with the next ``flush()`` like a doorway decision
        (a full disk holds it in memory); returns the entry's UUID."""
        return self._writer.queue_manual(ManualVisitor(name), clock_synced=clock_synced)

    # -- honest time -----------------------------------------------------------------------

    def correct_clock(self, now_wall: float, now_boot: float, boot_id: str) -> int:
        """Recompute the times this boot took before the clock was synchronised; returns how
        many records changed. Call it only with a synchronised clock."""
        self.flush()  # what is queued was read unsynchronised too
        return int(self._write(lambda db: clock_fix.correct_clock(db, now_wall, now_boot,
                                                                  boot_id)))  # fmt: skip

    def awaiting_clock_correction(self, boot_id: str | None) -> int:
        """Records of this boot whose times wait for the clock to be synchronised."""
        return clock_fix.awaiting_clock_correction(self._open(), boot_id)

    # -- reading ---------------------------------------------------------------------------

    def counts(self, start: float, end: float) -> dict[str, int]:
        """Entries per kind with ``start <= entered_at < end``."""
        return queries.counts(self._open(), start, end)

    def recent(self, limit: int = 20) -> list[EntryRow]:
        return queries.recent(self._open(), limit)

    def has_entry(self, entry_uuid: str) -> bool:
        return queries.has_entry(self._open(), entry_uuid)

    def recent_feed(self, limit: int = 20) -> list[tuple[EntryRow, str | None]]:
        """The latest entries with each one's first token (the console shows a short piece)."""
        return queries.recent_feed(self._open(), limit)

    def alerts(self, limit: int = 5, since: float = 0.0) -> list[dict[str, Any]]:
        """The collector's latest alerts (an exposure match…), newest first."""
        return read_alerts(self._open().conn, limit, since)

    def entries_between(self, start: float, end: float) -> Iterator[EntryRow]:
        return queries.entries_between(self._open(), start, end)

    def tokens_of(self, entry_id: int) -> list[str]:
        return queries.tokens_of(self._open(), entry_id)

    def entries_with_tokens(self, tokens: Iterable[str]) -> list[tuple[EntryRow, str]]:
        """App entries carrying any of ``tokens``, with the token that matched."""
        return queries.entries_with_tokens(self._open(), tokens)

    def rekeyed_days(self) -> dict[date, set[date]]:
        """UTC day seen → the other days whose keys made tokens seen on it."""
        return queries.rekeyed_days(self._open())

    def overlapping_app_entries(self, entry: EntryRow, open_end: float) -> int:
        """Other app entries whose stay overlapped ``entry``'s (an open stay lasts until
        ``open_end``, never more than MAX_OPEN_STAY_S)."""
        return queries.overlapping_app_entries(self._open(), entry, open_end)

    def manual_details(self, entry_id: int) -> dict[str, str | None] | None:
        return queries.manual_details(self._open(), entry_id)

    def unsynced(self) -> int:
        return queries.unsynced(self._open())

    def total(self) -> int:
        return queries.total(self._open())

    def export_selection(
        self, start: float, end: float, *, kind: str | None, origins: tuple[str, ...]
    ) -> ExportSelection:
        """What an export of ``start <= entered_at < end`` reads (appliance.exports)."""
        return ExportSelection(self._open(), start, end, kind=kind, origins=origins)

    # -- retention and upkeep --------------------------------------------------------------

    def close_open_entries(self) -> int:
        """End the stays a crash left open, at the last moment the log recorded anything."""
        return int(self._write(retention.close_open_entries))

    def apply_retention(self, now: float, retention_days: int) -> dict[str, int]:
        """Delete what is past retention (docs/architecture.md §privacy); never an unsynced live
        entry."""
        removed: dict[str, int] = self._write(
            lambda db: retention.apply_retention(db, now, retention_days)
        )
        return removed

    # The three steps of `checkpoint maintenance` say which step failed, on which file.

    def _upkeep(self, step: str, action: Callable[[sqlite_utils.Database], Any]) -> Any:
        try:
            return action(self._open())
        except sqlite3.Error as exc:
            raise StoreError(f"{step} on {self.path}: {exc}", advice=UPKEEP_ADVICE) from None

    def kept_unsynced(self, now: float, retention_days: int) -> int:
        """Live entries past retention kept because the collector has not acknowledged them."""
        kept: int = self._upkeep(
            "retention", lambda db: retention.kept_unsynced(db, now, retention_days)
        )
        return kept

    def checkpoint_wal(self, busy_timeout_ms: int) -> WalCheckpoint:
        """Copy the WAL into the file and truncate it, waiting at most ``busy_timeout_ms`` for
        the daemon's writes."""
        done: WalCheckpoint = self._upkeep(
            "wal checkpoint", lambda db: upkeep.checkpoint_wal(db, busy_timeout_ms)
        )
        return done

    def optimize(self) -> None:
        """Refresh the query planner's statistics."""
        self._upkeep("optimize", upkeep.optimize)

    def close(self) -> None:
        """Flush what is queued and close; safe to call twice."""
        if self._db is None:
            self.waiting = None  # closed for good: what is still queued is the caller's loss
            return
        try:
            if not self.readonly:
                self.flush()
        finally:
            self._db.conn.close()
            self._db = self._writer.db = None
