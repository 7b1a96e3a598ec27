"""Schema migrations: SQL scripts applied in order, tracked by ``PRAGMA user_version``.

Raw app identifiers and MAC addresses have no column anywhere: an app entry is stored with its
visit tokens only (docs/architecture.md §privacy).
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from appliance.errors import StoreError

V1 = """
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
            -- live: the door; replay: a capture; simulated: the demo lobby. Only live
            -- entries are ever sent to the collector.
            origin TEXT NOT NULL DEFAULT 'live' CHECK (origin IN ('live', 'replay', 'simulated')),
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


# The outbox (docs/architecture.md §sync): a record changed once sent (its stay ended, a rotation
# added a token) goes back into the outbox; ``revision`` lets the uploader mark a record synced
# only if it did not change while its batch was on the way. A record the collector refuses
# (4xx naming it) keeps its reason in ``sync_error`` and waits there, counted, never deleted.
# Alerts are what the collector's heartbeat returned (an exposure match…), kept until read.
V2 = """
        ALTER TABLE entries ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE entries ADD COLUMN sync_error TEXT;
        DROP INDEX entries_outbox;
        CREATE INDEX entries_outbox ON entries (id)
            WHERE synced_at IS NULL AND sync_error IS NULL AND origin = 'live';

        CREATE TABLE alerts (
            id TEXT PRIMARY KEY,                 -- the collector's alert ID
            kind TEXT NOT NULL,                  -- exposure, …
            created_at TEXT NOT NULL,            -- when the collector raised it (ISO 8601 UTC)
            received_at REAL NOT NULL,
            details TEXT NOT NULL,               -- JSON, as the collector sent it
            acked INTEGER NOT NULL DEFAULT 0     -- the collector has been told we have it
        );
"""


# Honest time (docs/architecture.md §time): a time read while the clock was unsynchronised keeps
# its boot-relative reading (CLOCK_BOOTTIME) and the boot's ID, so that it can be recomputed
# once the clock is synchronised (VisitLog.correct_clock). All NULL for a synced record; the
# partial index keeps "how many wait for correction" cheap however long the log grows.
# A token's day key is the UTC date its wall clock read when it was made; once its time is
# corrected to another day, ``key_day`` keeps the date whose key made it, so an exposure check
# can still recompute it (a date, not an identifier: docs/architecture.md §privacy holds).
V3 = """
        ALTER TABLE entries ADD COLUMN boot_id TEXT;     -- the boot an unsynced time was taken in
        ALTER TABLE entries ADD COLUMN entered_boot_s REAL;  -- CLOCK_BOOTTIME of entered_at
        ALTER TABLE entries ADD COLUMN left_boot_s REAL;     -- of left_at, if taken unsynced
        ALTER TABLE entry_tokens ADD COLUMN first_seen_boot_s REAL;  -- of first_seen, likewise
        -- YYYY-MM-DD of the day key that made the token; NULL: first_seen's UTC date
        ALTER TABLE entry_tokens ADD COLUMN key_day TEXT;
        CREATE INDEX entries_clock_uncorrected ON entries (boot_id) WHERE boot_id IS NOT NULL;
"""


# Each migration is a script; it runs inside one transaction with the version bump, so a
# power cut halfway leaves the database as it was, not half migrated.
MIGRATIONS: list[str] = [V1, V2, V3]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the database to ``SCHEMA_VERSION``; returns how many migrations ran."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema {version} is newer than this software understands ({SCHEMA_VERSION})",
            advice="install the newer checkpoint release that wrote it",
        )
    for number in range(version, SCHEMA_VERSION):
        # executescript() commits anything pending first; BEGIN…COMMIT makes the DDL and the
        # version bump one transaction (SQLite's DDL is transactional).
        try:
            db.conn.executescript(
                f"BEGIN;\n{MIGRATIONS[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;"
            )
        except sqlite3.Error:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION - version
