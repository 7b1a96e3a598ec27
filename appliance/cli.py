"""The ``checkpoint`` command: thin subcommands over library functions.

Each command parses its arguments, calls one library function, and prints. Expected errors
(``CheckpointError``) become one line on stderr and the error's exit code; anything else is a bug
and keeps its traceback. Adapters (bleak, gpiozero, sqlite-utils, requests, rich) are imported
lazily inside the commands that need them, so ``decode`` works on any laptop.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, TextIO

from appliance import __version__
from appliance.config import Config, load_config
from appliance.errors import CheckpointError, UsageError

Handler = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# Argument values


def hex_bytes(name: str, text: str, length: int | None = None) -> bytes:
    """Parse a hex argument, with a one-line error naming the option."""
    from appliance.protocols.adstructs import parse_hex

    try:
        value = parse_hex(text)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    if length is not None and len(value) != length:
        raise UsageError(
            f"{name} must be {length} bytes ({2 * length} hex digits), got {len(value)}"
        )
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(name: str, text: str) -> date:
    if not _DATE.fullmatch(text):
        raise UsageError(f"{name} must be a date like 2020-08-20, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{name}: {text!r} is not a valid date ({exc})") from None


def print_json(obj: dict[str, Any], out: TextIO | None = None) -> None:
    print(json.dumps(obj, ensure_ascii=False), file=out or sys.stdout)


def config_of(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


# ---------------------------------------------------------------------------------------------
# decode


def _decode_inputs(values: Sequence[str]) -> Iterable[tuple[str, str]]:
    for position, value in enumerate(values, 1):
        if value == "-":
            for number, line in enumerate(sys.stdin, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    yield f"stdin line {number}", line
        else:
            yield f"argument {position}", value


def cmd_decode(args: argparse.Namespace) -> int:
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


# ---------------------------------------------------------------------------------------------
# exposure


def cmd_exposure_ids(args: argparse.Namespace) -> int:
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
        return exposure.BluezoneCase(
            daily_key=hex_bytes("--daily-key", args.daily_key, 32),
            first_day=iso_date("--date", args.date),
            days=args.days,
        )
    if args.tek is None or args.interval is None:
        raise UsageError("--protocol gaen needs --tek HEX and --interval N")
    if not 0 <= args.interval < 2**32 - exposure.GAEN_PERIOD:
        raise UsageError(f"--interval must be a rolling start interval number, got {args.interval}")
    return exposure.GaenCase(tek=hex_bytes("--tek", args.tek, 16), first_interval=args.interval)


# ---------------------------------------------------------------------------------------------
# Parser


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
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="F",
        help="configuration file (default: $CHECKPOINT_CONFIG or /etc/checkpoint/checkpoint.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="checkpoint",
        description="Checkpoint door unit: contact-tracing app check-in at an office entrance.",
    )
    parser.add_argument("--version", action="version", version=f"checkpoint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "decode",
        parents=[common],
        help="classify raw advertising data",
        description="Classify advertising data (AD structures as hex, optionally followed by the "
        "scan response). Spaces and colons are ignored; '-' reads one report per line from stdin.",
    )
    p.add_argument("hex", nargs="+", metavar="HEX")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_decode)

    p = sub.add_parser("exposure", parents=[common], help="a confirmed case's identifiers")
    exposure_sub = p.add_subparsers(dest="exposure_command", metavar="ACTION", required=True)
    q = exposure_sub.add_parser(
        "ids",
        parents=[common],
        help="derive a confirmed case's identifiers from a published key",
        description="bluezone: one line per 15-minute UTC slot (start, slot, ID); "
        "gaen: the 144 RPIs from the rolling start interval.",
    )
    _add_exposure_case_options(q)
    q.set_defaults(handler=cmd_exposure_ids)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CheckpointError as exc:
        print(f"checkpoint: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
