"""Who a bearer token belongs to: a door unit (device token) or a person's role (role token).
Each refusal is a 401 or 403 that says exactly why, so the unit or the official can act on it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from appliance.errors import ServiceError
from collector.services.base import Db, digest, iso

ROLES: Final = ("admin", "official", "health")
DEVICE_TOKEN_PREFIX: Final = "cpd_"
ROLE_TOKEN_PREFIX: Final = "cpr_"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: str
    agency: str
    door: str
    token_expires_at: float | None = None


def device(db: Db, token: str | None, *, now: float) -> Checkpoint:
    """The checkpoint a bearer token belongs to, or a 401 saying exactly why not."""
    if not token:
        raise ServiceError(401, "no bearer token: enroll the unit with `checkpoint enroll`")
    with db.transaction() as tx:
        row = tx.one(
            "SELECT id, agency, door, token_expires_at, revoked_at FROM checkpoints"
            " WHERE token_hash = ?",
            (digest(token),),
        )
    if row is None:
        raise ServiceError(
            401, "unknown device token: enroll the unit again with a new code", advice=None
        )
    checkpoint_id, agency, door, expires_at, revoked_at = row
    if revoked_at is not None:
        raise ServiceError(401, f"the token of {checkpoint_id} was revoked on {iso(revoked_at)}")
    if expires_at is not None and expires_at <= now:
        raise ServiceError(
            401,
            f"the token of {checkpoint_id} expired on {iso(expires_at)}:"
            " enroll the unit again with a new code",
        )
    return Checkpoint(checkpoint_id, agency, door, expires_at)


def create_role_token(db: Db, role: str, *, label: str, now: float, days: int | None = None) -> str:
    if role not in ROLES:
        raise ServiceError(422, f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = ROLE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO role_tokens (token_hash, role, label, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (digest(token), role, label, now, None if days is None else now + days * 86400),
        )
    return token


def role(db: Db, token: str | None, allowed: Sequence[str], *, now: float) -> str:
    """The role of a bearer token if it is one of ``allowed`` (admin may do everything)."""
    if not token:
        raise ServiceError(401, "this needs a bearer token (checkpoint-collector tokens create)")
    with db.transaction() as tx:
        row = tx.one(
            "SELECT role, expires_at, revoked_at FROM role_tokens WHERE token_hash = ?",
            (digest(token),),
        )
    if row is None:
        if token.startswith(DEVICE_TOKEN_PREFIX):
            raise ServiceError(403, "a door unit's token may not do this")
        raise ServiceError(401, "unknown token")
    granted, expires_at, revoked_at = row
    if revoked_at is not None:
        raise ServiceError(401, f"token revoked on {iso(revoked_at)}")
    if expires_at is not None and expires_at <= now:
        raise ServiceError(401, f"token expired on {iso(expires_at)}")
    if granted != "admin" and granted not in allowed:
        raise ServiceError(403, f"a {granted} token may not do this (needs {' or '.join(allowed)})")
    return str(granted)
