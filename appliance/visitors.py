"""A visitor the receptionist records by hand (the directive asks for it at the door).

Validation is shared by ``checkpoint log-visitor`` and the console's form, with messages from
the one catalogue in the reader's language. What was typed is kept exactly (Vietnamese names
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
from appliance.errors import VisitorError
from appliance.i18n import text

MAX_NAME = 100
MAX_FIELD = 200
_PHONE = re.compile(r"^\+?[0-9 .()-]+$")


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
    clean_phone = _clean("f_phone", phone, 30, lang)
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


def submit_visitor(database: Path, visitor: Visitor, when: float | None = None) -> tuple[str, Path]:
    """Hand the visitor to the daemon (the visit log's only writer); returns the entry's UUID
    and the request's file (gone once the daemon has applied it)."""
    from appliance.inbox import submit

    entry_uuid = str(uuidlib.uuid4())
    data: dict[str, Any] = {"uuid": entry_uuid, "at": when}
    boot = clock.read_boot() if when is None else None
    if boot is not None:
        # Also on the boot clock: the daemon corrects the time if the wall clock was not yet
        # synchronised (appliance.clock).
        data.update(at=boot.wall, boot_id=boot.boot_id, boot_s=boot.boot_s)
    elif when is None:
        data["at"] = time.time()
    data.update(
        name=visitor.name,
        organisation=visitor.organisation,
        phone=visitor.phone,
        purpose=visitor.purpose,
    )
    request = submit(database, "manual", data)
    return entry_uuid, request
