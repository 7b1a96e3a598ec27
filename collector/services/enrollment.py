"""Enrollment: one-time codes an administrator issues per door, exchanged by the unit for its
checkpoint ID and device token; a re-enrollment code gives an enrolled unit a new token."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from appliance.errors import ServiceError
from collector.services.auth import DEVICE_TOKEN_PREFIX
from collector.services.base import Db, digest, iso

CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH: Final = 16  # 80 bits, typed as four groups of four
DEFAULT_TOKEN_DAYS: Final = 730
MAX_TOKEN_DAYS: Final = 3650
DEFAULT_CODE_LIFETIME_S: Final = 7 * 86400  # a week: time to carry the code to the door
MAX_CODE_LIFETIME_S: Final = 366 * 86400
# A checkpoint ID an administrator chooses (`TQ-STTTT-01`); generated ones are `CP-` and 8 more.
CHECKPOINT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def normalise_code(text: str) -> str:
    """What the person typed, as stored: case, dashes and spaces ignored, O/I/L read as 0/1."""
    cleaned = text.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans("OIL", "011"))


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


@dataclass(frozen=True, slots=True)
class NewCode:
    code: str
    agency: str
    door: str
    checkpoint_id: str | None
    expires_at: float


def _check_lifetime(expires_s: float) -> None:
    if not 0 < expires_s <= MAX_CODE_LIFETIME_S:
        raise ServiceError(422, "a code's lifetime must be between 1 s and 366 days")


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create_code(
    db: Db,
    *,
    agency: str,
    door: str,
    now: float,
    expires_s: float = DEFAULT_CODE_LIFETIME_S,
    checkpoint_id: str | None = None,
    token_days: int = DEFAULT_TOKEN_DAYS,
) -> NewCode:
    agency, door = agency.strip(), door.strip()
    if not agency or not door:
        raise ServiceError(422, "an enrollment code needs an agency and a door")
    _check_lifetime(expires_s)
    if not 1 <= token_days <= MAX_TOKEN_DAYS:
        raise ServiceError(422, f"token_days must be 1..{MAX_TOKEN_DAYS}")
    if checkpoint_id is not None:
        checkpoint_id = checkpoint_id.strip()
        if not re.fullmatch(CHECKPOINT_ID_PATTERN, checkpoint_id):
            raise ServiceError(
                422, f"checkpoint ID {checkpoint_id!r}: use letters, digits, '.', '_', '-' (64)"
            )
    raw = _new_code()
    expires_at = now + expires_s
    with db.transaction(write=True) as tx:
        if checkpoint_id is not None and tx.one(
            "SELECT 1 FROM checkpoints WHERE id = ?", (checkpoint_id,)
        ):
            raise ServiceError(409, f"checkpoint {checkpoint_id} is already enrolled")
        tx.execute(
            "INSERT INTO enrollment_codes (code_hash, agency, door, checkpoint_id, created_at,"
            " expires_at, token_days) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (digest(raw), agency, door, checkpoint_id, now, expires_at, token_days),
        )
    return NewCode(format_code(raw), agency, door, checkpoint_id, expires_at)


@dataclass(frozen=True, slots=True)
class Enrollment:
    checkpoint_id: str
    token: str
    agency: str
    door: str
    token_expires_at: float


def _new_checkpoint_id() -> str:
    return "CP-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


def _free_checkpoint_id(tx: Any) -> str:
    checkpoint_id = _new_checkpoint_id()
    while tx.one("SELECT 1 FROM checkpoints WHERE id = ?", (checkpoint_id,)):
        checkpoint_id = _new_checkpoint_id()
    return checkpoint_id


@dataclass(frozen=True, slots=True)
class _Claimed:
    """An enrollment code just marked used, and what it grants."""

    checkpoint_id: str
    agency: str
    door: str
    token_days: int
    reenroll: bool


def _claim(tx: Any, code_hash: str, *, now: float) -> _Claimed:
    """Mark the code used and say what it grants, or refuse: unknown, used, expired."""
    row = tx.one(
        "SELECT agency, door, checkpoint_id, expires_at, token_days, used_at, used_by,"
        " reenroll FROM enrollment_codes WHERE code_hash = ?",
        (code_hash,),
    )
    if row is None:
        raise ServiceError(403, "unknown enrollment code: check it, or ask for a new one")
    agency, door, wanted_id, expires_at, token_days, used_at, used_by, reenroll = row
    if used_at is not None:
        raise ServiceError(
            410,
            f"enrollment code already used on {iso(used_at)} by {used_by}:"
            " ask the administrator for a new one",
        )
    if expires_at <= now:
        raise ServiceError(410, f"enrollment code expired on {iso(expires_at)}: ask for a new one")
    checkpoint_id = wanted_id or _free_checkpoint_id(tx)
    # Claim the code before anything else, and only while it is unused: on PostgreSQL two
    # requests with one code run concurrently, and both saw it unused above.
    updated = tx.execute(
        "UPDATE enrollment_codes SET used_at = ?, used_by = ? WHERE code_hash = ?"
        " AND used_at IS NULL",
        (now, checkpoint_id, code_hash),
    )
    if updated.rowcount != 1:
        raise ServiceError(410, "enrollment code already used: ask the administrator for a new one")
    return _Claimed(checkpoint_id, agency, door, int(token_days), bool(reenroll))


def enroll(db: Db, code: str, *, now: float, hostname: str | None = None) -> Enrollment:
    """Exchange a one-time code for a checkpoint ID and a bearer token."""
    code_hash = digest(normalise_code(code))
    token = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction(write=True) as tx:
        claimed = _claim(tx, code_hash, now=now)
        checkpoint_id, agency, door = claimed.checkpoint_id, claimed.agency, claimed.door
        token_expires_at = now + claimed.token_days * 86400
        existing = tx.one("SELECT revoked_at FROM checkpoints WHERE id = ?", (checkpoint_id,))
        if existing is not None and not claimed.reenroll:
            # Two codes made for one new ID: the second must not take the first unit over.
            raise ServiceError(
                409,
                f"checkpoint {checkpoint_id} is already enrolled: ask for a re-enrollment code"
                " (checkpoint-collector codes reenroll)",
            )
        if existing is None:
            tx.execute(
                "INSERT INTO checkpoints (id, agency, door, token_hash, token_expires_at,"
                " enrolled_at, hostname) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (checkpoint_id, agency, door, digest(token), token_expires_at, now, hostname),
            )
        else:
            # A code issued for an existing ID re-enrolls it (a replaced SD card): the old
            # token stops working, the unit's history stays.
            tx.execute(
                "UPDATE checkpoints SET agency = ?, door = ?, token_hash = ?,"
                " token_expires_at = ?, enrolled_at = ?, hostname = ?, revoked_at = NULL"
                " WHERE id = ?",
                (agency, door, digest(token), token_expires_at, now, hostname, checkpoint_id),
            )
    return Enrollment(checkpoint_id, token, agency, door, token_expires_at)


def reenroll_code(db: Db, checkpoint_id: str, *, now: float, expires_s: float) -> NewCode:
    """A code that gives an existing checkpoint a new token (lost token, replaced card)."""
    _check_lifetime(expires_s)
    with db.transaction() as tx:
        row = tx.one("SELECT agency, door FROM checkpoints WHERE id = ?", (checkpoint_id,))
    if row is None:
        raise ServiceError(404, f"no checkpoint {checkpoint_id}")
    raw = _new_code()
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO enrollment_codes (code_hash, agency, door, checkpoint_id, created_at,"
            " expires_at, token_days, reenroll) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            (digest(raw), row[0], row[1], checkpoint_id, now, now + expires_s, DEFAULT_TOKEN_DAYS),
        )
    return NewCode(format_code(raw), row[0], row[1], checkpoint_id, now + expires_s)
