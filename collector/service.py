"""What the collector does, independent of HTTP: the API and the admin commands both call this.

Secrets (enrollment codes, device and role tokens) are random, shown once, and stored only as
SHA-256 digests: they carry 80 to 256 bits, so a fast hash is enough and a leaked database gives
no working credential.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid as uuidlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from appliance.core.exposure import MAX_OPEN_STAY_S, Case, CaseIdentifier, case_tokens
from appliance.errors import ServiceError
from collector.db import PostgresDatabase, SqliteDatabase

Db = SqliteDatabase | PostgresDatabase

ROLES = ("admin", "official", "health")
DEVICE_TOKEN_PREFIX = "cpd_"
ROLE_TOKEN_PREFIX = "cpr_"
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_LENGTH = 16  # 80 bits, typed as four groups of four
DEFAULT_TOKEN_DAYS = 730
MAX_TOKEN_DAYS = 3650
MAX_CODE_LIFETIME_S = 366 * 86400
# An exposure check widens each identifier's window by this much, as the device does
# (appliance.exposure_check.DAY_SLACK): a phone clock a little off around midnight still matches.
EXPOSURE_SLACK = timedelta(minutes=20)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- enrollment -----------------------------------------------------------------------------


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


def create_code(
    db: Db,
    *,
    agency: str,
    door: str,
    now: float,
    expires_s: float = 7 * 86400,
    checkpoint_id: str | None = None,
    token_days: int = DEFAULT_TOKEN_DAYS,
) -> NewCode:
    agency, door = agency.strip(), door.strip()
    if not agency or not door:
        raise ServiceError(422, "an enrollment code needs an agency and a door")
    if not 0 < expires_s <= MAX_CODE_LIFETIME_S:
        raise ServiceError(422, "a code's lifetime must be between 1 s and 366 days")
    if not 1 <= token_days <= MAX_TOKEN_DAYS:
        raise ServiceError(422, f"token_days must be 1..{MAX_TOKEN_DAYS}")
    if checkpoint_id is not None:
        checkpoint_id = checkpoint_id.strip()
        if not checkpoint_id or len(checkpoint_id) > 64 or not checkpoint_id.isprintable():
            raise ServiceError(422, f"checkpoint ID {checkpoint_id!r} is not usable")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
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


def enroll(db: Db, code: str, *, now: float, hostname: str | None = None) -> Enrollment:
    """Exchange a one-time code for a checkpoint ID and a bearer token."""
    code_hash = digest(normalise_code(code))
    token = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.transaction(write=True) as tx:
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
            raise ServiceError(
                410, f"enrollment code expired on {iso(expires_at)}: ask for a new one"
            )
        checkpoint_id = wanted_id or _new_checkpoint_id()
        while wanted_id is None and tx.one(
            "SELECT 1 FROM checkpoints WHERE id = ?", (checkpoint_id,)
        ):
            checkpoint_id = _new_checkpoint_id()
        # Claim the code before anything else, and only while it is unused: on PostgreSQL two
        # requests with one code run concurrently, and both saw it unused above.
        claimed = tx.execute(
            "UPDATE enrollment_codes SET used_at = ?, used_by = ? WHERE code_hash = ?"
            " AND used_at IS NULL",
            (now, checkpoint_id, code_hash),
        )
        if claimed.rowcount != 1:
            raise ServiceError(
                410, "enrollment code already used: ask the administrator for a new one"
            )
        token_expires_at = now + int(token_days) * 86400
        existing = tx.one("SELECT revoked_at FROM checkpoints WHERE id = ?", (checkpoint_id,))
        if existing is not None and not reenroll:
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
    if not 0 < expires_s <= MAX_CODE_LIFETIME_S:
        raise ServiceError(422, "a code's lifetime must be between 1 s and 366 days")
    with db.transaction() as tx:
        row = tx.one("SELECT agency, door FROM checkpoints WHERE id = ?", (checkpoint_id,))
    if row is None:
        raise ServiceError(404, f"no checkpoint {checkpoint_id}")
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    with db.transaction(write=True) as tx:
        tx.execute(
            "INSERT INTO enrollment_codes (code_hash, agency, door, checkpoint_id, created_at,"
            " expires_at, token_days, reenroll) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            (digest(raw), row[0], row[1], checkpoint_id, now, now + expires_s, DEFAULT_TOKEN_DAYS),
        )
    return NewCode(format_code(raw), row[0], row[1], checkpoint_id, now + expires_s)


# -- authentication -------------------------------------------------------------------------


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


# -- ingest ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitRecord:
    uuid: str
    kind: str
    protocol: str | None
    entered_at: float
    left_at: float | None
    clock_synced: bool
    via_sensor: bool
    tokens: tuple[str, ...]
    # (token, YYYY-MM-DD): the day whose key made a token, where it is not the visit's own
    # (made before the unit's clock was synchronised, corrected to another day since)
    key_days: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    new: int
    duplicates: int


CHUNK = 400  # rows per multi-row INSERT: 12 columns × 400 stays far below both engines' limits


def ingest(
    db: Db, checkpoint: Checkpoint, records: Sequence[VisitRecord], *, now: float, zone: ZoneInfo
) -> IngestResult:
    """Store a batch idempotently: a UUID already stored is a duplicate, never a second row.

    A record sent again may carry more than before (the stay's end, tokens of later
    rotations): those are merged into the stored one. A record first sent with an
    unsynchronised clock and sent again synchronised carries its corrected time (DESIGN.md
    §4.4): that replaces the stored times, never the other way round. The whole batch is one
    transaction, so a batch cut mid-way leaves nothing behind and its retry is simply new.
    """
    if not records:
        return IngestResult(0, 0, 0)
    unique: dict[str, VisitRecord] = {}
    for record in records:
        unique[record.uuid] = record  # the same UUID twice in one batch: the last wins
    batch = list(unique.values())
    new: set[str] = set()
    with db.transaction(write=True) as tx:
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
        corrected = [
            (r.entered_at, r.left_at, _local_day(r.entered_at, zone), r.uuid, checkpoint.id)
            for r in batch
            if r.uuid not in new and r.clock_synced
        ]
        if corrected:
            tx.many(
                "UPDATE visits SET entered_at = ?, left_at = ?, local_day = ?, clock_synced = 1"
                " WHERE uuid = ? AND checkpoint_id = ? AND clock_synced = 0",
                corrected,
            )
        ends = [
            (r.left_at, r.uuid, checkpoint.id)
            for r in batch
            if r.uuid not in new and r.left_at is not None
        ]
        if ends:
            tx.many(
                "UPDATE visits SET left_at = ? WHERE uuid = ? AND checkpoint_id = ?"
                " AND left_at IS NULL",
                ends,
            )
        tokens = []
        for r in batch:
            if r.tokens and (r.uuid in new or _owned(tx, r.uuid, checkpoint.id)):
                key_days = dict(r.key_days)
                tokens += [(t, r.uuid, key_days.get(t)) for t in r.tokens]
        if tokens:
            # A token first sent before its time was corrected learns its key day when the
            # corrected record comes; a day once known is never forgotten by a later send.
            tx.many(
                "INSERT INTO visit_tokens (token, visit_uuid, key_day) VALUES (?, ?, ?)"
                " ON CONFLICT (token, visit_uuid) DO UPDATE"
                " SET key_day = coalesce(excluded.key_day, visit_tokens.key_day)",
                tokens,
            )
    return IngestResult(len(records), len(new), len(records) - len(new))


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


# -- heartbeat and alerts -------------------------------------------------------------------


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
    alert_id = str(uuidlib.uuid4())
    tx.execute(
        "INSERT INTO alerts (id, checkpoint_id, kind, created_at, details) VALUES (?, ?, ?, ?, ?)",
        (alert_id, checkpoint_id, kind, now, json.dumps(details, ensure_ascii=False)),
    )
    return alert_id


# -- reports --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdoptionRow:
    day: str
    agency: str
    app: int
    no_app: int
    manual: int

    @property
    def rate(self) -> float | None:
        """app / (app + no app), as on the device (appliance.core.doorway.adoption_rate)."""
        sensed = self.app + self.no_app
        return self.app / sensed if sensed else None

    def as_json(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "day": self.day,
            "agency": self.agency,
            "app": self.app,
            "no_app": self.no_app,
            "manual": self.manual,
            "total": self.app + self.no_app + self.manual,
            "adoption_rate": None if rate is None else round(rate, 4),
        }


def check_days(first: date, last: date) -> None:
    if last < first:
        raise ServiceError(422, f"--to {last} is before --from {first}")
    if (last - first).days > 3660:
        raise ServiceError(422, "a report spans at most ten years")


def adoption(db: Db, first: date, last: date) -> list[AdoptionRow]:
    """Entries per agency and local day (the collector's time zone), first..last inclusive."""
    check_days(first, last)
    with db.transaction() as tx:
        rows = tx.all(
            "SELECT local_day, agency, kind, count(*) FROM visits"
            " WHERE local_day >= ? AND local_day <= ?"
            " GROUP BY local_day, agency, kind ORDER BY local_day, agency",
            (first.isoformat(), last.isoformat()),
        )
    table: dict[tuple[str, str], dict[str, int]] = {}
    for day, agency, kind, n in rows:
        table.setdefault((day, agency), {"app": 0, "no_app": 0, "manual": 0})[kind] = int(n)
    return [
        AdoptionRow(day, agency, c["app"], c["no_app"], c["manual"])
        for (day, agency), c in sorted(table.items())
    ]


EXPORT_COLUMNS = (
    "uuid", "checkpoint_id", "agency", "door", "kind", "protocol", "entered_at", "left_at",
    "clock_synced", "via_sensor",
)  # fmt: skip


def entries(db: Db, first: date, last: date) -> Iterator[tuple[Any, ...]]:
    """Every entry of the province, first..last (local days) inclusive, in time order."""
    check_days(first, last)
    with db.transaction() as tx:
        yield from tx.stream(
            f"SELECT {', '.join(EXPORT_COLUMNS)} FROM visits"
            " WHERE local_day >= ? AND local_day <= ? ORDER BY entered_at, uuid",
            (first.isoformat(), last.isoformat()),
        )


# -- exposure -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExposureMatch:
    visit: str
    checkpoint_id: str
    agency: str
    door: str
    protocol: str | None
    entered_at: float
    left_at: float | None
    matched_tokens: int
    overlapping: dict[str, int]

    def as_json(self, zone: ZoneInfo) -> dict[str, Any]:
        def local(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, zone).isoformat()

        return {
            "visit": self.visit,
            "checkpoint_id": self.checkpoint_id,
            "agency": self.agency,
            "door": self.door,
            "protocol": self.protocol,
            "entered_at": iso(self.entered_at),
            "left_at": iso(self.left_at),
            "entered_local": local(self.entered_at),
            "left_local": local(self.left_at),
            "matched_tokens": self.matched_tokens,
            "overlapping": self.overlapping,
        }


def _rekeyed_days(tx: Any) -> dict[date, set[date]]:
    """UTC day → the other days whose keys made tokens of visits on that day (tokens made
    before a unit's clock was synchronised). The collector does not have each token's time:
    every day of the visit's stay counts, widened by the slack."""
    found: dict[date, set[date]] = {}
    for key_day, entered, left in tx.all(
        "SELECT DISTINCT t.key_day, v.entered_at, v.left_at FROM visit_tokens t"
        " JOIN visits v ON v.uuid = t.visit_uuid WHERE t.key_day IS NOT NULL"
    ):
        try:
            keyed = date.fromisoformat(key_day)
        except (TypeError, ValueError):
            continue
        end = left if left is not None else entered + MAX_OPEN_STAY_S
        day = (datetime.fromtimestamp(entered, UTC) - EXPOSURE_SLACK).date()
        last = (datetime.fromtimestamp(end, UTC) + EXPOSURE_SLACK).date()
        while day <= last:
            found.setdefault(day, set()).add(keyed)
            day += timedelta(days=1)
    return found


def exposure_check(
    db: Db, secret: bytes, case: Case, *, now: float, alert: bool = True
) -> list[ExposureMatch]:
    """Recompute the case's tokens (the device's derivation), find its visits at every
    checkpoint, count who else was there, and queue an alert for each checkpoint it visited."""
    hits: dict[str, list[Any]] = {}
    with db.transaction(write=alert) as tx:
        wanted: dict[str, CaseIdentifier] = case_tokens(
            case, secret, slack=EXPOSURE_SLACK, rekeyed=_rekeyed_days(tx)
        )
        tokens = list(wanted)
        for i in range(0, len(tokens), 500):
            part = tokens[i : i + 500]
            marks = ", ".join("?" * len(part))
            for row in tx.all(
                "SELECT v.uuid, v.checkpoint_id, v.agency, v.door, v.protocol, v.entered_at,"
                " v.left_at FROM visit_tokens t JOIN visits v ON v.uuid = t.visit_uuid"
                f" WHERE t.token IN ({marks})",
                part,
            ):
                hit = hits.setdefault(row[0], [*row, 0])
                hit[7] += 1
        matches: list[ExposureMatch] = []
        for v_uuid, cp, agency, door, protocol, entered, left, count in sorted(
            hits.values(), key=lambda h: (h[5], h[0])
        ):
            end = left if left is not None else min(now, entered + MAX_OPEN_STAY_S)
            overlap = {"app": 0, "no_app": 0, "manual": 0}
            # As on the device (VisitLog.overlapping_app_entries): an app stay with no end
            # lasts until now, at most MAX_OPEN_STAY_S; entries without a stay (no app,
            # manual) count if they came in during the visit.
            for kind, n in tx.all(
                "SELECT kind, count(*) FROM visits WHERE checkpoint_id = ? AND uuid <> ?"
                " AND entered_at < ? AND (CASE WHEN kind = 'app' THEN coalesce(left_at,"
                " CASE WHEN entered_at + ? < ? THEN entered_at + ? ELSE ? END)"
                " ELSE entered_at END) >= ? GROUP BY kind",
                (cp, v_uuid, end, MAX_OPEN_STAY_S, now, MAX_OPEN_STAY_S, now, entered),
            ):
                overlap[kind] = int(n)
            matches.append(
                ExposureMatch(v_uuid, cp, agency, door, protocol, entered, left, count, overlap)
            )
        if alert:
            by_checkpoint: dict[str, list[ExposureMatch]] = {}
            for m in matches:
                by_checkpoint.setdefault(m.checkpoint_id, []).append(m)
            for cp, visits in by_checkpoint.items():
                add_alert(
                    tx,
                    cp,
                    "exposure",
                    {
                        "visits": [
                            {"entered_at": iso(m.entered_at), "left_at": iso(m.left_at)}
                            for m in visits
                        ]
                    },
                    now,
                )
    return matches
