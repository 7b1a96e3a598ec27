"""``checkpoint log-visitor``: a visitor recorded by hand, through the daemon when it runs."""

from __future__ import annotations

import argparse
import time
from typing import Any

from appliance.commands._options import Subparsers, add_command, add_lang, config_of, text_of
from appliance.errors import CheckpointError


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "log-visitor",
        help="record a visitor by hand (the receptionist)",
        description="A manual entry: the details stay on this unit (only the count and time are "
        "synced) and are deleted after retention_days.",
    )
    p.add_argument("--name", required=True, help="full name, as written (diacritics kept)")
    p.add_argument("--org", help="organisation")
    p.add_argument("--phone", help="phone number")
    p.add_argument("--purpose", help="purpose of the visit")
    add_lang(p, "language of messages")
    p.add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for the daemon to record it"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """A visitor recorded by hand: through the daemon when it runs (its only writer), else
    straight into the visit log."""
    from appliance.inbox import REJECTED, inbox_dir
    from appliance.status import unit_status
    from appliance.store import VisitLog
    from appliance.visitors import submit_visitor, validate

    config = config_of(args)
    lang = args.lang or config.checkpoint.language
    visitor = validate(args.name, args.org, args.phone, args.purpose, lang=lang)
    database = config.storage.database
    status = unit_status(config)
    if status is not None and status.get("running"):
        entry_uuid, request = submit_visitor(database, visitor)
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and request.exists():
            time.sleep(0.1)
        if _recorded(database, entry_uuid):
            print(text_of("form_saved", lang) + f" ({entry_uuid})")
            return 0
        if (inbox_dir(database) / REJECTED / request.name).exists():
            raise CheckpointError(
                f"the daemon refused the entry (see its log); it is kept in"
                f" {inbox_dir(database) / REJECTED / request.name}"
            )
        print(text_of("form_queued", lang) + f" ({entry_uuid})")
        return 0
    log = VisitLog(database)
    try:
        from appliance import clock

        entry_uuid = log.add_manual(
            visitor.name,
            organisation=visitor.organisation,
            phone=visitor.phone,
            purpose=visitor.purpose,
            clock_synced=clock.is_synchronized(),
        )
    finally:
        log.close()
    print(text_of("form_saved", lang) + f" ({entry_uuid})")
    return 0


def _recorded(database: Any, entry_uuid: str) -> bool:
    from appliance.store import VisitLog

    try:
        log = VisitLog(database, readonly=True, check=False)
    except CheckpointError:
        return False
    try:
        return log.has_entry(entry_uuid)
    finally:
        log.close()
