"""One error hierarchy for the whole appliance.

Each error carries a sentence a person can act on; the CLI prints it on one line and exits with
``exit_code``. Anything that is not a ``CheckpointError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class CheckpointError(Exception):
    """Base of every error the appliance expects and explains."""

    exit_code = 1
    retryable = False

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        if self.advice:
            return f"{self.message}: {self.advice}"
        return self.message


class UsageError(CheckpointError):
    """Bad input on the command line: non-hex data, wrong key length, bad date."""

    exit_code = 2


class ConfigError(CheckpointError):
    """The configuration file is missing, unreadable, or has a bad key."""

    exit_code = 2


class CaptureError(CheckpointError):
    """A capture file is truncated or corrupt; ``offset`` says where."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class StoreError(CheckpointError):
    """The visit database cannot be opened, is corrupt, or the disk is full."""


def run_command(prog: str, handler: Callable[[Any], int], args: Any) -> int:
    """Run a subcommand the way every command line here does: an expected error is one line
    on stderr and its exit code; Ctrl+C is 130; a closed pipe is not an error."""
    try:
        return handler(args)
    except CheckpointError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
