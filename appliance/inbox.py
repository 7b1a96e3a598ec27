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
What each kind may hold is checked as strictly as its writers build it: the envelope and "mute"
here, a visitor's fields in appliance.visitors (the form's own rules). Requests are listed
well-formed first (the writers' names, plain files under the limit), so a flood of junk never
makes a visitor wait behind it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import re
import stat
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import BadRequest, UntrustedFile
from appliance.plainfile import open_plain_file
from appliance.records import LATEST_TIMESTAMP

log = logging.getLogger(__name__)

INBOX = "inbox"
REJECTED = "rejected"
MAX_REQUEST_BYTES = 16 * 1024
KINDS = ("manual", "mute")
MUTE_KEYS = frozenset({"minutes", "at"})
MAX_MUTE_MINUTES = 24 * 60
# What submit() names a request: its time in nanoseconds (19 digits until 2286) and 8 hex digits.
WRITER_NAME = re.compile(r"[0-9]{19}-[0-9a-f]{8}\.json")
EARLIEST_NAME_NS = 946684800 * 10**9  # 2000-01-01: no writer names a request before it
MAX_LISTED = 20_000  # files listed in one round: a bigger flood is taken in turns
WAITING_READ_MAX = 200  # requests the console looks into for its "visitors waiting" count


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
    """Drop a request for the daemon; returns its file. Raises ``OSError`` (a full card:
    ENOSPC) with nothing left behind, not even the temporary file."""
    directory = inbox_dir(database)
    _make_dir(directory)
    body = json.dumps({"kind": kind, **data}, ensure_ascii=False).encode("utf-8")
    name = f"{time.time_ns()}-{uuidlib.uuid4().hex[:8]}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
    try:
        try:  # unbuffered: a failed write is one error, not a second one from closing
            # Readable by the daemon's group only: a visitor's name and phone are in it.
            os.fchmod(fd, 0o640)
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = directory / name
        os.replace(tmp, final)
        with contextlib.suppress(OSError):  # the request is there: never say it failed
            _sync_dir(directory)  # the rename itself survives a power cut
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _well_formed(entry: os.DirEntry[str], latest_ns: int) -> bool:
    """Whether a listed request looks like one a writer made: its name, with a time after 2000
    and not after ``latest_ns``, a plain file with one link, not over the limit (one lstat, no
    open)."""
    if not WRITER_NAME.fullmatch(entry.name) or not (
        EARLIEST_NAME_NS <= int(entry.name[:19]) <= latest_ns
    ):
        return False
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_size <= MAX_REQUEST_BYTES


def pending_names(directory: Path) -> tuple[list[str], list[str]]:
    """The names of the requests waiting in the inbox ``directory``, oldest first: those that
    look like a writer's (``_well_formed``), and the rest; links are listed too, so that they
    are refused. Names, not paths: a flood of junk is listed cheaply; at most MAX_LISTED of
    them, the rest in a later round. Raises ``OSError`` when the inbox cannot be listed (a user
    outside the daemon's group)."""
    latest_ns = time.time_ns() + 86400 * 10**9  # a day of clock difference
    well: list[str] = []
    others: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in itertools.islice(entries, MAX_LISTED):
                if entry.name.endswith(".json") and (entry.is_symlink() or entry.is_file()):
                    (well if _well_formed(entry, latest_ns) else others).append(entry.name)
    except FileNotFoundError:
        pass
    return sorted(well), sorted(others)


def pending(database: Path) -> list[Path]:
    """The requests waiting: well-formed ones first, each group oldest first."""
    directory = inbox_dir(database)
    well, others = pending_names(directory)
    return [directory / name for name in well + others]


def _head(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of the request in ``path``, from a plain file with one link,
    opened without following a link: a hard link to another file would let a writer have it
    moved or deleted, a FIFO would hang the daemon."""
    fd, _info = open_plain_file(path)
    try:
        chunks: list[bytes] = []
        while limit > 0 and (chunk := os.read(fd, limit)):
            chunks.append(chunk)
            limit -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def writer_problem(database: Path) -> tuple[str, str] | None:
    """None when this process may drop requests in the inbox beside ``database`` (the inbox,
    or the nearest folder above it that exists, since submit makes the rest, is writable to
    it); else this user's name and the folder's group, which the user must join."""
    place = inbox_dir(database)
    while not os.path.lexists(place) and place.parent != place:
        place = place.parent
    if os.access(place, os.W_OK | os.X_OK):
        return None
    import grp
    import pwd

    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    try:
        group = grp.getgrgid(os.stat(place).st_gid).gr_name
    except (KeyError, OSError):
        group = "checkpoint"
    return user, group


def waiting_visitors(database: Path) -> int:
    """Visitors typed in but not yet recorded by the daemon (what the console shows); only
    well-formed requests are looked into, at most WAITING_READ_MAX of them."""
    count = 0
    directory = inbox_dir(database)
    try:
        well, _others = pending_names(directory)  # the rest is not what a writer makes
    except OSError:  # not ours to read: the console says so (appliance.console)
        return 0
    for name in well[:WAITING_READ_MAX]:
        path = directory / name
        try:
            count += b'"kind": "manual"' in _head(path, 64)
        except (OSError, UntrustedFile):
            continue
    return count


def load(path: Path) -> Request | None:
    """The request in ``path``; None when it is gone (another reader took it). Raises
    ``BadRequest`` for one to refuse, ``OSError`` when it cannot be read now (I/O)."""
    try:
        raw = _head(path, MAX_REQUEST_BYTES + 1)
    except FileNotFoundError:
        return None
    except UntrustedFile as exc:
        raise BadRequest("not a plain file", str(exc)) from None
    except PermissionError as exc:  # a writer's own mode keeps the daemon out: never readable
        raise BadRequest("unreadable", exc.strerror or str(exc)) from None
    if len(raw) > MAX_REQUEST_BYTES:
        raise BadRequest("too large", f"over {MAX_REQUEST_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        raise BadRequest("not JSON", str(exc)[:80] or type(exc).__name__) from None
    if not isinstance(data, dict):
        raise BadRequest("not a request object")
    kind = data.pop("kind", None)
    if kind not in KINDS:
        raise BadRequest("unknown kind", repr(kind)[:40])
    return Request(path, kind, data)


def read(path: Path) -> Request | None:
    """The request in ``path``, or None if it is gone or malformed (then moved aside)."""
    try:
        return load(path)
    except BadRequest as exc:
        reject(path, str(exc))
    except OSError as exc:  # unreadable now (I/O): left in place, tried again
        log.warning("inbox: cannot read %s: %s", path.name, exc)
    return None


# -- what a request may hold (the visitor's fields: appliance.visitors) -------------------------


def only_keys(data: dict[str, Any], allowed: frozenset[str]) -> None:
    """Refuse a key no writer puts in a request of this kind."""
    unknown = sorted(str(key) for key in data if key not in allowed)
    if unknown:
        raise BadRequest("unknown field", ", ".join(unknown)[:80])


def number(
    data: dict[str, Any], key: str, low: float, high: float, *, required: bool = True
) -> float | None:
    """``data[key]`` as a finite number within [low, high]: JSON's true, a string of digits
    or NaN are no number."""
    value = data.get(key)
    if value is None and not required:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise BadRequest(f"bad {key}", repr(value)[:40])
    return float(value)


@dataclass(frozen=True, slots=True)
class Mute:
    """Silence the buzzer for ``minutes`` (None: the configured time) from ``at`` (UNIX
    seconds; None: when it is read)."""

    minutes: float | None
    at: float | None

    def body(self) -> dict[str, Any]:
        return {"minutes": self.minutes, "at": self.at}

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Mute:
        """A mute request's fields, checked; raises ``BadRequest``."""
        only_keys(data, MUTE_KEYS)
        minutes = number(data, "minutes", 0, MAX_MUTE_MINUTES, required=False)
        if minutes == 0:
            raise BadRequest("bad minutes", "0")
        return cls(minutes, number(data, "at", 0, LATEST_TIMESTAMP, required=False))


def submit_mute(database: Path, minutes: float, at: float) -> Path:
    """Ask the daemon to mute from ``at``; checked as the daemon will check it, so a writer
    never leaves a request the daemon would refuse."""
    request = Mute(minutes, at)
    Mute.parse(request.body())
    return submit(database, "mute", request.body())


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


class Aside:
    """``rejected/`` of the inbox ``directory``, opened once for a round of refusals: the
    descriptor is the real directory (no link followed), so a link swapped in its place during
    the round changes nothing, and each move is one rename."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    def move(self, path: Path) -> bool:
        """Move a refused request in (a link is moved itself, never what it points to); False
        when it could not be moved."""
        try:
            if self._fd is None:
                target = _rejected_dir(self.directory)
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                self._fd = os.open(target, flags)
            os.replace(path, path.name, dst_dir_fd=self._fd)
        except FileNotFoundError:
            return True  # gone already
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def move_aside(path: Path) -> bool:
    """Move one refused request into ``rejected/``; False when it could not be moved."""
    aside = Aside(path.parent)
    try:
        return aside.move(path)
    finally:
        aside.close()


def reject(path: Path, reason: str) -> None:
    """Refuse one request, saying so in the log (the daemon's rounds summarise instead)."""
    log.warning("inbox: %s refused: %s", path.name, reason)
    if not move_aside(path):
        log.error("inbox: cannot move %s aside", path.name)


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
