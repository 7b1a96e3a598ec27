"""Requests to the daemon from other processes: a visitor typed at the console, "mute".

The daemon is the visit log's only writer; the console never takes a write lock. A request is
a small JSON file dropped atomically into ``inbox/`` beside the database (written to a hidden
temporary name, then renamed), picked up by the daemon within a tick, applied, and deleted only
after its effect is committed. A manual entry carries its own UUID and time, so one applied
twice (a crash between commit and delete) is still one entry, and one written while the daemon
is stopped is recorded with the right time when it starts. A file that cannot be understood is
moved to ``inbox/rejected/`` and counted, never lost and never fatal.

Anyone in the daemon's group can write here, so nothing in it is trusted: a request is read
through a descriptor that follows no link, only if it is a plain file with one link, and at most
one byte past the limit; ``rejected/`` is used only as a real directory, never through a link.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import UntrustedFile
from appliance.plainfile import open_plain_file

log = logging.getLogger(__name__)

INBOX = "inbox"
REJECTED = "rejected"
MAX_REQUEST_BYTES = 16 * 1024


def inbox_dir(database: Path) -> Path:
    return Path(database).parent / INBOX


@dataclass(frozen=True, slots=True)
class Request:
    path: Path
    kind: str  # manual | mute
    data: dict[str, Any]


def _make_dir(directory: Path) -> None:
    """The inbox is shared by the console's user and the daemon's: group-writable, and
    setgid so files keep the group (mkdir's mode is cut by the umask, hence the chmod)."""
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            directory.chmod(0o2770)


def submit(database: Path, kind: str, data: dict[str, Any]) -> Path:
    """Drop a request for the daemon; returns its file."""
    directory = inbox_dir(database)
    _make_dir(directory)
    body = json.dumps({"kind": kind, **data}, ensure_ascii=False).encode("utf-8")
    name = f"{time.time_ns()}-{uuidlib.uuid4().hex[:8]}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        # Readable by the daemon's group only: a visitor's name and phone are in it.
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        final = directory / name
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def pending(database: Path) -> list[Path]:
    """The requests waiting, oldest first; links are listed too, so that they are refused."""
    directory = inbox_dir(database)
    try:
        return sorted(
            p
            for p in directory.iterdir()
            if p.suffix == ".json" and (p.is_symlink() or p.is_file())
        )
    except FileNotFoundError:
        return []


def _head(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the request in ``path``, from a plain file with one link,
    opened without following a link: a hard link to another file would let a writer have it
    moved or deleted, a FIFO would hang the daemon."""
    fd, _info = open_plain_file(path)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit)


def waiting_visitors(database: Path) -> int:
    """Visitors typed in but not yet recorded by the daemon (what the console shows)."""
    count = 0
    for path in pending(database):
        try:
            count += b'"kind": "manual"' in _head(path, 64)
        except (OSError, UntrustedFile):
            continue
    return count


def read(path: Path) -> Request | None:
    """The request in ``path``, or None if it is malformed (then moved aside)."""
    try:
        raw = _head(path, MAX_REQUEST_BYTES + 1)
        if len(raw) > MAX_REQUEST_BYTES:
            raise ValueError(f"over {MAX_REQUEST_BYTES} bytes")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ValueError("not a request object")
    except FileNotFoundError:
        return None  # another reader took it
    except OSError as exc:  # unreadable now (permissions, I/O): left in place, tried again
        log.warning("inbox: cannot read %s: %s", path.name, exc)
        return None
    except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        reject(path, str(exc))
        return None
    return Request(path, data.pop("kind"), data)


def _real_dir(directory: Path) -> bool:
    """Whether ``directory`` is a directory itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(directory).st_mode)
    except OSError:
        return False


def _rejected_dir(inbox: Path) -> Path:
    """``inbox/rejected``, made a real directory: anything else in its place (a link planted to
    have refused requests moved, and later deleted, elsewhere) is removed first."""
    target = inbox / REJECTED
    if not _real_dir(target) and os.path.lexists(target):
        log.warning("inbox: %s was not a directory (a link?): replaced by one", target)
        target.unlink()
    _make_dir(target)
    return target


def reject(path: Path, reason: str) -> None:
    log.warning("inbox: %s refused: %s", path.name, reason)
    try:
        target = _rejected_dir(path.parent)
        os.replace(path, target / path.name)  # a link is moved itself, never what it points to
    except OSError as exc:
        log.error("inbox: cannot move %s aside: %s", path.name, exc)


def rejected_requests(database: Path) -> int:
    target = inbox_dir(database) / REJECTED
    if not _real_dir(target):
        return 0
    try:
        return sum(1 for p in target.iterdir() if p.suffix == ".json")
    except OSError:
        return 0


def expire(database: Path, older_than: float) -> int:
    """Delete refused requests and abandoned temporary files older than ``older_than`` (UNIX
    seconds): a visitor's details are kept no longer than retention allows."""
    removed = 0
    directory = inbox_dir(database)
    for place, pattern in ((directory / REJECTED, "*.json"), (directory, ".*.tmp")):
        if not _real_dir(place):  # never through a link: it could point anywhere
            continue
        try:
            candidates = list(place.glob(pattern))
        except OSError:
            continue
        for path in candidates:
            try:
                if os.lstat(path).st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed


def done(path: Path) -> None:
    path.unlink(missing_ok=True)
