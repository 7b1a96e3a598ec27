"""``checkpoint enroll``: join the provincial collector with a one-time code."""

from __future__ import annotations

import argparse

from appliance.commands._options import Subparsers, add_command, config_of


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "enroll",
        help="join the provincial collector with a one-time code",
        description="Exchange a one-time enrollment code for this unit's ID and token. The token "
        "(and the CA, and the province key when the collector hands it out) are stored with "
        "mode 0600 beside the configuration, which records the collector's URL.",
    )
    p.add_argument(
        "--server", required=True, metavar="URL", help="the collector, https://host:port"
    )
    p.add_argument("--code", required=True, help="the one-time code (dashes optional)")
    p.add_argument("--ca", metavar="FILE", help="the province CA to pin (PEM)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.config import config_path
    from appliance.sync.enroll import enroll

    path, _explicit = config_path(args.config)
    config = config_of(args)
    result = enroll(
        path,
        config,
        server=args.server,
        code=args.code,
        ca=Path(args.ca) if args.ca else None,
    )
    print(f"enrolled as {result.checkpoint_id} ({result.agency} · {result.door})")
    print(f"  token: {result.token_file} (mode 0600)")
    if result.ca_file is not None:
        print(f"  pinned CA: {result.ca_file} (mode 0600)")
    else:
        print("  no CA pinned (--ca): the system's CAs are trusted for the collector")
    if result.key_file is not None:
        print(f"  province key: {result.key_file} (mode 0600)")
    if result.key_note:
        print(f"  note: {result.key_note}")
    print(f"  configuration updated: {path}")
    print("  restart the daemon to start syncing (systemctl restart checkpoint)")
    return 0
