"""``checkpoint run``: the daemon (BlueZ, or a simulated lobby)."""

from __future__ import annotations

import argparse
import math
import os

from appliance.commands._options import Subparsers, add_command, config_of
from appliance.errors import UsageError

# --simulate-live sends made-up visits to the collector as real ones: only a test may ask for it,
# and it has to say so in the environment as well (the crash test does).
LIVE_SIMULATION_ENV = "CHECKPOINT_TEST_LIVE_SIMULATION"


def register(subparsers: Subparsers) -> None:
    p = add_command(subparsers, "run", help="the daemon")
    p.add_argument("--simulate", action="store_true", help="a simulated lobby instead of BlueZ")
    p.add_argument("--speed", type=float, default=1.0, help="simulation: times real time")
    p.add_argument(
        "--simulate-live",
        action="store_true",
        help=f"TESTS ONLY (needs {LIVE_SIMULATION_ENV}=1): the simulated lobby's entries are"
        " marked live, so they are sent to the collector",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.daemon import run_daemon

    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UsageError(f"--speed must be a positive number, got {args.speed}")
    if args.simulate_live and os.environ.get(LIVE_SIMULATION_ENV) != "1":
        raise UsageError(
            f"--simulate-live is for tests only: it sends simulated visits to the collector as"
            f" real ones (set {LIVE_SIMULATION_ENV}=1 in a test to confirm)"
        )
    return run_daemon(
        config_of(args),
        simulate=args.simulate or args.simulate_live,
        speed=args.speed,
        live_simulation=args.simulate_live,
    )
