"""Honest time: the times a boot took before the clock was synchronised, made right once it is
(docs/architecture.md §time)."""

from __future__ import annotations

import sqlite_utils


def correct_clock(db: sqlite_utils.Database, now_wall: float, now_boot: float, boot_id: str) -> int:
    """Recompute this boot's unsynchronised times; returns how many records changed.

    Each time becomes ``now_wall - (now_boot - recorded_boot)``; the record is marked
    synchronised and goes back into the outbox (a new revision), so the collector gets the
    true time and a batch in flight with the old one is not marked sent. Records of another
    boot cannot be corrected (its boot clock started again from zero): they stay flagged.
    Raises sqlite3.Error; commits as one transaction.
    """

    def true_time(boot_s: float) -> float:
        return now_wall - (now_boot - boot_s)

    conn = db.conn
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
    return len(changes)


def awaiting_clock_correction(db: sqlite_utils.Database, boot_id: str | None) -> int:
    """Records of this boot whose times wait for the clock to be synchronised."""
    if boot_id is None:
        return 0
    return db.table("entries").count_where("boot_id = ?", [boot_id])
