"""``checkpoint beacon``: advertise the checkpoint's own beacon until stopped."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.commands._options import Subparsers, add_command, config_of


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "beacon",
        help="advertise the checkpoint's own beacon",
        description="Advertise the checkpoint's beacon ([beacon] section) until stopped: "
        "Bluezone's Android format with the checkpoint's own rotating ID, or an iBeacon.",
    )
    p.add_argument("--new-key", action="store_true", help="make the beacon key first")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.ble.beacon import (
        CheckpointBeacon,
        content_at,
        create_beacon_key,
        load_beacon_key,
    )
    from appliance.config import BeaconSection

    config = config_of(args)
    section = config.beacon or BeaconSection()
    if args.new_key:
        create_beacon_key(section.key_file)
        print(f"beacon key made: {section.key_file}")
    key = load_beacon_key(section.key_file) if section.format == "bluezone" else None
    ibeacon = (section.ibeacon_uuid, section.ibeacon_major, section.ibeacon_minor, -59)

    def content(when: Any) -> Any:
        return content_at(key, when, section.format, ibeacon)

    from appliance.logs import logging_setup
    from appliance.status import beacon_status_path, owner_of, write_status

    logging_setup()
    where, owner = beacon_status_path(config), owner_of(config)  # whose beacon: readers check
    return CheckpointBeacon(
        config.ble.adapter, content, on_state=lambda state: write_status(where, {**state, **owner})
    ).run()
