"""The collector's storage: one schema, on SQLite (a file) or PostgreSQL (the province's server).

SQL is written once, with ``?`` placeholders and portable types (TEXT, BIGINT, DOUBLE
PRECISION, partial indexes, ``ON CONFLICT``, ``RETURNING``); the PostgreSQL backend turns the
placeholders into psycopg's ``%s``. Times are UNIX seconds (UTC) in DOUBLE PRECISION columns.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from appliance.errors import DatabaseError

# Each statement runs on both engines. Booleans are INTEGER 0/1.
SCHEMA_V1 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        door TEXT NOT NULL,
        token_hash TEXT UNIQUE,            -- SHA-256 of the bearer token; the token is never kept
        token_expires_at DOUBLE PRECISION,
        enrolled_at DOUBLE PRECISION NOT NULL,
        hostname TEXT,
        last_seen_at DOUBLE PRECISION,
        health TEXT,                        -- the last heartbeat's report (JSON)
        revoked_at DOUBLE PRECISION
    )""",
    """CREATE TABLE enrollment_codes (
        code_hash TEXT PRIMARY KEY,
        agency TEXT NOT NULL,
        door TEXT NOT NULL,
        checkpoint_id TEXT,                 -- the ID to assign; NULL: one is generated
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        token_days INTEGER NOT NULL,
        reenroll INTEGER NOT NULL DEFAULT 0, -- 1: may replace an enrolled unit's token
        used_at DOUBLE PRECISION,
        used_by TEXT
    )""",
    """CREATE TABLE role_tokens (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL,                 -- admin | official | health
        label TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION
    )""",
    """CREATE TABLE visits (
        uuid TEXT PRIMARY KEY,
        checkpoint_id TEXT NOT NULL REFERENCES checkpoints (id),
        agency TEXT NOT NULL,
        door TEXT NOT NULL,
        kind TEXT NOT NULL,
        protocol TEXT,
        entered_at DOUBLE PRECISION NOT NULL,
        left_at DOUBLE PRECISION,
        local_day TEXT NOT NULL,            -- YYYY-MM-DD in the collector's time zone
        clock_synced INTEGER NOT NULL,
        via_sensor INTEGER NOT NULL,
        received_at DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX visits_day ON visits (local_day, agency)",
    "CREATE INDEX visits_checkpoint_time ON visits (checkpoint_id, entered_at)",
    """CREATE TABLE visit_tokens (
        token TEXT NOT NULL,
        visit_uuid TEXT NOT NULL REFERENCES visits (uuid),
        PRIMARY KEY (token, visit_uuid)
    )""",
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        checkpoint_id TEXT NOT NULL REFERENCES checkpoints (id),
        kind TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        details TEXT NOT NULL,              -- JSON
        acked_at DOUBLE PRECISION
    )""",
    "CREATE INDEX alerts_pending ON alerts (checkpoint_id) WHERE acked_at IS NULL",
]

# A token a unit made before its clock was synchronised was keyed with the day its wrong clock
# read; once its time is corrected to another day, the unit sends that day along and the
# exposure check derives its key too (NULL: the day of the visit, as always).
SCHEMA_V2 = [
    "ALTER TABLE visit_tokens ADD COLUMN key_day TEXT",
    "CREATE INDEX visit_tokens_rekeyed ON visit_tokens (visit_uuid) WHERE key_day IS NOT NULL",
]

# How many records a unit sent that contradict the stored ones (the resend rule of
# collector/services/resend.py): refused, and counted for the province's operators. A resent
# record is compared with the stored one, tokens included: its tokens are looked up by the
# table's key and ``token_count`` says whether the stored visit has others (an index by visit
# would cost every insert a fifth of its speed; it is made only to count the existing rows).
SCHEMA_V3 = [
    "ALTER TABLE checkpoints ADD COLUMN refused_records BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE visits ADD COLUMN token_count INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX visit_tokens_counting ON visit_tokens (visit_uuid)",
    "UPDATE visits SET token_count ="
    " (SELECT count(*) FROM visit_tokens t WHERE t.visit_uuid = visits.uuid)",
    "DROP INDEX visit_tokens_counting",
]

MIGRATIONS = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3]
SCHEMA_VERSION = len(MIGRATIONS)


class Tx(Protocol):
    """A transaction: the few calls the collector needs, the same on both engines."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]: ...


class Database(Protocol):
    url: str
    engine: str

    def transaction(self, *, write: bool = False) -> Any: ...
    def close(self) -> None: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        cursor = self.conn.execute(sql, params)
        while rows := cursor.fetchmany(1000):
            yield from (tuple(r) for r in rows)


class SqliteDatabase:
    """A file; one connection per transaction (the server runs requests on a thread pool)."""

    engine = "sqlite"

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode = WAL")
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseError(f"cannot open the collector database {path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        # A streamed export may resume on another worker thread; one request uses it at a time.
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")  # an acknowledged batch survives a power cut
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[_SqliteTx]:
        conn = self._connect()
        try:
            # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead
            # of one failing at once when its read lock cannot be upgraded.
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def close(self) -> None:
        pass


_PLACEHOLDER = re.compile(r"\?")


class _PostgresTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self._sql(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._sql(sql), rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(self._sql(sql), params).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(self._sql(sql), params).fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor: the province-wide export never holds every row in memory.
        with self.conn.cursor(name="stream") as cur:
            cur.itersize = 2000
            cur.execute(self._sql(sql), params)
            yield from (tuple(r) for r in cur)


class PostgresDatabase:
    engine = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.url = url
        self._errors = (psycopg.Error,)
        try:
            # One direct attempt first: a wrong host or password fails at once with the server's
            # reason, instead of the pool retrying (and logging each retry) until its timeout.
            psycopg.connect(url, connect_timeout=10).close()
            self.pool = ConnectionPool(
                url, min_size=1, max_size=pool_size, open=True, timeout=30, name="collector"
            )
            self.pool.wait(timeout=10)
        except Exception as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {_redact(url)}: {_first_line(exc)}"
            ) from None

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[_PostgresTx]:
        with self.pool.connection() as conn, conn.transaction():
            yield _PostgresTx(conn)

    def close(self) -> None:
        self.pool.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


_open_lock = threading.Lock()


def open_database(url: str) -> SqliteDatabase | PostgresDatabase:
    """Open (creating or migrating the schema) the database a URL or path names."""
    text = url.strip()
    if text.startswith(("postgresql://", "postgres://")):
        db: SqliteDatabase | PostgresDatabase = PostgresDatabase(text)
    elif text.startswith("sqlite:///"):
        db = SqliteDatabase(text, Path(text.removeprefix("sqlite:///")).expanduser().resolve())
    elif text.startswith("sqlite://"):
        raise DatabaseError(f"{url!r}: write a SQLite URL as sqlite:///path/to/file.db")
    elif "://" in text:
        raise DatabaseError(f"{url!r}: the database must be a path, sqlite:/// or postgresql://")
    elif not text:
        raise DatabaseError("no database given: pass --database PATH or a postgresql:// URL")
    else:
        db = SqliteDatabase(text, Path(text).expanduser().resolve())
    with _open_lock:
        migrate(db)
    return db


def migrate(db: SqliteDatabase | PostgresDatabase) -> int:
    """Create the schema, or check the one there; returns how many versions were applied."""
    try:
        with db.transaction(write=True) as tx:
            if db.engine == "postgresql":
                # Two collectors starting at once on one database must not both create it.
                tx.execute("SELECT pg_advisory_xact_lock(4242)")
                exists = tx.one("SELECT to_regclass('meta') IS NOT NULL")
                has_meta = bool(exists and exists[0])
            else:
                has_meta = (
                    tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
                    is not None
                )
            version = 0
            if has_meta:
                row = tx.one("SELECT value FROM meta WHERE key = 'schema_version'")
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise DatabaseError(
                    f"the collector database is at schema {version}, newer than this software"
                    f" ({SCHEMA_VERSION}); install the release that wrote it"
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    tx.execute(statement)
            if version < SCHEMA_VERSION:
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
            return SCHEMA_VERSION - version
    except DatabaseError:
        raise
    except Exception as exc:
        raise DatabaseError(f"cannot prepare the collector database: {_first_line(exc)}") from None
