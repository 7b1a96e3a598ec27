"""What several subcommands share: the common options (``--config``, ``--json``, ``--lang``, the
period, the visit log) and the parsers and printers of argument values."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date
from typing import Any, TextIO, TypeAlias

from appliance.config import Config, load_config
from appliance.errors import UsageError

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

LANGUAGES = ("vi", "en")


# ---------------------------------------------------------------------------------------------
# Options


def add_command(
    subparsers: Subparsers, name: str, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand's parser, with the ``--config`` option every command takes first."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument(
        "--config",
        metavar="F",
        help="configuration file (default: $CHECKPOINT_CONFIG or /etc/checkpoint/checkpoint.toml)",
    )
    return parser


def add_json(parser: argparse.ArgumentParser, help: str | None) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def add_lang(parser: argparse.ArgumentParser, help: str = "default: [checkpoint] language") -> None:
    parser.add_argument("--lang", choices=LANGUAGES, help=help)


def add_database(
    parser: argparse.ArgumentParser, help: str = "visit log (default: from the config)"
) -> None:
    parser.add_argument("--database", metavar="F", help=help)


def add_period(parser: argparse.ArgumentParser) -> None:
    """``--from`` and ``--to``, checked by ``iso_date`` when the command runs."""
    parser.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD")


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


def database_of(args: argparse.Namespace, config: Config) -> Any:
    from pathlib import Path

    explicit = getattr(args, "database", None)
    return Path(explicit) if explicit else config.storage.database


def text_of(key: str, lang: str) -> str:
    from appliance.i18n import text

    return text(key, lang)
