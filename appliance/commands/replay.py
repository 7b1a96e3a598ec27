"""``checkpoint replay``: a btsnoop capture through the pipeline, into a scratch visit log."""

from __future__ import annotations

import argparse
import os
import sys

from appliance.commands._options import (
    Subparsers,
    add_command,
    add_database,
    add_json,
    config_of,
    database_of,
    print_json,
)
from appliance.config import load_secret
from appliance.core.tokens import SECRET_LENGTH

REPLAY_DATABASE = "replay.db"


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "replay",
        help="run a btsnoop capture through the pipeline",
        description="Replay a btsnoop capture (btmon -w, Android HCI snoop log) through decode, "
        "tracker, doorway and visit log, using the capture's timestamps; GPIO and sync off.",
    )
    p.add_argument("capture", metavar="CAPTURE")
    add_database(p, f"visit log to write (default: {REPLAY_DATABASE} beside the configured one)")
    add_json(p, "the summary as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.replay import replay_capture
    from appliance.store import VisitLog

    config = config_of(args)
    # Never into the live visit log: a capture's visits are not this door's, and must never
    # be uploaded. By default a scratch log beside it.
    database = (
        database_of(args, config)
        if args.database
        else (config.storage.database.parent / REPLAY_DATABASE)
    )
    if config.privacy.key_file.exists():
        secret = load_secret(config)
    else:
        # A replay on a laptop: tokens under a throwaway key, linkable to nothing.
        secret = os.urandom(SECRET_LENGTH)
        print(f"checkpoint: no province key at {config.privacy.key_file}; "
              "tokens use a throwaway key", file=sys.stderr)  # fmt: skip
    store = VisitLog(database, origin="replay")

    def progress(reports: int) -> None:
        print(f"\rreplaying… {reports:,} reports", end="", file=sys.stderr, flush=True)

    try:
        summary = replay_capture(
            args.capture, store, secret, progress=progress if sys.stderr.isatty() else None
        )
    finally:
        store.close()
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr)
    data = summary.as_json()
    if args.json:
        print_json(data)
    else:
        print(f"records read:        {data['records']}")
        print(
            f"advertising reports: {data['advertising_reports']}"
            f" ({data['extended_reports']} extended, {data['bad_events']} corrupt events)"
        )
        by_protocol = ", ".join(f"{k} {v}" for k, v in summary.counters.by_protocol.items())
        print(
            f"app reports:         {data['app_reports']}"
            + (f" ({by_protocol})" if by_protocol else "")
        )
        print(f"app phones:          {data['app_phones']}")
        entries = ", ".join(f"{k} {v}" for k, v in summary.entries.items()) or "0"
        print(f"entries:             {entries}")
        if data["first"]:
            print(f"capture time:        {data['first']} → {data['last']}")
        print(f"visit log:           {database}")
    if summary.error is not None:
        print(
            f"checkpoint: {summary.error} (what was read before it was replayed)", file=sys.stderr
        )
        return 1
    return 0
