"""``checkpoint doctor``: check the installation, one PASS / WARN / FAIL line per check."""

from __future__ import annotations

import argparse

from appliance.commands._options import Subparsers, add_command, add_json, config_of


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "doctor",
        help="check the installation: PASS / WARN / FAIL lines",
        description="Checks the configuration, the secrets' file modes, the state directory, "
        "the visit log, disk, clock, GPIO chip and pins, the collector over TLS and, with [ble] "
        "source = bluez, BlueZ, the adapter, passive scanning and the beacon. Each FAIL says "
        "what to do. Exit code 1 on any FAIL (WARN alone: 0).",
    )
    add_json(p, "one JSON object per check, then a summary object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.doctor import run_doctor

    return run_doctor(config_of(args), json_lines=args.json)
