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
    BeforeValidator,
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
from collector.services.enrollment import (
    CHECKPOINT_ID_PATTERN,
    DEFAULT_CODE_LIFETIME_S,
    MAX_CODE_LIFETIME_S,
)

if TYPE_CHECKING:
    SentKind = str
else:
    # The kinds appliance.records names, as the schema's enum (Literal takes the tuple whole).
    SentKind = Literal[SENT_KINDS]

Token = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
# Text without NUL (PostgreSQL and UTF-8 refuse it), as the schema says it and the server checks.
NO_NUL = r"^[^\x00]*$"
SOME_TEXT = r"^[^\x00]*[^\x00\s][^\x00]*$"  # and not only spaces
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(2099, 12, 31)  # an exposure check's first_day
# Such a day as the schema states it (visits are dated 1970..2100; outside that a day cannot
# match, and the derivation's dates would overflow).
DAY_1970_2099 = r"^(19[7-9][0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2}$"
KeyDay = Annotated[date, Field(json_schema_extra={"pattern": DAY_1970_2099})]
# What a record's kind implies, as JSON Schema says it (``VisitIn._consistent`` checks it).
KIND_RULES: dict[str, Any] = {
    "if": {"properties": {"kind": {"const": "app"}}},
    "then": {"required": ["protocol"], "properties": {"protocol": {"type": "string"}}},
    "else": {
        "properties": {"protocol": {"type": "null"}, "tokens": {"maxItems": 0}},
    },
}


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


def _a_number(value: Any) -> Any:
    # JSON's integers include 3.0 (lax int takes it), but a string or a boolean is no number.
    if isinstance(value, str | bool):
        raise ValueError("Input should be a valid integer (a JSON number)")
    return value


# An integer on the wire: a JSON number with no fraction, never "3" or true.
WholeNumber = Annotated[int, BeforeValidator(_a_number)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_bad_text(cls, value: Any) -> Any:
        return _printable(value)


class FieldError(Strict):
    field: str = Field(description="where: `records[3].entered_at`, `body`, `from`…")
    message: str


class ErrorReply(Strict):
    """Every refusal, whatever its status: one line that says what to do, and for a malformed
    request (422) each field at fault (at most 20); empty otherwise."""

    detail: str = Field(description="one line, for the unit's log or the person calling")
    errors: list[FieldError] = Field(description="the fields at fault (422), else empty")


class EnrollRequest(Strict):
    code: str = Field(
        min_length=4, max_length=64, pattern=NO_NUL, description="the one-time enrollment code"
    )
    hostname: str | None = Field(default=None, max_length=255, pattern=NO_NUL)
    software: str | None = Field(default=None, max_length=64, pattern=NO_NUL)


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

    model_config = ConfigDict(json_schema_extra=KIND_RULES)

    uuid: str = Field(pattern=UUID_PATTERN)
    kind: SentKind
    protocol: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    entered_at: float = Field(
        strict=True, ge=0, le=LATEST_TIMESTAMP, description="UNIX seconds, UTC"
    )
    left_at: float | None = Field(
        default=None, strict=True, ge=0, le=LATEST_TIMESTAMP,
        description="UNIX seconds, UTC: not before entered_at",
    )  # fmt: skip
    clock_synced: bool = Field(default=True, strict=True)
    via_sensor: bool = Field(default=False, strict=True)
    tokens: list[Token] = Field(default_factory=list, max_length=MAX_TOKENS_PER_RECORD)
    key_days: dict[Token, KeyDay] = Field(
        default_factory=dict,
        max_length=MAX_TOKENS_PER_RECORD,
        description="for tokens made before the unit's clock was synchronised: the UTC day whose"
        " key made the token, when its corrected time is on another day (absent: its day);"
        " only tokens the record carries",
        json_schema_extra={"additionalProperties": False},
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
    acked_alerts: list[Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)]] = Field(
        default_factory=list, max_length=1000
    )
    hostname: str | None = Field(default=None, max_length=255, pattern=NO_NUL)


class Alert(Strict):
    id: str
    kind: str
    created_at: str
    details: dict[str, Any]


class HeartbeatReply(Strict):
    server_time: float = Field(description="the collector's clock, UNIX seconds")
    alerts: list[Alert]


class CodeRequest(Strict):
    agency: str = Field(max_length=200, pattern=SOME_TEXT)
    door: str = Field(max_length=200, pattern=SOME_TEXT)
    checkpoint_id: str | None = Field(default=None, pattern=CHECKPOINT_ID_PATTERN)
    expires_in_s: float = Field(
        default=DEFAULT_CODE_LIFETIME_S, strict=True, gt=0, le=MAX_CODE_LIFETIME_S
    )


class CodeReply(Strict):
    code: str
    agency: str
    door: str
    checkpoint_id: str | None
    expires_at: str


# The last GAEN interval before 2100 (ten-minute intervals of UNIX time).
LAST_INTERVAL = int(LATEST_TIMESTAMP // 600) - 1


class BluezoneCase(Strict):
    """A confirmed Bluezone case's published daily key and its UTC day."""

    protocol: Literal["bluezone"]
    key: str = Field(
        pattern=r"^[0-9A-Fa-f]{64}$", description="the 32-byte daily key (64 hex digits)"
    )
    first_day: date = Field(
        ge=EARLIEST_DAY, le=LATEST_DAY, json_schema_extra={"pattern": DAY_1970_2099},
        description="the daily key's UTC day (1970-01-01..2099-12-31)",
    )  # fmt: skip
    days: WholeNumber = Field(default=1, ge=1, le=60, description="how many days to derive")


class GaenCase(Strict):
    """A confirmed GAEN case's published Temporary Exposure Key."""

    protocol: Literal["gaen"]
    key: str = Field(pattern=r"^[0-9A-Fa-f]{32}$", description="the 16-byte TEK (32 hex digits)")
    interval: WholeNumber = Field(
        ge=0, le=LAST_INTERVAL,
        description="the TEK's rolling start interval number (before 2100)",
    )  # fmt: skip


# The exposure check's request, one shape per protocol (``protocol`` tells which).
ExposureRequest = Annotated[BluezoneCase | GaenCase, Field(discriminator="protocol")]


class ExposureReply(Strict):
    matches: list[dict[str, Any]]
    checkpoints_alerted: int
