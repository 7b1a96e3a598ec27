"""Requests to the daemon from other processes: a visitor typed at the console, "mute".

The daemon is the visit log's only writer; the console never takes a write lock. A request is
a small JSON file dropped atomically into ``inbox/`` beside the database (written to a hidden
temporary name, then renamed), picked up by the daemon within a tick, applied, and deleted only
after its effect is committed. A manual entry carries its own UUID and time, so one applied
twice (a crash between commit and delete) is still one entry, and one written while the daemon
is stopped is recorded with the right time when it starts. A file that cannot be understood is
moved to ``inbox/rejected/`` and counted, never lost and never fatal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    directory = inbox_dir(database)
    try:
        return sorted(p for p in directory.iterdir() if p.suffix == ".json" and p.is_file())
    except FileNotFoundError:
        return []


def waiting_visitors(database: Path) -> int:
    """Visitors typed in but not yet recorded by the daemon (what the console shows)."""
    count = 0
    for path in pending(database):
        try:
            count += b'"kind": "manual"' in path.read_bytes()[:64]
        except OSError:
            continue
    return count


def read(path: Path) -> Request | None:
    """The request in ``path``, or None if it is malformed (then moved aside)."""
    try:
        raw = path.read_bytes()
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


def reject(path: Path, reason: str) -> None:
    log.warning("inbox: %s refused: %s", path.name, reason)
    target = path.parent / REJECTED
    try:
        _make_dir(target)
        os.replace(path, target / path.name)
    except OSError as exc:
        log.error("inbox: cannot move %s aside: %s", path.name, exc)


def rejected_requests(database: Path) -> int:
    try:
        return sum(1 for p in (inbox_dir(database) / REJECTED).iterdir() if p.suffix == ".json")
    except OSError:
        return 0


def expire(database: Path, older_than: float) -> int:
    """Delete refused requests and abandoned temporary files older than ``older_than`` (UNIX
    seconds): a visitor's details are kept no longer than retention allows."""
    removed = 0
    directory = inbox_dir(database)
    for place, pattern in ((directory / REJECTED, "*.json"), (directory, ".*.tmp")):
        try:
            candidates = list(place.glob(pattern))
        except OSError:
            continue
        for path in candidates:
            try:
                if path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
    return removed


def done(path: Path) -> None:
    path.unlink(missing_ok=True)
