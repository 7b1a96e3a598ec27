"""``checkpoint maintenance``: the visit log's daily upkeep, run by the maintenance timer."""

from __future__ import annotations

import argparse

from appliance.commands._options import Subparsers, add_command, add_json, config_of


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "maintenance",
        help="daily upkeep of the visit log (the maintenance timer)",
        description="Once: quick_check, retention (postponed while the clock is not "
        "synchronised), a WAL checkpoint and PRAGMA optimize. Safe while the daemon runs. "
        "Exit code 1 when the visit log fails its check.",
    )
    add_json(p, "one JSON object per step")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.maintenance import run_maintenance

    return run_maintenance(config_of(args), json_lines=args.json)
