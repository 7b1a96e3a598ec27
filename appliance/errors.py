"""Every exception of Checkpoint, the door unit and the collector, in one module.

Each error carries a sentence a person can act on; the CLI prints it on one line and exits with
``exit_code``. Anything that is not a ``CheckpointError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final


class CheckpointError(Exception):
    """Base of every error the appliance expects and explains."""

    exit_code = 1

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


class DiskFull(StoreError):
    """The visit log's filesystem has no room (ENOSPC, SQLITE_FULL): the daemon holds what it
    decided in memory and tries again (docs/architecture.md §degraded-mode)."""


# -- exit codes that systemd units act on ------------------------------------------------------

EXIT_BAD_FILE: Final = 2  # a file or an option is wrong: retrying cannot help
EXIT_RETRY: Final = 75  # os.EX_TEMPFAIL: the unit's Restart= tries again (and exit 75 of the
# daemon is the scanner giving up, which the Bluetooth recovery helper acts on)
EXIT_REFUSED: Final = 77  # os.EX_NOPERM: the collector will never take this code: a new bundle
EXIT_LOCKED: Final = 73  # os.EX_CANTCREAT: another daemon holds the visit log; restarting this
# one every 5 s cannot help while that one runs (checkpoint.service's RestartPreventExitStatus=)


class AlreadyRunning(StoreError):
    """Another daemon holds the visit log's lock (``appliance.store.lock``); ``pid`` is that
    process, as the kernel says (None if it could not be told)."""

    exit_code = EXIT_LOCKED

    def __init__(self, database: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid else "another process"
        stop = f"`kill {pid}`" if pid else "`systemctl stop checkpoint`"
        super().__init__(
            f"another daemon ({who}) already runs on {database}; a second one would close its"
            " open stays", advice=f"stop it first ({stop}), or give this one its own database",
        )  # fmt: skip
        self.database = database
        self.pid = pid


# -- the device's hardware ---------------------------------------------------------------------


class ScannerError(CheckpointError):
    """The scanner could not start or stopped; the message says what a person can do."""


class GpioError(CheckpointError):
    """A pin could not be used; the message names it."""


# -- visitors typed at the door ----------------------------------------------------------------


class UntrustedFile(ValueError):
    """A file in a shared directory that must not be used: a link, not a plain file, or one with
    other names (``appliance.plainfile``)."""


class BadRequest(ValueError):
    """An inbox request the daemon refuses (``appliance.inbox``): ``cause`` is what its summary
    counts it under ("not JSON", "bad uuid"), the message adds the detail."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause


class VisitorError(UsageError):
    """A field the receptionist must correct; ``field`` says which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- the collector, seen from the device ---------------------------------------------------------


class SyncError(CheckpointError):
    """Talking to the collector failed; the subclass says what to do about it."""

    status: int | None = None


class Transient(SyncError):
    """Try again later (with backoff)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(SyncError):
    """The collector does not accept the token: re-enroll."""


class TlsError(SyncError):
    """The server's certificate is not signed by the pinned CA (or TLS failed otherwise)."""


class Refused(SyncError):
    """A 4xx: the collector says what is wrong with the request."""

    def __init__(self, message: str, *, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


# -- fleet provisioning ------------------------------------------------------------------------


class BundleFileError(ConfigError):
    """The provision file is unreadable or not what `checkpoint provision bundle` writes."""


@dataclass(frozen=True, slots=True)
class InventoryProblem:
    line: int | None  # None: the file as a whole
    message: str


class InventoryError(UsageError):
    """The inventory has bad rows; ``problems`` lists every one."""

    def __init__(self, path: Path, problems: list[InventoryProblem]) -> None:
        rows = len({p.line for p in problems})
        super().__init__(
            f"{path}: {len(problems)} problem(s) on {rows} row(s); no enrollment code was requested"
        )
        self.path = path
        self.problems = problems

    def lines(self) -> list[str]:
        """One ``FILE:LINE: problem`` per problem, the format editors and grep understand."""
        return [
            f"{self.path}:{p.line}: {p.message}" if p.line else f"{self.path}: {p.message}"
            for p in self.problems
        ]


class RetryLater(CheckpointError):
    """Nothing is wrong with the file; the network or the clock is not ready yet."""

    exit_code = EXIT_RETRY


class CodeRefused(CheckpointError):
    """The collector will never take this file's code."""

    exit_code = EXIT_REFUSED


# -- the collector (server side) ---------------------------------------------------------------


class ServiceError(CheckpointError):
    """Refused, with the HTTP status the API answers and a message for both sides."""

    def __init__(self, status: int, message: str, *, advice: str | None = None) -> None:
        super().__init__(message, advice=advice)
        self.status = status


class DatabaseError(CheckpointError):
    """The collector's database failed or is unreachable."""


class BodyError(Exception):
    """A request body the collector cannot read (too big, bad gzip); ``status`` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
