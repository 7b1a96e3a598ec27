"""The visit log: batched writes of doorway decisions, and the queries commands need.

Writes are queued and committed together by ``flush()`` (the daemon calls it about once a
second), so a busy door costs one commit a second, not one per event. WAL with
``synchronous=FULL`` keeps every committed batch through a crash or a power cut, which is what
happens to a Pi at a door. A time taken before the clock was synchronised keeps its
boot-relative reading, so ``correct_clock()`` can make it right once it is (DESIGN.md §4.4).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance import clock
from appliance.clock import BootReading, SessionClock
from appliance.core.doorway import MANUAL, Entry, EntryUpdate
from appliance.core.exposure import MAX_OPEN_STAY_S
from appliance.errors import StoreError
from appliance.store.schema import migrate

BUSY_TIMEOUT_MS = 5000  # the console reads while the daemon writes


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: int
    uuid: str
    kind: str
    protocol: str | None
    entered_at: float
    left_at: float | None
    clock_synced: bool
    via_sensor: bool
    synced_at: float | None


_COLUMNS = ("id", "uuid", "kind", "protocol", "entered_at", "left_at", "clock_synced",
            "via_sensor", "synced_at")  # fmt: skip
_ROW_COLUMNS = ", ".join(_COLUMNS)
_ROW_COLUMNS_E = ", ".join(f"e.{c}" for c in _COLUMNS)  # the same, in a join on entries e


def _row(values: Any) -> EntryRow:
    return EntryRow(
        values[0], values[1], values[2], values[3], values[4], values[5], bool(values[6]),
        bool(values[7]), values[8],
    )  # fmt: skip


def _boot_id(boot: BootReading | None) -> str | None:
    return None if boot is None else boot.boot_id


def _boot_time(boot: BootReading | None, wall: float) -> float | None:
    return None if boot is None else boot.boot_time_of(wall)


def _utc_day(t: float) -> date:
    return datetime.fromtimestamp(t, UTC).date()


def _shifted(decision: Entry | EntryUpdate, shift: float) -> Entry | EntryUpdate:
    """A decision taken in session time, in wall time (every time moved by ``shift``)."""
    if isinstance(decision, Entry):
        tokens = tuple((token, seen + shift) for token, seen in decision.tokens)
        return replace(decision, time=decision.time + shift, tokens=tokens)
    left_at = None if decision.left_at is None else decision.left_at + shift
    token = None if decision.token is None else (decision.token[0], decision.token[1] + shift)
    return replace(decision, left_at=left_at, token=token)


def read_alerts(conn: sqlite3.Connection, limit: int, since: float = 0.0) -> list[dict[str, Any]]:
    """The collector's alerts kept in the visit log (received since ``since``), newest first."""
    try:
        rows = conn.execute(
            "SELECT id, kind, created_at, details FROM alerts WHERE received_at >= ?"
            " ORDER BY created_at DESC LIMIT ?",
            (since, limit),
        ).fetchall()
    except sqlite3.OperationalError:  # a database from before alerts existed
        return []
    found = []
    for alert_id, kind, created, details in rows:
        try:
            parsed = json.loads(details)
        except ValueError:
            parsed = {}
        found.append({"id": alert_id, "kind": kind, "created_at": created, "details": parsed})
    return found


def _explain(path: Path, exc: BaseException) -> StoreError:
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "disk is full" in text:
        return StoreError(f"disk full writing {path}", advice="free space on the SD card")
    if "not a database" in text or "malformed" in text:
        return StoreError(
            f"{path} is corrupt ({text})",
            advice="stop the daemon, move the file aside and restore a backup",
        )
    if "unable to open" in text or isinstance(exc, PermissionError):
        return StoreError(f"cannot open {path} ({text})", advice="check the path and permissions")
    return StoreError(f"database error on {path}: {text}")


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
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.origin = origin  # what this writer's entries are: live, replay or simulated
        self.boot_clock = boot_clock  # read for what is recorded unsynchronised or in a session
        # The live daemon's decisions carry session times (clock.SessionClock), turned into
        # wall times when recorded; without one they are wall times already (replay, tests).
        self.session = session
        self.key_day_of = key_day_of  # the day whose key made a token (TokenMaker.key_day)
        self._queue: list[tuple[float, Entry | EntryUpdate, bool, BootReading | None]] = []
        files = (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
        new_files = [f for f in files if not f.exists()]
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"no visit log at {self.path} (has the daemon run yet?)")
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.db = sqlite_utils.Database(conn)
            if check:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise StoreError(
                        f"{self.path} failed its integrity check: {result}",
                        advice="stop the daemon, move the file aside and restore a backup",
                    )
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
                migrate(self.db)
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise _explain(self.path, exc) from None
        finally:
            self._share_with_the_daemon(new_files)

    def _share_with_the_daemon(self, created: list[Path]) -> None:
        """Run as root (`sudo checkpoint doctor`, an export), opening the log makes its -wal and
        -shm files (and, on a new unit, the log itself) root's: the daemon, which runs as its
        own user, could then no longer write them. What this opening created goes to whoever
        owns the log's directory (systemd's StateDirectory: the daemon's user), group-writable
        as the daemon's own files are (UMask=0007). Files that were there are left as they
        were: `checkpoint doctor` reports those, it does not mend them behind anyone's back."""
        if os.geteuid() != 0 or not created:
            return
        try:
            home = self.path.parent.stat()
        except OSError:
            return
        if home.st_uid == 0:
            return  # a root-owned directory: root's log, nothing to share
        for name in created:
            # The directory is the daemon user's: a name in it may have been swapped for a
            # link to another file by now. Only a plain file root made, with no other name,
            # is given away, through its descriptor (no path is followed).
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode) and info.st_uid == 0 and info.st_nlink == 1:
                    os.fchown(fd, home.st_uid, home.st_gid)
                    os.fchmod(fd, 0o660)
            except OSError:
                pass
            finally:
                os.close(fd)

    # -- writing ---------------------------------------------------------------------------

    def record(self, decision: Entry | EntryUpdate, *, clock_synced: bool = True) -> None:
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
        self._queue.append((time.time(), decision, clock_synced, None if clock_synced else reading))

    def _key_day(self, token: str, seen: float) -> str | None:
        """The day whose key made ``token``, where it is not ``seen``'s UTC date (the clock
        was set between making it and recording it)."""
        made = self.key_day_of(token) if self.key_day_of is not None else None
        if made is None or made == _utc_day(seen):
            return None
        return made.isoformat()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Commit everything queued in one transaction; returns how many items."""
        if not self._queue:
            return 0
        queue, self._queue = self._queue, []
        conn = self.db.conn
        try:
            with conn:
                for created, item, synced, boot in queue:
                    if isinstance(item, Entry):
                        self._insert(conn, item, created, synced, boot)
                    else:
                        self._update(conn, item, boot)
        except (sqlite3.Error, OSError) as exc:
            self._queue = queue + self._queue  # nothing lost: retried on the next flush
            raise _explain(self.path, exc) from None
        return len(queue)

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
            (
                entry.uuid,
                entry.kind,
                entry.protocol,
                entry.time,
                synced,
                entry.via_sensor,
                created,
                self.origin,
                _boot_id(boot),
                _boot_time(boot, entry.time),
            ),
        )
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
            token, seen = update.token
            added = (
                conn.execute(
                    "INSERT OR IGNORE INTO entry_tokens (entry_id, token, first_seen,"
                    " first_seen_boot_s, key_day) SELECT id, ?, ?, ?, ? FROM entries"
                    " WHERE uuid = ?",
                    (token, seen, _boot_time(boot, seen), self._key_day(token, seen), update.uuid),
                ).rowcount
                > 0
            )
            if added and boot is not None:
                conn.execute(
                    "UPDATE entries SET boot_id = ? WHERE uuid = ?", (boot.boot_id, update.uuid)
                )
            changed |= added
        if changed:
            # Back into the outbox, so the collector gets the stay's end and the new token.
            conn.execute(
                "UPDATE entries SET revision = revision + 1, synced_at = NULL,"
                " sync_error = NULL WHERE uuid = ?",
                (update.uuid,),
            )

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
        """Record a visitor typed in by the receptionist; committed at once. An ``entry_uuid``
        already recorded is not recorded twice (a request applied again after a crash).

        Unsynchronised, the entry can be corrected later if its time is now (``when`` None) or
        ``when_boot`` gives ``when`` on the boot clock, as (boot ID, CLOCK_BOOTTIME) of this
        boot. Any other time (typed by a person, or from an earlier boot) stays flagged.
        """
        entry_uuid = entry_uuid or str(uuidlib.uuid4())
        now = time.time()
        boot_id: str | None = None
        entered_boot_s: float | None = None
        boot = None if clock_synced else self.boot_clock()
        if boot is not None:
            if when is None:
                when, boot_id, entered_boot_s = boot.wall, boot.boot_id, boot.boot_s
            elif when_boot is not None and when_boot[0] == boot.boot_id:
                boot_id, entered_boot_s = when_boot
        conn = self.db.conn
        try:
            with conn:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO entries (uuid, kind, entered_at, clock_synced,"
                    " created_at, origin, boot_id, entered_boot_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry_uuid,
                        MANUAL,
                        when if when is not None else now,
                        clock_synced,
                        now,
                        self.origin,
                        boot_id,
                        entered_boot_s,
                    ),
                )
                if cursor.rowcount:
                    conn.execute(
                        "INSERT INTO manual_details (entry_id, name, organisation, phone, purpose)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (cursor.lastrowid, name, organisation, phone, purpose),
                    )
        except (sqlite3.Error, OSError) as exc:
            raise _explain(self.path, exc) from None
        return entry_uuid

    # -- honest time -----------------------------------------------------------------------

    def correct_clock(self, now_wall: float, now_boot: float, boot_id: str) -> int:
        """Recompute the times this boot took before the clock was synchronised; returns how
        many records changed. Call it only with a synchronised clock.

        Each time becomes ``now_wall - (now_boot - recorded_boot)``; the record is marked
        synchronised and goes back into the outbox (a new revision), so the collector gets the
        true time and a batch in flight with the old one is not marked sent. Records of another
        boot cannot be corrected (its boot clock started again from zero): they stay flagged.
        """

        def true_time(boot_s: float) -> float:
            return now_wall - (now_boot - boot_s)

        self.flush()  # what is queued was read unsynchronised too
        conn = self.db.conn
        try:
            with conn:
                rows = conn.execute(
                    "SELECT id, entered_at, entered_boot_s, left_at, left_boot_s FROM entries"
                    " WHERE boot_id = ?",
                    (boot_id,),
                ).fetchall()
                changes = []
                for entry_id, entered, entered_boot, left, left_boot in rows:
                    if entered_boot is not None:
                        entered = true_time(entered_boot)
                    if left_boot is not None:
                        left = true_time(left_boot)
                    if left is not None:
                        left = max(left, entered)  # as when recorded: never before the entry
                    changes.append((entered, left, entry_id))
                conn.executemany(
                    "UPDATE entries SET entered_at = ?, left_at = ?, clock_synced = 1,"
                    " boot_id = NULL, entered_boot_s = NULL, left_boot_s = NULL,"
                    " revision = revision + 1, synced_at = NULL, sync_error = NULL WHERE id = ?",
                    changes,
                )
                # A token keeps the day whose key made it (its uncorrected date), unless the
                # correction leaves it on that day: an exposure check derives that day's key.
                conn.executemany(
                    "UPDATE entry_tokens SET first_seen = :wall - (:boot - first_seen_boot_s),"
                    " first_seen_boot_s = NULL, key_day = nullif(coalesce(key_day,"
                    " date(first_seen, 'unixepoch')),"
                    " date(:wall - (:boot - first_seen_boot_s), 'unixepoch'))"
                    " WHERE entry_id = :entry AND first_seen_boot_s IS NOT NULL",
                    [{"wall": now_wall, "boot": now_boot, "entry": entry_id}
                     for *_, entry_id in changes],
                )  # fmt: skip
        except (sqlite3.Error, OSError) as exc:
            raise _explain(self.path, exc) from None
        return len(changes)

    def awaiting_clock_correction(self, boot_id: str | None) -> int:
        """Records of this boot whose times wait for the clock to be synchronised."""
        if boot_id is None:
            return 0
        row = self.db.execute("SELECT count(*) FROM entries WHERE boot_id = ?", (boot_id,))
        return int(row.fetchone()[0])

    # -- reading ---------------------------------------------------------------------------

    def counts(self, start: float, end: float) -> dict[str, int]:
        """Entries per kind with ``start <= entered_at < end``."""
        result = {"app": 0, "no_app": 0, "manual": 0}
        for kind, n in self.db.execute(
            "SELECT kind, count(*) FROM entries WHERE entered_at >= ? AND entered_at < ?"
            " GROUP BY kind",
            (start, end),
        ):
            result[kind] = n
        return result

    def recent(self, limit: int = 20) -> list[EntryRow]:
        rows = self.db.execute(
            f"SELECT {_ROW_COLUMNS} FROM entries ORDER BY entered_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [_row(r) for r in rows]

    def has_entry(self, entry_uuid: str) -> bool:
        row = self.db.execute("SELECT 1 FROM entries WHERE uuid = ?", (entry_uuid,)).fetchone()
        return row is not None

    def recent_feed(self, limit: int = 20) -> list[tuple[EntryRow, str | None]]:
        """The latest entries with each one's first token (the console shows a short piece)."""
        rows = self.db.execute(
            f"SELECT {_ROW_COLUMNS_E}, (SELECT t.token FROM entry_tokens t"
            " WHERE t.entry_id = e.id ORDER BY t.first_seen LIMIT 1)"
            " FROM entries e ORDER BY e.entered_at DESC, e.id DESC LIMIT ?",
            (limit,),
        )
        return [(_row(r[:9]), r[9]) for r in rows]

    def alerts(self, limit: int = 5, since: float = 0.0) -> list[dict[str, Any]]:
        """The collector's latest alerts (an exposure match…), newest first."""
        return read_alerts(self.db.conn, limit, since)

    def entries_between(self, start: float, end: float) -> Iterator[EntryRow]:
        cursor = self.db.execute(
            f"SELECT {_ROW_COLUMNS} FROM entries WHERE entered_at >= ? AND entered_at < ?"
            " ORDER BY entered_at, id",
            (start, end),
        )
        for values in cursor:
            yield _row(values)

    def tokens_of(self, entry_id: int) -> list[str]:
        rows = self.db.execute(
            "SELECT token FROM entry_tokens WHERE entry_id = ? ORDER BY first_seen", (entry_id,)
        )
        return [r[0] for r in rows]

    def entries_with_tokens(self, tokens: Iterable[str]) -> list[tuple[EntryRow, str]]:
        """App entries carrying any of ``tokens``, with the token that matched."""
        wanted = list(tokens)
        found: list[tuple[EntryRow, str]] = []
        chunk = 500  # stay well under SQLite's bound-variable limit
        for i in range(0, len(wanted), chunk):
            part = wanted[i : i + chunk]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT {_ROW_COLUMNS_E}, t.token FROM entry_tokens t"
                f" JOIN entries e ON e.id = t.entry_id"
                f" WHERE t.token IN ({marks})",
                part,
            )
            found += [(_row(r[:9]), r[9]) for r in rows]
        found.sort(key=lambda pair: (pair[0].entered_at, pair[0].id))
        return found

    def rekeyed_days(self) -> dict[date, set[date]]:
        """UTC day seen → the other days whose keys made tokens seen on it (tokens made before
        the clock was synchronised, whose times were corrected to another day since)."""
        found: dict[date, set[date]] = {}
        try:
            rows = self.db.execute(
                "SELECT DISTINCT date(first_seen, 'unixepoch'), key_day FROM entry_tokens"
                " WHERE key_day IS NOT NULL"
            ).fetchall()
        except sqlite3.OperationalError:  # a log from before key days (opened read-only)
            return found
        for seen, key_day in rows:
            try:
                found.setdefault(date.fromisoformat(seen), set()).add(date.fromisoformat(key_day))
            except (TypeError, ValueError):
                continue
        return found

    def overlapping_app_entries(self, entry: EntryRow, open_end: float) -> int:
        """Other app entries whose stay overlapped ``entry``'s.

        A stay with no end lasts until ``open_end`` (now), but never more than
        ``MAX_OPEN_STAY_S``: an entry a crash left open must not overlap every later day.
        """

        def end_of(left: float | None, entered: float) -> float:
            return left if left is not None else min(open_end, entered + MAX_OPEN_STAY_S)

        end = end_of(entry.left_at, entry.entered_at)
        row = self.db.execute(
            "SELECT count(*) FROM entries WHERE kind = 'app' AND id != ?"
            " AND entered_at < ? AND coalesce(left_at, min(?, entered_at + ?)) > ?",
            (entry.id, end, open_end, MAX_OPEN_STAY_S, entry.entered_at),
        ).fetchone()
        return int(row[0])

    def close_open_entries(self) -> int:
        """End the stays a crash left open, at the last moment the log recorded anything.

        Called when the daemon starts: no phone is present yet, so every open stay is stale.
        """
        conn = self.db.conn
        try:
            with conn:
                # A stay taken unsynchronised keeps the length the log saw, on the boot
                # clock too, so correcting its start later does not stretch or cut it.
                return conn.execute(
                    "UPDATE entries SET left_at = max(entered_at,"
                    " (SELECT max(created_at) FROM entries)),"
                    " left_boot_s = entered_boot_s"
                    " + max(0, (SELECT max(created_at) FROM entries) - entered_at),"
                    " revision = revision + 1, synced_at = NULL"
                    " WHERE kind = 'app' AND left_at IS NULL"
                ).rowcount
        except (sqlite3.Error, OSError) as exc:
            raise _explain(self.path, exc) from None

    def manual_details(self, entry_id: int) -> dict[str, str | None] | None:
        row = self.db.execute(
            "SELECT name, organisation, phone, purpose FROM manual_details WHERE entry_id = ?",
            (entry_id,),
        ).fetchone()
        if row is None:
            return None
        return {"name": row[0], "organisation": row[1], "phone": row[2], "purpose": row[3]}

    def unsynced(self) -> int:
        return int(
            self.db.execute("SELECT count(*) FROM entries WHERE synced_at IS NULL").fetchone()[0]
        )

    def total(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM entries").fetchone()[0])

    # -- retention -------------------------------------------------------------------------

    def apply_retention(self, now: float, retention_days: int) -> dict[str, int]:
        """Delete what is past retention (DESIGN.md §4.3).

        Manual entries' personal details go after ``retention_days`` whatever happens. An entry
        itself goes only once past retention *and* acknowledged by the collector (or never sent
        because it is not live: replayed or simulated): an unsynced record is never dropped,
        even on a unit that has no collector yet.
        """
        cutoff = now - retention_days * 86400
        conn = self.db.conn
        try:
            with conn:
                details = conn.execute(
                    "DELETE FROM manual_details WHERE entry_id IN"
                    " (SELECT id FROM entries WHERE entered_at < ?)",
                    (cutoff,),
                ).rowcount
                entries = conn.execute(
                    "DELETE FROM entries WHERE entered_at < ?"
                    " AND (synced_at IS NOT NULL OR origin != 'live')",
                    (cutoff,),
                ).rowcount
                # Alerts the collector has been told we have, once past retention.
                conn.execute("DELETE FROM alerts WHERE received_at < ? AND acked = 1", (cutoff,))
        except (sqlite3.Error, OSError) as exc:
            raise _explain(self.path, exc) from None
        return {"entries": entries, "manual_details": details}

    def close(self) -> None:
        """Flush what is queued and close; safe to call twice."""
        conn = getattr(self, "db", None)
        if conn is None:
            return
        try:
            if not self.readonly:
                self.flush()
        finally:
            self.db.conn.close()
            del self.db
