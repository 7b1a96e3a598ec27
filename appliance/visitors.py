"""A visitor the receptionist records by hand (the directive asks for it at the door).

Validation is shared by ``checkpoint log-visitor``, the console's form and the daemon, which
checks a request from the inbox with the same rules (``ManualRequest``), with messages from the
one catalogue in the reader's language. What was typed is kept exactly (Vietnamese names
with their diacritics, as typed); only surrounding spaces go. The entry stays on the device
(docs/architecture.md §privacy): only its count and time are ever synced.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import clock
from appliance.errors import BadRequest, VisitorError
from appliance.i18n import text
from appliance.inbox import number, only_keys, submit
from appliance.records import LATEST_TIMESTAMP, UUID_PATTERN

MAX_NAME = 100
MAX_FIELD = 200
MAX_PHONE = 30
_PHONE = re.compile(r"^\+?[0-9 .()-]+$")
# What the form and log-visitor write in a request (`kind` aside), and all the daemon accepts.
TEXT_FIELDS = {
    "name": "f_name", "organisation": "f_org", "phone": "f_phone", "purpose": "f_purpose"
}  # fmt: skip
MANUAL_KEYS = frozenset({"uuid", "at", "boot_id", "boot_s", *TEXT_FIELDS})
MAX_BOOT_S = 50 * 365 * 86400.0  # seconds since boot: a bigger count is no boot's


@dataclass(frozen=True, slots=True)
class Visitor:
    name: str
    organisation: str | None = None
    phone: str | None = None
    purpose: str | None = None


def _clean(field: str, value: str | None, limit: int, lang: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):  # a request file from the inbox is untrusted JSON
        raise VisitorError(field, text("err_control", lang).format(field=text(field, lang)))
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise VisitorError(
            field, text("err_too_long", lang).format(field=text(field, lang), n=limit)
        )
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise VisitorError(field, text("err_control", lang).format(field=text(field, lang)))
    return value


def validate(
    name: str | None,
    organisation: str | None = None,
    phone: str | None = None,
    purpose: str | None = None,
    *,
    lang: str = "vi",
) -> Visitor:
    clean_name = _clean("f_name", name, MAX_NAME, lang)
    if clean_name is None:
        raise VisitorError("f_name", text("err_name_required", lang))
    clean_phone = _clean("f_phone", phone, MAX_PHONE, lang)
    if clean_phone is not None:
        digits = sum(c.isdigit() for c in clean_phone)
        if not _PHONE.match(clean_phone) or not 8 <= digits <= 15:
            raise VisitorError("f_phone", text("err_phone", lang))
    return Visitor(
        clean_name,
        _clean("f_org", organisation, MAX_FIELD, lang),
        clean_phone,
        _clean("f_purpose", purpose, MAX_FIELD, lang),
    )


@dataclass(frozen=True, slots=True)
class ManualRequest:
    """A visitor handed to the daemon: the entry's own ``uuid`` (applying it twice is one
    entry), ``at`` the wall time it was typed, and ``boot`` the same moment on the boot clock
    (its ID and seconds), so that the daemon can correct a time typed before clock sync."""

    visitor: Visitor
    uuid: str
    at: float
    boot: tuple[str, float] | None = None

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"uuid": self.uuid, "at": self.at}
        if self.boot is not None:
            data.update(boot_id=self.boot[0], boot_s=self.boot[1])
        data.update(
            name=self.visitor.name,
            organisation=self.visitor.organisation,
            phone=self.visitor.phone,
            purpose=self.visitor.purpose,
        )
        return data

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ManualRequest:
        """A request from the inbox (untrusted JSON) checked as the form checks what is typed,
        plus what the writers add: no other key, a UUID as units write it (the collector
        refuses any other), times that are numbers within bounds. Raises ``BadRequest``."""
        only_keys(data, MANUAL_KEYS)
        entry_uuid = data.get("uuid")
        if not isinstance(entry_uuid, str) or not re.fullmatch(UUID_PATTERN, entry_uuid):
            raise BadRequest("bad uuid", repr(entry_uuid)[:60])
        at = number(data, "at", 0, LATEST_TIMESTAMP)
        assert at is not None  # required
        boot = None
        if "boot_id" in data or "boot_s" in data:  # the writers put both or neither
            boot_id = data.get("boot_id")
            if not isinstance(boot_id, str) or not re.fullmatch(UUID_PATTERN, boot_id):
                raise BadRequest("bad boot_id", repr(boot_id)[:60])
            boot_s = number(data, "boot_s", 0, MAX_BOOT_S)
            assert boot_s is not None  # required
            boot = (boot_id, boot_s)
        for key in TEXT_FIELDS:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"bad {key}", f"not text: {type(value).__name__}")
        try:
            visitor = validate(
                data.get("name"), data.get("organisation"), data.get("phone"),
                data.get("purpose"), lang="en",
            )  # fmt: skip
        except VisitorError as exc:
            raise BadRequest(f"bad {_key_of(exc.field)}", str(exc)) from None
        return cls(visitor, entry_uuid, at, boot)


def _key_of(field: str) -> str:
    return next((key for key, label in TEXT_FIELDS.items() if label == field), field)


def submit_visitor(database: Path, visitor: Visitor, when: float | None = None) -> tuple[str, Path]:
    """Hand the visitor to the daemon (the visit log's only writer); returns the entry's UUID
    and the request's file (gone once the daemon has applied it). ``when`` is the time it was
    typed (now when None: then also on the boot clock, so that the daemon corrects it if the
    wall clock was not yet synchronised, appliance.clock)."""
    entry_uuid = str(uuidlib.uuid4())
    boot = clock.read_boot() if when is None else None
    if boot is not None:
        request = ManualRequest(visitor, entry_uuid, boot.wall, (boot.boot_id, boot.boot_s))
    else:
        request = ManualRequest(visitor, entry_uuid, time.time() if when is None else when)
    ManualRequest.parse(request.body())  # a writer never leaves what the daemon would refuse
    return entry_uuid, submit(database, "manual", request.body())
