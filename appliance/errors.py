"""One error hierarchy for the whole appliance.

Each error carries a sentence a person can act on; the CLI prints it on one line and exits with
``exit_code``. Anything that is not a ``CheckpointError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


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
