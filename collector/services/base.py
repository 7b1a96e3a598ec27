"""What every service shares: the database type, how secrets are kept, how times are written.

Secrets (enrollment codes, device and role tokens) are random, shown once, and stored only as
SHA-256 digests: they carry 80 to 256 bits, so a fast hash is enough and a leaked database gives
no working credential.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from collector.db import PostgresDatabase, SqliteDatabase

Db = SqliteDatabase | PostgresDatabase


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
