"""``checkpoint exposure ids`` and ``exposure check``: a confirmed case's identifiers, and its
visits in the local visit log."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from typing import Any

from appliance.commands._options import (
    Subparsers,
    add_command,
    add_database,
    add_json,
    config_of,
    database_of,
    hex_bytes,
    iso_date,
    print_json,
)
from appliance.config import load_secret
from appliance.errors import UsageError


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser("exposure", help="a confirmed case's identifiers")
    actions = p.add_subparsers(dest="exposure_command", metavar="ACTION", required=True)
    q = add_command(
        actions,
        "ids",
        help="derive a confirmed case's identifiers from a published key",
        description="bluezone: one line per 15-minute UTC slot (start, slot, ID); "
        "gaen: the 144 RPIs from the rolling start interval.",
    )
    _add_exposure_case_options(q)
    q.set_defaults(handler=run_ids)
    q = add_command(
        actions,
        "check",
        help="find a confirmed case's visits in the local visit log",
        description="Derive the case's identifiers, recompute their visit tokens and list the "
        "matching entries (local time in and out, dwell, overlapping app visitors).",
    )
    _add_exposure_case_options(q)
    add_database(q)
    q.set_defaults(handler=run_check)


def _add_exposure_case_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=("bluezone", "gaen"), required=True)
    parser.add_argument(
        "--daily-key", metavar="HEX", help="bluezone: the case's daily key of --date"
    )
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="bluezone: the UTC day of --daily-key")
    parser.add_argument(
        "--days", type=int, default=1, help="bluezone: days from --date (default 1)"
    )
    parser.add_argument("--tek", metavar="HEX", help="gaen: the Temporary Exposure Key")
    parser.add_argument("--interval", type=int, metavar="N", help="gaen: rolling start interval")
    add_json(parser, "one JSON object per line")


def run_ids(args: argparse.Namespace) -> int:
    from appliance.core import exposure

    case = exposure_case(args)
    for item in exposure.case_identifiers(case):
        if args.json:
            print_json(item.as_json())
        else:
            print(item.as_text())
    return 0


def exposure_case(args: argparse.Namespace) -> Any:
    """Build the confirmed case's key description from the command line."""
    from appliance.core import exposure

    if args.protocol == "bluezone":
        if args.daily_key is None or args.date is None:
            raise UsageError("--protocol bluezone needs --daily-key HEX and --date YYYY-MM-DD")
        if not 1 <= args.days <= exposure.MAX_DAYS:
            raise UsageError(f"--days must be 1..{exposure.MAX_DAYS}, got {args.days}")
        first_day = iso_date("--date", args.date)
        if first_day > date.max - timedelta(days=args.days):
            raise UsageError(f"--date {args.date} plus --days {args.days} runs past the calendar")
        return exposure.BluezoneCase(
            daily_key=hex_bytes("--daily-key", args.daily_key, 32),
            first_day=first_day,
            days=args.days,
        )
    if args.tek is None or args.interval is None:
        raise UsageError("--protocol gaen needs --tek HEX and --interval N")
    if not 0 <= args.interval < 2**32 - exposure.GAEN_PERIOD:
        raise UsageError(f"--interval must be a rolling start interval number, got {args.interval}")
    return exposure.GaenCase(tek=hex_bytes("--tek", args.tek, 16), first_interval=args.interval)


def run_check(args: argparse.Namespace) -> int:
    from appliance.exposure_check import check_exposure
    from appliance.store import VisitLog

    case = exposure_case(args)
    config = config_of(args)
    secret = load_secret(config)
    store = VisitLog(database_of(args, config), readonly=True)
    try:
        matches = check_exposure(store, secret, case)
    finally:
        store.close()
    timezone = config.checkpoint.timezone
    for match in matches:
        row = match.as_json(timezone)
        if args.json:
            print_json(row)
        else:
            entered = row["entered_local"][:19].replace("T", " ")
            left = row["left_local"][11:19] if row["left_local"] else "?"
            dwell = f"{row['dwell_s'] // 60} min" if row["dwell_s"] is not None else "still open"
            print(
                f"{entered} → {left}  {dwell:>10}  {row['protocol']:<12} "
                f"{match.overlapping} other app visitor(s) overlapped"
            )
    if not args.json:
        print(f"{len(matches)} matching visit(s)", file=sys.stderr)
    return 0
