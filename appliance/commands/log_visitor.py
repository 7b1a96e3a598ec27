"""``checkpoint log-visitor``: a visitor recorded by hand, through the daemon when it runs."""

from __future__ import annotations

import argparse
import errno
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from appliance.commands._options import Subparsers, add_command, add_lang, config_of, text_of
from appliance.errors import CheckpointError

if TYPE_CHECKING:
    from pathlib import Path

    from appliance.visitors import Visitor


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


def card_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is the disk being full: ENOSPC or EDQUOT
    from the OS, SQLITE_FULL from SQLite; not any other I/O error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(seen, sqlite3.Error) and seen.sqlite_errorcode == sqlite3.SQLITE_FULL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def not_recorded(exc: BaseException, lang: str) -> CheckpointError:
    """The one line said when the visitor could not be written down at all."""
    if card_full(exc):
        return CheckpointError(text_of("err_card_full", lang))
    error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return CheckpointError(text_of("err_not_handed", lang).format(error=error))


def run(args: argparse.Namespace) -> int:
    """A visitor recorded by hand: through the daemon when it runs (its only writer), else
    straight into the visit log. A full card, or an inbox this user may not write, is one line
    saying the visitor was not recorded (nothing half-written is left behind)."""
    from appliance.status import unit_status
    from appliance.store.lock import lock_holder
    from appliance.visitors import validate

    config = config_of(args)
    lang = args.lang or config.checkpoint.language
    visitor = validate(args.name, args.org, args.phone, args.purpose, lang=lang)
    status = unit_status(config)
    holder = lock_holder(config.storage.database)
    # The kernel's lock says a daemon runs even when its status cannot be read; a status that
    # says "running" is believed unless the kernel has let that daemon's lock go.
    running = holder.held is True or (
        status is not None
        and bool(status.get("running"))
        and not holder.released_by(status.get("pid"))
    )
    try:
        if running:
            return _through_the_daemon(config.storage.database, visitor, args.wait, lang)
        return _straight_in(config.storage.database, visitor, lang)
    except OSError as exc:
        raise not_recorded(exc, lang) from None
    except CheckpointError as exc:
        if card_full(exc):
            raise not_recorded(exc, lang) from None
        raise


def _through_the_daemon(database: Path, visitor: Visitor, wait_s: float, lang: str) -> int:
    from appliance.inbox import REJECTED, inbox_dir
    from appliance.visitors import submit_visitor

    entry_uuid, request = submit_visitor(database, visitor)
    deadline = time.monotonic() + wait_s
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


def _straight_in(database: Path, visitor: Visitor, lang: str) -> int:
    from appliance.store import VisitLog

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
