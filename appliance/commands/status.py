"""``checkpoint status``: the daemon's health and today's counts, from its status file, and which
process holds the visit log, from the kernel (``appliance.store.lock``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Final

from appliance.commands._options import Subparsers, add_command, add_json, config_of, print_json

if TYPE_CHECKING:
    from appliance.status import StatusReading
    from appliance.store.lock import Holder

EXIT_NOT_RUNNING: Final = 3  # as an LSB init script's status: the daemon is not running
EXIT_UNKNOWN: Final = 4  # LSB's "status unknown": a status we may not read, or not ours


def register(subparsers: Subparsers) -> None:
    p = add_command(subparsers, "status", help="the daemon's health and today's counts")
    add_json(p, None)
    p.set_defaults(handler=run)


def exit_code(reading: StatusReading, holder: Holder) -> int:
    if reading.status is not None and reading.status["running"]:
        return 0
    if holder.held is False:
        return EXIT_NOT_RUNNING  # the kernel's word: no process holds the visit log
    if holder.held or reading.problem in ("unreadable", "foreign"):
        return EXIT_UNKNOWN  # a daemon may be running: not the same answer as "not running"
    return EXIT_NOT_RUNNING


def run(args: argparse.Namespace) -> int:
    from appliance.status import read_unit_status
    from appliance.store.lock import lock_holder

    config = config_of(args)
    reading = read_unit_status(config)
    holder = lock_holder(config.storage.database)
    if reading.status is not None and holder.released_by(reading.status.get("pid")):
        reading.status["running"] = False  # killed within the last seconds: the kernel knows
    code = exit_code(reading, holder)
    if args.json:
        document: dict[str, Any] = dict(reading.status or {"running": False})
        document["holder"] = holder.as_json()
        if reading.problem is not None:
            document["problem"] = {"kind": reading.problem, "detail": reading.detail,
                                   "path": str(reading.path)}  # fmt: skip
        print_json(document)
        return code
    database = config.storage.database
    print(f"visit log: {database}, {holder.describe()}")
    if reading.status is None:
        print(f"daemon: {_missing(reading, holder)}")
        return code
    _print_status(reading.status)
    return code


def _missing(reading: StatusReading, holder: Holder) -> str:
    """Why there is no status to show, in the words that fit: unreadable is not stopped."""
    where = reading.path
    if reading.problem == "unreadable":
        return (f"cannot read its status at {where} ({reading.detail}): run this as the daemon's"
                " user, a member of its group, or root")  # fmt: skip
    if reading.problem == "foreign":
        return f"the status at {where} is not shown: {reading.detail}"
    if holder.held:
        return (f"running (pid {holder.pid}) but no readable status at {where}: does it write"
                " its status elsewhere (`[storage] runtime_dir`)?")  # fmt: skip
    return f"not running (no readable status at {where})"


def _print_status(status: dict[str, Any]) -> None:
    from appliance.core.doorway import adoption_rate

    health = status.get("health", {})
    print(
        f"daemon: {'running' if status['running'] else 'NOT RUNNING'}"
        f" (pid {status.get('pid')}, door {status.get('checkpoint', {}).get('id')})"
    )
    for part, info in health.items():
        state = info.get("state", "ok" if info.get("synchronized", True) else "unsynchronised")
        print(f"  {part:<8} {state}")
    today = status.get("today", {})
    app, no_app, manual = today.get("app", 0), today.get("no_app", 0), today.get("manual", 0)
    total = app + no_app + manual
    rate = adoption_rate(today)
    rate_text = "-" if rate is None else f"{100 * rate:.0f} %"
    print(
        f"today: {total} entries: {app} with app, {no_app} no app, {manual} manual;"
        f" adoption {rate_text}"
    )
    print(f"phones near the door: {status.get('present', 0)}")
