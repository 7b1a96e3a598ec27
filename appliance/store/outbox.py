"""The outbox: what the uploader reads from and marks in the visit log (docs/architecture.md §sync).

It has its own SQLite connection, so the uploader can run in its own thread beside the daemon's
loop (WAL; writes wait on the busy timeout). Only what docs/architecture.md §privacy allows is
ever read out for sending: a manual entry's details are never selected.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from appliance.errors import StoreError
from appliance.records import OutboxRecord, VisitRecord
from appliance.store.files import BUSY_TIMEOUT_MS, explain
from appliance.store.queries import IN_CHUNK, read_alerts
from appliance.store.visits import VisitLog


class Outbox:
    """Not thread-safe: one per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Created or migrated the way the daemon does it (a no-op on a current database), so
        # this connection always sees the current schema.
        VisitLog(self.path, check=False).close()
        try:
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA synchronous = FULL")
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    def close(self) -> None:
        self._conn.close()

    def _run(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    # -- reading ---------------------------------------------------------------------------

    def batch(self, limit: int) -> list[OutboxRecord]:
        """The oldest unsent live records, with their tokens."""
        rows = self._run(
            "SELECT id, uuid, revision, kind, protocol, entered_at, left_at, clock_synced,"
            " via_sensor FROM entries"
            " WHERE synced_at IS NULL AND sync_error IS NULL AND origin = 'live'"
            " ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        if not rows:
            return []
        tokens: dict[int, list[str]] = {}
        key_days: dict[int, dict[str, str]] = {}
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), IN_CHUNK):
            part = ids[i : i + IN_CHUNK]
            marks = ",".join("?" * len(part))
            for entry_id, token, key_day in self._run(
                f"SELECT entry_id, token, key_day FROM entry_tokens WHERE entry_id IN ({marks})"
                " ORDER BY entry_id, first_seen",
                part,
            ):
                tokens.setdefault(entry_id, []).append(token)
                if key_day is not None:
                    key_days.setdefault(entry_id, {})[token] = key_day
        records = []
        for entry_id, uuid, revision, kind, protocol, entered, left, synced, sensor in rows:
            record = VisitRecord(
                uuid=uuid,
                kind=kind,
                entered_at=entered,
                clock_synced=bool(synced),
                left_at=left,
                via_sensor=bool(sensor),
                protocol=protocol if kind == "app" else None,
                tokens=tuple(tokens.get(entry_id, [])),
                # Only tokens keyed with another day than their corrected time's (made before
                # the clock was synchronised): a record without any stays as older units send it.
                key_days=key_days.get(entry_id, {}),
            )
            records.append(OutboxRecord(uuid, revision, record.payload()))
        return records

    def backlog(self) -> int:
        row = self._run(
            "SELECT count(*) FROM entries"
            " WHERE synced_at IS NULL AND sync_error IS NULL AND origin = 'live'"
        ).fetchone()
        return int(row[0])

    def rejected(self) -> int:
        row = self._run("SELECT count(*) FROM entries WHERE sync_error IS NOT NULL").fetchone()
        return int(row[0])

    # -- marking ---------------------------------------------------------------------------

    def mark_synced(self, records: Iterable[OutboxRecord], when: float) -> int:
        """Mark acknowledged records; one that changed since it was read stays in the outbox."""
        pairs = [(when, r.uuid, r.revision) for r in records]
        try:
            with self._conn:
                before = self._conn.total_changes
                self._conn.executemany(
                    "UPDATE entries SET synced_at = ? WHERE uuid = ? AND revision = ?", pairs
                )
                return self._conn.total_changes - before
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    def mark_rejected(self, record: OutboxRecord, reason: str) -> None:
        """The collector refuses this record: keep it, out of the outbox, with the reason."""
        try:
            with self._conn:
                self._conn.execute(
                    "UPDATE entries SET sync_error = ? WHERE uuid = ? AND revision = ?",
                    (reason[:500], record.uuid, record.revision),
                )
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    def retry_rejected(self) -> int:
        """Put refused records back into the outbox (after a collector upgrade, say)."""
        try:
            with self._conn:
                return self._conn.execute(
                    "UPDATE entries SET sync_error = NULL WHERE sync_error IS NOT NULL"
                ).rowcount
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    # -- alerts ----------------------------------------------------------------------------

    def save_alerts(self, alerts: Iterable[dict[str, Any]], when: float) -> int:
        """Keep the collector's alerts (idempotent by ID); returns how many were new."""
        rows = []
        for alert in alerts:
            try:
                rows.append(
                    (
                        str(alert["id"]),
                        str(alert["kind"]),
                        str(alert["created_at"]),
                        when,
                        json.dumps(alert.get("details", {}), ensure_ascii=False),
                    )
                )
            except (KeyError, TypeError):
                continue  # a malformed alert is skipped; the collector sends it again
        try:
            with self._conn:
                before = self._conn.total_changes
                self._conn.executemany(
                    "INSERT OR IGNORE INTO alerts (id, kind, created_at, received_at, details)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                return self._conn.total_changes - before
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    def unacked_alerts(self) -> list[str]:
        return [r[0] for r in self._run("SELECT id FROM alerts WHERE acked = 0 ORDER BY id")]

    def mark_acked(self, ids: Iterable[str]) -> None:
        try:
            with self._conn:
                self._conn.executemany(
                    "UPDATE alerts SET acked = 1 WHERE id = ?", [(i,) for i in ids]
                )
        except (sqlite3.Error, OSError) as exc:
            raise explain(self.path, exc) from None

    def alerts(self, limit: int = 20) -> list[dict[str, Any]]:
        return read_alerts(self._conn, limit)


__all__ = ["Outbox", "OutboxRecord", "StoreError"]
