"""``checkpoint decode``: classify raw advertising data, as the scanner would."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

from appliance.commands._options import (
    Subparsers,
    add_command,
    add_json,
    config_of,
    hex_bytes,
    print_json,
)


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "decode",
        help="classify raw advertising data",
        description="Classify advertising data (AD structures as hex, optionally followed by the "
        "scan response). Spaces and colons are ignored; '-' reads one report per line from stdin.",
    )
    p.add_argument("hex", nargs="+", metavar="HEX")
    add_json(p, "one JSON object per line")
    p.set_defaults(handler=run)


def _decode_inputs(values: Sequence[str]) -> Iterable[tuple[str, str]]:
    for position, value in enumerate(values, 1):
        if value == "-":
            for number, line in enumerate(sys.stdin, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    yield f"stdin line {number}", line
        else:
            yield f"argument {position}", value


def run(args: argparse.Namespace) -> int:
    from appliance.protocols.adstructs import parse
    from appliance.protocols.others import describe
    from appliance.protocols.registry import Classifier, DecodeOptions

    config = config_of(args)
    classifier = Classifier(
        DecodeOptions(
            ios_overflow_byte=config.protocols.bluezone_ios_overflow_byte,
            ios_overflow_mask=config.protocols.bluezone_ios_overflow_mask,
        )
    )
    # Validate everything first, so that a typo in the tenth argument prints nothing half-done.
    reports = [(where, hex_bytes(where, text)) for where, text in _decode_inputs(args.hex)]
    for _where, data in reports:
        adv = parse(data)
        detection = classifier.classify(adv)
        other = describe(adv) if detection is None else None
        if args.json:
            print_json(
                {
                    "data": data.hex().upper(),
                    "protocol": detection.protocol if detection else None,
                    "id": detection.id_hex if detection else None,
                    "needs_gatt": detection.needs_gatt if detection else False,
                    "id_scheme": detection.id_scheme if detection else None,
                    "malformed": adv.malformed,
                    "other": other,
                }
            )
        elif detection is None:
            note = f" ({other})" if other else ""
            flag = " [malformed]" if adv.malformed else ""
            print(f"{'-':<16} not an app{note}{flag}")
        else:
            if detection.id_hex:
                what = f"ID {detection.id_hex}"
            elif detection.needs_gatt:
                what = "no ID in the air: read it over GATT"
            else:
                what = "no ID"
            flag = " [malformed]" if adv.malformed else ""
            print(f"{detection.protocol:<16} {what}{flag}")
    return 0
