"""The sync protocol's messages. They are the OpenAPI document (``/openapi.json``).

Only what docs/architecture.md §privacy allows may arrive: ``extra="forbid"`` refuses any
other field (a name, a phone number, a raw identifier) by name: a leaking unit is told at once.
"""

from __future__ import annotations

import math
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from appliance.records import (
    LATEST_TIMESTAMP,
    MAX_RECORDS_PER_BATCH,
    MAX_TOKENS_PER_RECORD,
    SENT_KINDS,
    UUID_PATTERN,
)
from collector.services.enrollment import DEFAULT_CODE_LIFETIME_S, MAX_CODE_LIFETIME_S

if TYPE_CHECKING:
    SentKind = str
else:
    # The kinds appliance.records names, as the schema's enum (Literal takes the tuple whole).
    SentKind = Literal[SENT_KINDS]

Token = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2099, 12, 31)  # an exposure check's first_day


def _printable(value: Any) -> Any:
    """No NUL and no lone surrogate in any text (PostgreSQL and UTF-8 refuse them)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (a lone surrogate was sent)") from None
    elif isinstance(value, list):
        for item in value:
            _printable(item)
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_bad_text(cls, value: Any) -> Any:
        return _printable(value)


class EnrollRequest(Strict):
    code: str = Field(min_length=4, max_length=64, description="the one-time enrollment code")
    hostname: str | None = Field(default=None, max_length=255)
    software: str | None = Field(default=None, max_length=64)


class EnrollReply(Strict):
    checkpoint_id: str
    token: str = Field(description="the bearer token for every later request; shown once")
    agency: str
    door: str
    token_expires_at: str
    province_key: str | None = Field(
        default=None,
        description="the province secret for visit tokens (base64), when the collector has it",
    )


class VisitIn(Strict):
    """One entry at the door. App entries carry tokens (HMACs), never an identifier."""

    uuid: str = Field(pattern=UUID_PATTERN)
    kind: SentKind
    protocol: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    entered_at: float = Field(
        strict=True, ge=0, le=LATEST_TIMESTAMP, description="UNIX seconds, UTC"
    )
    left_at: float | None = Field(default=None, strict=True, ge=0, le=LATEST_TIMESTAMP)
    clock_synced: bool = Field(default=True, strict=True)
    via_sensor: bool = Field(default=False, strict=True)
    tokens: list[Token] = Field(default_factory=list, max_length=MAX_TOKENS_PER_RECORD)
    key_days: dict[Token, date] = Field(
        default_factory=dict,
        max_length=MAX_TOKENS_PER_RECORD,
        description="for tokens made before the unit's clock was synchronised: the UTC day whose"
        " key made the token, when its corrected time is on another day (absent: its day)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VisitIn:
        if not math.isfinite(self.entered_at):
            raise ValueError("entered_at must be a finite number")
        if self.left_at is not None and self.left_at < self.entered_at:
            raise ValueError("left_at is before entered_at")
        if self.kind == "app" and self.protocol is None:
            raise ValueError("an app entry needs its protocol")
        if self.kind != "app" and (self.tokens or self.protocol is not None):
            raise ValueError(f"a {self.kind} entry carries no protocol and no tokens")
        if not self.key_days.keys() <= set(self.tokens):
            raise ValueError("key_days names a token the record does not carry")
        if not all(EARLIEST_DAY <= day <= LATEST_DAY for day in self.key_days.values()):
            raise ValueError(f"a key day must be between {EARLIEST_DAY} and {LATEST_DAY}")
        return self


class VisitBatch(Strict):
    records: list[VisitIn] = Field(max_length=MAX_RECORDS_PER_BATCH)


class RefusedRecord(Strict):
    uuid: str
    reason: str = Field(description="one line: what the copy contradicts in the stored record")


class IngestReply(Strict):
    received: int
    new: int = Field(description="records stored for the first time")
    duplicates: int = Field(
        description="copies of records already stored (a retried batch, a stay's end, a later"
        " token, corrected times): merged by the resend rule, never stored twice"
    )
    refused: list[RefusedRecord] = Field(
        default_factory=list,
        description="copies that contradict the stored record (another kind, other times,"
        " tokens that are not a later copy's, another checkpoint's UUID): not stored, the stored"
        " record unchanged; the unit keeps them aside and stops sending them",
    )


class DeviceReply(Strict):
    checkpoint_id: str
    agency: str
    door: str
    token_expires_at: str | None


class HeartbeatRequest(Strict):
    health: dict[str, Any] = Field(
        default_factory=dict, description="the unit's health: scanner, beacon, clock, backlog…"
    )
    acked_alerts: list[str] = Field(default_factory=list, max_length=1000)
    hostname: str | None = Field(default=None, max_length=255)


class Alert(Strict):
    id: str
    kind: str
    created_at: str
    details: dict[str, Any]


class HeartbeatReply(Strict):
    server_time: float = Field(description="the collector's clock, UNIX seconds")
    alerts: list[Alert]


class CodeRequest(Strict):
    agency: str = Field(min_length=1, max_length=200)
    door: str = Field(min_length=1, max_length=200)
    checkpoint_id: str | None = Field(default=None, max_length=64)
    expires_in_s: float = Field(
        default=DEFAULT_CODE_LIFETIME_S, strict=True, gt=0, le=MAX_CODE_LIFETIME_S
    )


class CodeReply(Strict):
    code: str
    agency: str
    door: str
    checkpoint_id: str | None
    expires_at: str


class ExposureRequest(Strict):
    """A confirmed case's published key, as the health authority received it."""

    protocol: Literal["bluezone", "gaen"]
    key: str = Field(
        pattern=r"^[0-9A-Fa-f]+$",
        max_length=64,
        description="Bluezone: the 32-byte daily key; GAEN: the 16-byte TEK (hex)",
    )
    first_day: date | None = Field(default=None, description="Bluezone: the daily key's UTC day")
    days: int = Field(
        default=1, strict=True, ge=1, le=60, description="Bluezone: how many days to derive"
    )
    interval: int | None = Field(
        default=None, strict=True, ge=0, description="GAEN: the TEK's rolling start interval number"
    )

    @model_validator(mode="after")
    def _complete(self) -> ExposureRequest:
        if self.protocol == "bluezone":
            if self.first_day is None:
                raise ValueError("a Bluezone key needs first_day")
            if len(self.key) != 64:
                raise ValueError("a Bluezone daily key is 32 bytes (64 hex digits)")
            # Visits are dated 1970..2100 (VisitIn); outside that a day cannot match, and the
            # derivation's dates would overflow (a 500) near year 1 or 9999.
            if not EARLIEST_DAY <= self.first_day <= LATEST_DAY:
                raise ValueError(f"first_day must be between {EARLIEST_DAY} and {LATEST_DAY}")
        else:
            if self.interval is None:
                raise ValueError("a GAEN key needs interval, its rolling start interval number")
            if self.interval * 600 >= LATEST_TIMESTAMP:
                raise ValueError("interval is past 2100: give the TEK's rolling start interval")
            if len(self.key) != 32:
                raise ValueError("a GAEN TEK is 16 bytes (32 hex digits)")
        return self


class ExposureReply(Strict):
    matches: list[dict[str, Any]]
    checkpoints_alerted: int
