"""The ``checkpoint`` command: the parser built from ``appliance.commands``, one module per
subcommand, and ``main``, which runs the chosen one.

Each command parses its arguments, calls one library function, and prints. Expected errors
(``CheckpointError``) become one line on stderr and the error's exit code; anything else is a bug
and keeps its traceback. Adapters (bleak, gpiozero, sqlite-utils, requests, rich) are imported
lazily inside the commands that need them, so ``decode`` works on any laptop.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Protocol

from appliance import __version__
from appliance.commands import (
    beacon,
    console,
    decode,
    doctor,
    enroll,
    export,
    exposure,
    log_visitor,
    maintenance,
    provision,
    replay,
    run,
    status,
    sync,
)
from appliance.commands._options import Subparsers
from appliance.errors import run_command

Handler = Callable[[argparse.Namespace], int]


class Command(Protocol):
    """A module of ``appliance.commands``: it adds its subcommand(s), each with a handler."""

    def register(self, subparsers: Subparsers) -> None: ...


# In the order ``checkpoint --help`` lists them (the order they have always had).
COMMANDS: tuple[Command, ...] = (
    decode,
    exposure,
    run,
    status,
    replay,
    beacon,
    doctor,
    maintenance,
    export,  # export and report
    enroll,
    sync,
    console,
    log_visitor,
    provision,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="checkpoint",
        description="Checkpoint door unit: contact-tracing app check-in at an office entrance.",
    )
    parser.add_argument("--version", action="version", version=f"checkpoint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return run_command("checkpoint", handler, args)
