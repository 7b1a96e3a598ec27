"""Ingest: a unit's batch of visit records stored idempotently, resent records merged.

The records are ``appliance.records.VisitRecord``, the one definition the device's outbox
builds them with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from appliance.records import VisitRecord
from collector.services.auth import Checkpoint
from collector.services.base import Db

CHUNK: Final = (
    400  # rows per multi-row INSERT: 12 columns × 400 stays far below both engines' limits
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    new: int
    duplicates: int


def ingest(
    db: Db, checkpoint: Checkpoint, records: Sequence[VisitRecord], *, now: float, zone: ZoneInfo
) -> IngestResult:
    """Store a batch idempotently: a UUID already stored is a duplicate, never a second row.

    A record sent again may carry more than before (the stay's end, tokens of later
    rotations): those are merged into the stored one. A record first sent with an
    unsynchronised clock and resent synchronised carries its corrected time (docs/architecture.md
    §time): that replaces the stored times, never the other way round. The whole batch is one
    transaction, so a batch cut mid-way leaves nothing behind and its retry is simply new.
    """
    if not records:
        return IngestResult(0, 0, 0)
    unique: dict[str, VisitRecord] = {}
    for record in records:
        unique[record.uuid] = record  # the same UUID twice in one batch: the last wins
    batch = list(unique.values())
    with db.transaction(write=True) as tx:
        new = _insert_new(tx, checkpoint, batch, now=now, zone=zone)
        resent = [r for r in batch if r.uuid not in new]
        _merge_resent(tx, checkpoint, resent, zone=zone)
        _merge_tokens(tx, checkpoint, batch, new)
    return IngestResult(len(records), len(new), len(records) - len(new))


def _insert_new(
    tx: Any, checkpoint: Checkpoint, batch: list[VisitRecord], *, now: float, zone: ZoneInfo
) -> set[str]:
    """Insert the records not stored yet; returns their UUIDs."""
    new: set[str] = set()
    for start in range(0, len(batch), CHUNK):
        part = batch[start : start + CHUNK]
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
        params: list[Any] = []
        for r in part:
            day = _local_day(r.entered_at, zone)
            params += [
                r.uuid, checkpoint.id, checkpoint.agency, checkpoint.door, r.kind,
                r.protocol, r.entered_at, r.left_at, day, int(r.clock_synced),
                int(r.via_sensor), now,
            ]  # fmt: skip
        rows = tx.all(
            "INSERT INTO visits (uuid, checkpoint_id, agency, door, kind, protocol,"
            " entered_at, left_at, local_day, clock_synced, via_sensor, received_at)"
            f" VALUES {marks} ON CONFLICT (uuid) DO NOTHING RETURNING uuid",
            params,
        )
        new.update(row[0] for row in rows)
    return new


def _merge_resent(
    tx: Any, checkpoint: Checkpoint, resent: list[VisitRecord], *, zone: ZoneInfo
) -> None:
    """A resent record's corrected time and its stay's end, into this checkpoint's own row."""
    corrected = [
        (r.entered_at, r.left_at, _local_day(r.entered_at, zone), r.uuid, checkpoint.id)
        for r in resent
        if r.clock_synced
    ]
    if corrected:
        tx.many(
            "UPDATE visits SET entered_at = ?, left_at = ?, local_day = ?, clock_synced = 1"
            " WHERE uuid = ? AND checkpoint_id = ? AND clock_synced = 0",
            corrected,
        )
    ends = [(r.left_at, r.uuid, checkpoint.id) for r in resent if r.left_at is not None]
    if ends:
        tx.many(
            "UPDATE visits SET left_at = ? WHERE uuid = ? AND checkpoint_id = ?"
            " AND left_at IS NULL",
            ends,
        )


def _merge_tokens(tx: Any, checkpoint: Checkpoint, batch: list[VisitRecord], new: set[str]) -> None:
    tokens: list[tuple[str, str, str | None]] = []
    for r in batch:
        if r.tokens and (r.uuid in new or _owned(tx, r.uuid, checkpoint.id)):
            tokens += [(t, r.uuid, r.key_days.get(t)) for t in r.tokens]
    if tokens:
        # A token first sent before its time was corrected learns its key day when the
        # corrected record comes; a day once known is never forgotten by a later send.
        tx.many(
            "INSERT INTO visit_tokens (token, visit_uuid, key_day) VALUES (?, ?, ?)"
            " ON CONFLICT (token, visit_uuid) DO UPDATE"
            " SET key_day = coalesce(excluded.key_day, visit_tokens.key_day)",
            tokens,
        )


def _local_day(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).date().isoformat()


def _owned(tx: Any, visit_uuid: str, checkpoint_id: str) -> bool:
    """A duplicate's tokens are merged only into this checkpoint's own record."""
    return (
        tx.one(
            "SELECT 1 FROM visits WHERE uuid = ? AND checkpoint_id = ?", (visit_uuid, checkpoint_id)
        )
        is not None
    )
