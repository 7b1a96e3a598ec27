"""Schema migrations: plain functions, applied in order, tracked by ``PRAGMA user_version``.

Raw app identifiers and MAC addresses have no column anywhere: an app entry is stored with its
visit tokens only (DESIGN.md §4.3).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,           -- identifies the record to the collector
            kind TEXT NOT NULL CHECK (kind IN ('app', 'no_app', 'manual')),
            protocol TEXT,                       -- bluezone, gaen…; NULL for no_app/manual
            entered_at REAL NOT NULL,            -- UNIX seconds, UTC
            left_at REAL,
            clock_synced INTEGER NOT NULL DEFAULT 1,
            via_sensor INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            synced_at REAL                       -- outbox mark: NULL until the collector acks
        );
        CREATE INDEX entries_entered_at ON entries (entered_at);
        CREATE INDEX entries_outbox ON entries (id) WHERE synced_at IS NULL;

        CREATE TABLE entry_tokens (
            entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
            token TEXT NOT NULL,                 -- HMAC of the identifier, never the identifier
            first_seen REAL NOT NULL,
            PRIMARY KEY (entry_id, token)
        ) WITHOUT ROWID;
        CREATE INDEX entry_tokens_token ON entry_tokens (token);

        -- What the receptionist typed: stays on the device, deleted after retention_days.
        CREATE TABLE manual_details (
            entry_id INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            organisation TEXT,
            phone TEXT,
            purpose TEXT
        );
        """
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns how many migrations ran."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema {version} is newer than this software ({SCHEMA_VERSION})"
        )
    ran = 0
    for number in range(version, SCHEMA_VERSION):
        with db.conn:
            MIGRATIONS[number](db)
            db.execute(f"PRAGMA user_version = {number + 1}")
        ran += 1
    return ran
