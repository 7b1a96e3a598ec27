"""Where an export goes: a file that appears only when complete (written as ``F.part``, then
renamed), or stdout; never a half file left behind, and a failure told in one line.

An export holds visitors' names and phone numbers, so ``F.part`` is made new by this process,
mode 0640, and never opened through a link: a link planted at ``F.part`` (the folder may be
shared) is replaced, not written through."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO

from appliance.errors import CheckpointError, UsageError
from appliance.exports.cells import Progress
from appliance.exports.csv import write_csv
from appliance.exports.exporter import Exporter
from appliance.exports.jsonl import write_jsonl
from appliance.exports.xlsx import write_xlsx

STDOUT = "-"
FORMATS = ("csv", "json", "xlsx")
# The maker and their group: on a unit that is the visit log's group, which may read the same
# names in the database already; never other users. (A umask can only take more away.)
EXPORT_MODE = 0o640
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def check_target(fmt: str, target: str) -> None:
    """Refuse, before anything is read, an output that cannot be written: a mistyped -o is
    one line, not a traceback and a stray F.part."""
    if fmt == "xlsx" and target == STDOUT and sys.stdout.isatty():
        raise UsageError("an XLSX file does not go to a terminal: give -o FILE.xlsx")
    if target == STDOUT:
        return
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise UsageError(f"-o {target} is a folder: give a file name")
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {target}: cannot write in {folder}")


def create_partial(target: str) -> tuple[int, Path]:
    """A descriptor on a new ``F.part`` beside ``target`` (mode ``EXPORT_MODE``), made by this
    call: whatever had the name before, an interrupted export's file or a planted link, is
    removed first (the entry itself, never what a link points at)."""
    path = Path(target)
    partial = path.with_name(path.name + ".part")
    try:
        return os.open(partial, _CREATE, EXPORT_MODE), partial
    except FileExistsError:
        pass
    try:
        os.unlink(partial)
        return os.open(partial, _CREATE, EXPORT_MODE), partial
    except OSError as exc:  # a folder of that name, someone else's file, or a race for the name
        raise CheckpointError(f"export failed: cannot replace {partial}: {exc.strerror}") from None


def open_text_output(target: str) -> tuple[IO[str], Path | None]:
    """stdout for ``-``; otherwise ``F.part``, renamed to ``F`` when complete."""
    if target == STDOUT:
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="",
                                  write_through=False)  # fmt: skip
        return stream, None
    fd, partial = create_partial(target)
    return os.fdopen(fd, "w", encoding="utf-8", newline=""), partial


def finish(partial: Path | None, target: str) -> None:
    if partial is not None:
        os.replace(partial, target)


def write_export(
    exporter: Exporter, fmt: str, target: str, progress: Progress | None = None
) -> int:
    """Write ``exporter``'s rows as ``fmt`` (csv, json, xlsx) to ``target`` (a file or ``-``);
    returns how many rows. A full disk or a closed file is a CheckpointError of one line; a
    broken pipe stays a BrokenPipeError (the reader went away)."""
    try:
        if fmt == "xlsx":
            return _write_workbook(exporter, target, progress)
        return _write_text(exporter, fmt, target, progress)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise CheckpointError(f"export failed: {exc.strerror or exc}") from None


def _write_workbook(exporter: Exporter, target: str, progress: Progress | None) -> int:
    if target == STDOUT:
        # XlsxWriter needs a file it can seek in: write one aside, then copy it out.
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "export.xlsx"
            count = write_xlsx(exporter, path, progress)
            with path.open("rb") as made:
                shutil.copyfileobj(made, sys.stdout.buffer)
        return count
    fd, partial = create_partial(target)
    try:
        # XlsxWriter writes into the file object it is given, so the workbook has the file's
        # mode and never follows a link (given a name, it would open(name, "wb") itself).
        with os.fdopen(fd, "wb") as out:
            count = write_xlsx(exporter, out, progress)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finish(partial, target)
    return count


def _write_text(exporter: Exporter, fmt: str, target: str, progress: Progress | None) -> int:
    out, partial = open_text_output(target)
    try:
        writer = write_csv if fmt == "csv" else write_jsonl
        count = writer(exporter, out, progress)
        out.flush()
    except BaseException:
        if partial is not None:
            out.close()
            partial.unlink(missing_ok=True)  # never a half file left behind
        raise
    finally:
        if partial is not None:
            out.close()
        elif isinstance(out, io.TextIOWrapper):
            out.detach()  # stdout itself stays open
    finish(partial, target)
    return count
