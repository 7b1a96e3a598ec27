"""Ingest: a unit's batch of visit records stored idempotently, resent records merged by the
resend rule (``resend.py``) and conflicting ones refused.

The records are ``appliance.records.VisitRecord``, the one definition the device's outbox
builds them with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from appliance.records import VisitRecord
from collector.services.auth import Checkpoint
from collector.services.base import Db
from collector.services.resend import Visit, conflict, merged

# Rows per multi-row INSERT: 13 columns × 400 stays far below both engines' limits.
CHUNK: Final = 400
_COLUMNS: Final = "checkpoint_id, kind, protocol, entered_at, left_at, clock_synced, via_sensor"


@dataclass(frozen=True, slots=True)
class Refusal:
    uuid: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    new: int
    duplicates: int
    refused: tuple[Refusal, ...] = ()


@dataclass
class _Batch:
    """A batch folded by UUID: each visit as it will be stored, and what was refused."""

    stored: dict[str, Visit]  # as the database has them now
    visits: dict[str, Visit] = field(default_factory=dict)  # as they will be
    copies: Counter[str] = field(default_factory=Counter)  # accepted copies of each UUID
    refused: list[Refusal] = field(default_factory=list)

    def take(self, uuid: str, copy: Visit, copies: int = 1) -> None:
        current = self.visits.get(uuid, self.stored.get(uuid))
        if current is None:
            self.visits[uuid] = copy
        elif (reason := conflict(current, copy)) is not None:
            self.refused += [Refusal(uuid, reason)] * copies
            return
        else:
            self.visits[uuid] = merged(current, copy)
        self.copies[uuid] += copies


def ingest(
    db: Db, checkpoint: Checkpoint, records: Sequence[VisitRecord], *, now: float, zone: ZoneInfo
) -> IngestResult:
    """Store a batch idempotently: a UUID already stored is a duplicate, never a second row.

    A copy of a stored record may add what the unit learned since (the resend rule,
    ``resend.py``); one that contradicts it is refused, named with its reason in the result,
    counted on the checkpoint, and changes nothing. The whole batch is one transaction, so a
    batch cut mid-way leaves nothing behind and its retry is simply new.
    """
    if not records:
        return IngestResult(0, 0, 0)
    lock = " FOR UPDATE" if db.engine == "postgresql" else ""  # SQLite's writer is alone
    batch = _Batch({})
    for record in records:  # copies within the batch are folded first
        batch.take(record.uuid, Visit.of(record, checkpoint.id))
    with db.transaction(write=True) as tx:
        new = _insert(tx, checkpoint, batch.visits, now=now, zone=zone)
        resent = {u: v for u, v in batch.visits.items() if u not in new}
        if resent:
            # Stored before (or by a concurrent batch meanwhile): each is judged as a copy.
            batch.stored.update(_load(tx, {u: set(v.key_days) for u, v in resent.items()}, lock))
            for uuid, visit in resent.items():
                del batch.visits[uuid]
                batch.take(uuid, visit, batch.copies.pop(uuid))
        _update(tx, batch, new, zone)
        if batch.refused:
            tx.execute(
                "UPDATE checkpoints SET refused_records = refused_records + ? WHERE id = ?",
                (len(batch.refused), checkpoint.id),
            )
    refused = tuple(batch.refused)
    return IngestResult(len(records), len(new), len(records) - len(new) - len(refused), refused)


def _load(tx: Any, sent: dict[str, set[str]], lock: str) -> dict[str, Visit]:
    """The stored visits among ``sent`` (UUID → every token the batch sent for it), with those
    of their tokens the batch sent too: enough to compare each copy with them."""
    rows: list[tuple[Any, ...]] = []
    ordered = sorted(sent)
    for start in range(0, len(ordered), CHUNK):
        part = ordered[start : start + CHUNK]
        marks = ", ".join("?" * len(part))
        rows += tx.all(
            f"SELECT uuid, {_COLUMNS}, token_count FROM visits WHERE uuid IN ({marks}){lock}",
            part,
        )
    wanted = {(uuid, token) for uuid, *_ in rows for token in sent[uuid]}
    tokens: dict[str, dict[str, str | None]] = {}
    asked = sorted({token for _, token in wanted})  # a batch of new records asks for none
    for start in range(0, len(asked), CHUNK):
        part = asked[start : start + CHUNK]
        marks = ", ".join("?" * len(part))
        for uuid, token, key_day in tx.all(
            f"SELECT visit_uuid, token, key_day FROM visit_tokens WHERE token IN ({marks})", part
        ):
            if (uuid, token) in wanted:
                tokens.setdefault(uuid, {})[token] = key_day
    return {
        uuid: Visit(cp, kind, protocol, entered, left, bool(synced), bool(sensor),
                    tokens.get(uuid, {}), count)
        for uuid, cp, kind, protocol, entered, left, synced, sensor, count in rows
    }  # fmt: skip


def _insert(
    tx: Any, checkpoint: Checkpoint, fresh: dict[str, Visit], *, now: float, zone: ZoneInfo
) -> set[str]:
    """Insert the visits whose UUID is not stored yet; returns the UUIDs this stored."""
    new: set[str] = set()
    items = list(fresh.items())
    for start in range(0, len(items), CHUNK):
        part = items[start : start + CHUNK]
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
        params: list[Any] = []
        for uuid, v in part:
            params += [
                uuid, checkpoint.id, checkpoint.agency, checkpoint.door, v.kind, v.protocol,
                v.entered_at, v.left_at, _local_day(v.entered_at, zone), int(v.clock_synced),
                int(v.via_sensor), v.token_count, now,
            ]  # fmt: skip
        rows = tx.all(
            "INSERT INTO visits (uuid, checkpoint_id, agency, door, kind, protocol,"
            " entered_at, left_at, local_day, clock_synced, via_sensor, token_count, received_at)"
            f" VALUES {marks} ON CONFLICT (uuid) DO NOTHING RETURNING uuid",
            params,
        )
        new.update(row[0] for row in rows)
    _add_tokens(tx, ((u, t, d) for u in new for t, d in fresh[u].key_days.items()))
    return new


def _update(tx: Any, batch: _Batch, new: set[str], zone: ZoneInfo) -> None:
    """Write what accepted copies added to stored visits: times, tokens, key days."""
    times: list[tuple[Any, ...]] = []
    tokens: list[tuple[str, str, str | None]] = []
    for uuid, visit in batch.visits.items():
        before = batch.stored.get(uuid)
        if uuid in new or before is None:
            continue
        if visit.times != before.times or visit.token_count != before.token_count:
            entered, left, synced = visit.times
            times.append((entered, left, _local_day(entered, zone), int(synced),
                          visit.token_count, uuid))  # fmt: skip
        tokens += [
            (uuid, t, d) for t, d in visit.key_days.items()
            if t not in before.key_days or before.key_days[t] != d
        ]  # fmt: skip
    if times:
        tx.many(
            "UPDATE visits SET entered_at = ?, left_at = ?, local_day = ?, clock_synced = ?,"
            " token_count = ? WHERE uuid = ?",
            times,
        )
    _add_tokens(tx, tokens)


def _add_tokens(tx: Any, rows: Iterable[tuple[str, str, str | None]]) -> None:
    params = [(token, uuid, key_day) for uuid, token, key_day in rows]
    if params:
        # A token first sent before its time was corrected learns its key day when the
        # corrected record comes; a day once known is never forgotten nor changed.
        tx.many(
            "INSERT INTO visit_tokens (token, visit_uuid, key_day) VALUES (?, ?, ?)"
            " ON CONFLICT (token, visit_uuid) DO UPDATE"
            " SET key_day = coalesce(visit_tokens.key_day, excluded.key_day)",
            params,
        )


def _local_day(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).date().isoformat()
