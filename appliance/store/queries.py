"""What the console, the feed, the status file and the exposure check read from the visit log.

Plain reads through ``Database.execute`` (or the table API's counts); each returns the store's
own immutable rows, never a cursor.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import sqlite_utils

from appliance.core.exposure import MAX_OPEN_STAY_S
from appliance.models import REPORTED_KINDS
from appliance.store.rows import ROW_COLUMNS, ROW_COLUMNS_E, EntryRow, entry_row

# Stay well under SQLite's bound-variable limit when asking for many values at once.
IN_CHUNK = 500


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


def counts(db: sqlite_utils.Database, start: float, end: float) -> dict[str, int]:
    """Entries per kind with ``start <= entered_at < end``."""
    result = dict.fromkeys(REPORTED_KINDS, 0)
    for kind, n in db.execute(
        "SELECT kind, count(*) FROM entries WHERE entered_at >= ? AND entered_at < ? GROUP BY kind",
        (start, end),
    ):
        result[kind] = n
    return result


def recent(db: sqlite_utils.Database, limit: int) -> list[EntryRow]:
    rows = db.execute(
        f"SELECT {ROW_COLUMNS} FROM entries ORDER BY entered_at DESC, id DESC LIMIT ?", (limit,)
    )
    return [entry_row(r) for r in rows]


def has_entry(db: sqlite_utils.Database, entry_uuid: str) -> bool:
    return db.table("entries").count_where("uuid = ?", [entry_uuid]) > 0


def recent_feed(db: sqlite_utils.Database, limit: int) -> list[tuple[EntryRow, str | None]]:
    """The latest entries with each one's first token (the console shows a short piece)."""
    rows = db.execute(
        f"SELECT {ROW_COLUMNS_E}, (SELECT t.token FROM entry_tokens t"
        " WHERE t.entry_id = e.id ORDER BY t.first_seen LIMIT 1)"
        " FROM entries e ORDER BY e.entered_at DESC, e.id DESC LIMIT ?",
        (limit,),
    )
    return [(entry_row(r[:9]), r[9]) for r in rows]


def entries_between(db: sqlite_utils.Database, start: float, end: float) -> Iterator[EntryRow]:
    cursor = db.execute(
        f"SELECT {ROW_COLUMNS} FROM entries WHERE entered_at >= ? AND entered_at < ?"
        " ORDER BY entered_at, id",
        (start, end),
    )
    for values in cursor:
        yield entry_row(values)


def tokens_of(db: sqlite_utils.Database, entry_id: int) -> list[str]:
    rows = db.execute(
        "SELECT token FROM entry_tokens WHERE entry_id = ? ORDER BY first_seen", (entry_id,)
    )
    return [r[0] for r in rows]


def entries_with_tokens(
    db: sqlite_utils.Database, tokens: Iterable[str]
) -> list[tuple[EntryRow, str]]:
    """App entries carrying any of ``tokens``, with the token that matched."""
    wanted = list(tokens)
    found: list[tuple[EntryRow, str]] = []
    for i in range(0, len(wanted), IN_CHUNK):
        part = wanted[i : i + IN_CHUNK]
        marks = ",".join("?" * len(part))
        rows = db.execute(
            f"SELECT {ROW_COLUMNS_E}, t.token FROM entry_tokens t"
            f" JOIN entries e ON e.id = t.entry_id"
            f" WHERE t.token IN ({marks})",
            part,
        )
        found += [(entry_row(r[:9]), r[9]) for r in rows]
    found.sort(key=lambda pair: (pair[0].entered_at, pair[0].id))
    return found


def rekeyed_days(db: sqlite_utils.Database) -> dict[date, set[date]]:
    """UTC day seen → the other days whose keys made tokens seen on it (tokens made before
    the clock was synchronised, whose times were corrected to another day since)."""
    found: dict[date, set[date]] = {}
    try:
        rows = db.execute(
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


def overlapping_app_entries(db: sqlite_utils.Database, entry: EntryRow, open_end: float) -> int:
    """Other app entries whose stay overlapped ``entry``'s.

    A stay with no end lasts until ``open_end`` (now), but never more than
    ``MAX_OPEN_STAY_S``: an entry a crash left open must not overlap every later day.
    """
    if entry.left_at is not None:
        end = entry.left_at
    else:
        end = min(open_end, entry.entered_at + MAX_OPEN_STAY_S)
    row = db.execute(
        "SELECT count(*) FROM entries WHERE kind = 'app' AND id != ?"
        " AND entered_at < ? AND coalesce(left_at, min(?, entered_at + ?)) > ?",
        (entry.id, end, open_end, MAX_OPEN_STAY_S, entry.entered_at),
    ).fetchone()
    return int(row[0])


def manual_details(db: sqlite_utils.Database, entry_id: int) -> dict[str, str | None] | None:
    row = db.execute(
        "SELECT name, organisation, phone, purpose FROM manual_details WHERE entry_id = ?",
        (entry_id,),
    ).fetchone()
    if row is None:
        return None
    return {"name": row[0], "organisation": row[1], "phone": row[2], "purpose": row[3]}


def unsynced(db: sqlite_utils.Database) -> int:
    return db.table("entries").count_where("synced_at IS NULL")


def total(db: sqlite_utils.Database) -> int:
    return db.table("entries").count
