"""Retention (docs/architecture.md §privacy) and the stays a crash left open."""

from __future__ import annotations

import sqlite_utils

DAY_S = 86400


def apply_retention(db: sqlite_utils.Database, now: float, retention_days: int) -> dict[str, int]:
    """Delete what is past retention, in one transaction; raises sqlite3.Error.

    Manual entries' personal details go after ``retention_days`` whatever happens. An entry
    itself goes only once past retention *and* acknowledged by the collector (or never sent
    because it is not live: replayed or simulated): an unsynced record is never dropped,
    even on a unit that has no collector yet.
    """
    cutoff = now - retention_days * DAY_S
    conn = db.conn
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
    return {"entries": entries, "manual_details": details}


def kept_unsynced(db: sqlite_utils.Database, now: float, retention_days: int) -> int:
    """Live entries past retention that the collector has not acknowledged: kept."""
    return db.table("entries").count_where(
        "entered_at < ? AND synced_at IS NULL AND origin = 'live'",
        [now - retention_days * DAY_S],
    )


def close_open_entries(db: sqlite_utils.Database) -> int:
    """End the stays a crash left open, at the last moment the log recorded anything.

    Called when the daemon starts: no phone is present yet, so every open stay is stale.
    Raises sqlite3.Error.
    """
    conn = db.conn
    with conn:
        # A stay taken unsynchronised keeps the length the log saw, on the boot clock too,
        # so correcting its start later does not stretch or cut it.
        return conn.execute(
            "UPDATE entries SET left_at = max(entered_at,"
            " (SELECT max(created_at) FROM entries)),"
            " left_boot_s = entered_boot_s"
            " + max(0, (SELECT max(created_at) FROM entries) - entered_at),"
            " revision = revision + 1, synced_at = NULL"
            " WHERE kind = 'app' AND left_at IS NULL"
        ).rowcount
