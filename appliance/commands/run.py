"""``checkpoint run``: the daemon (BlueZ, or a simulated lobby)."""

from __future__ import annotations

import argparse
import math

from appliance.commands._options import Subparsers, add_command, config_of
from appliance.errors import UsageError


def register(subparsers: Subparsers) -> None:
    p = add_command(subparsers, "run", help="the daemon")
    p.add_argument("--simulate", action="store_true", help="a simulated lobby instead of BlueZ")
    p.add_argument("--speed", type=float, default=1.0, help="simulation: times real time")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.daemon import run_daemon

    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UsageError(f"--speed must be a positive number, got {args.speed}")
    return run_daemon(config_of(args), simulate=args.simulate, speed=args.speed)
