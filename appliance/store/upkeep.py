"""The file's upkeep for `checkpoint maintenance`: WAL checkpoint and the planner's statistics.

(The integrity check runs whenever a log is opened with ``check=True``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from appliance.store.files import BUSY_TIMEOUT_MS


@dataclass(frozen=True, slots=True)
class WalCheckpoint:
    """What ``PRAGMA wal_checkpoint(TRUNCATE)`` did; ``busy`` when a writer held the log."""

    busy: bool
    wal_frames: int
    copied_frames: int


def checkpoint_wal(db: sqlite_utils.Database, busy_timeout_ms: int) -> WalCheckpoint:
    """Copy the WAL into the database and truncate it, waiting at most ``busy_timeout_ms``
    for the daemon's writes. Raises sqlite3.Error."""
    conn = db.conn
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        busy, wal_frames, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return WalCheckpoint(bool(busy), int(wal_frames), int(copied))


def optimize(db: sqlite_utils.Database) -> None:
    """Refresh the query planner's statistics. Raises sqlite3.Error."""
    db.conn.execute("PRAGMA optimize")
