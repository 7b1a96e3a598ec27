"""Heartbeats and alerts: a unit reports its health and acknowledges alerts; the reply carries
the alerts it has not acknowledged yet (an exposure found at its door, say)."""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Iterable
from typing import Any

from collector.services.auth import Checkpoint
from collector.services.base import Db, iso


def heartbeat(
    db: Db,
    checkpoint: Checkpoint,
    *,
    health: dict[str, Any],
    acked: Iterable[str],
    now: float,
    hostname: str | None = None,
) -> list[dict[str, Any]]:
    """Record the unit's health; acknowledge alerts; return the alerts it has not acknowledged."""
    with db.transaction(write=True) as tx:
        tx.execute(
            "UPDATE checkpoints SET last_seen_at = ?, health = ?,"
            " hostname = coalesce(?, hostname) WHERE id = ?",
            (now, _health_text(health), hostname, checkpoint.id),
        )
        done = [(now, alert_id, checkpoint.id) for alert_id in acked]
        if done:
            tx.many(
                "UPDATE alerts SET acked_at = ? WHERE id = ? AND checkpoint_id = ?"
                " AND acked_at IS NULL",
                done,
            )
        rows = tx.all(
            "SELECT id, kind, created_at, details FROM alerts"
            " WHERE checkpoint_id = ? AND acked_at IS NULL ORDER BY created_at, id",
            (checkpoint.id,),
        )
    return [
        {"id": r[0], "kind": r[1], "created_at": iso(r[2]), "details": json.loads(r[3])}
        for r in rows
    ]


def _health_text(health: dict[str, Any]) -> str:
    """A unit's report as JSON text; escaped to ASCII only if it holds a lone surrogate
    (which no database can store; NUL is always escaped by JSON)."""
    text = json.dumps(health, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(health, ensure_ascii=True)
    return text


def add_alert(tx: Any, checkpoint_id: str, kind: str, details: dict[str, Any], now: float) -> str:
    """Queue an alert for a checkpoint, inside the caller's transaction; returns its ID."""
    alert_id = str(uuidlib.uuid4())
    tx.execute(
        "INSERT INTO alerts (id, checkpoint_id, kind, created_at, details) VALUES (?, ?, ?, ?, ?)",
        (alert_id, checkpoint_id, kind, now, json.dumps(details, ensure_ascii=False)),
    )
    return alert_id
