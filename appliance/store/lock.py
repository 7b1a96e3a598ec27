"""One daemon per visit log: an exclusive POSIX lock on ``<database>.lock``, beside the log,
held through an open descriptor for the daemon's whole life, and the kernel's answer to who
holds it (``checkpoint status``, ``checkpoint doctor``).

The kernel drops the lock when its holder dies, SIGKILL included, so a crash never leaves a
stale lock; the pid written in the file is only a note of the last holder. A POSIX lock belongs
to the process and goes when *any* descriptor of the file is closed in it: the daemon's process
must never open the lock file a second time (``lock_holder`` is for other processes).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from appliance.errors import AlreadyRunning, StoreError
from appliance.store.files import share_with_the_daemon

log = logging.getLogger("checkpoint")

LOCK_SUFFIX: Final = ".lock"
LOCK_MODE: Final = 0o660  # as the log's own files: the daemon's user and group (umask applies)
# struct flock: l_type, l_whence, l_start, l_len, l_pid. off_t is 64 bits on every platform
# Python runs the unit on (it is built with large-file support); the tail is the kernel's padding.
_FLOCK: Final = "hhqqi"
_FLOCK_ROOM: Final = 16
_RECORD_MAX: Final = 32  # the pid note is a few digits; more is not ours


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + LOCK_SUFFIX)


def _open(path: Path, flags: int) -> int:
    """A descriptor on the lock file, never through a link, never blocking on a FIFO, and only
    if it is a plain file with one name: the state directory is the console's group's too."""
    untrusted = StoreError(
        f"{path} is not a plain file of its own (a link?)",
        advice=f"remove it (`rm {path}`); the daemon makes it again",
    )
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, LOCK_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise untrusted from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise untrusted
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kernel_holder(fd: int) -> int | None:
    """The pid of the process holding a lock on the whole file, as the kernel says (0 for a
    process outside this pid namespace), or None when nobody does."""
    query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0) + bytes(_FLOCK_ROOM)
    answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    kind, _, _, _, pid = struct.unpack_from(_FLOCK, answer)
    return None if kind == fcntl.F_UNLCK else int(pid)


def _recorded_pid(fd: int) -> int | None:
    text = os.pread(fd, _RECORD_MAX, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


class VisitLogLock:
    """The daemon's hold on its visit log; ``release`` (or the process's end) lets it go."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def take_lock(database: Path) -> VisitLogLock:
    """Hold ``database``'s lock, or raise ``AlreadyRunning`` naming the process that does.

    Nothing here touches the log itself. A disk too full to create the lock file does not stop
    the daemon (it must start and show the fault): it runs unlocked, and says so in its log."""
    path = lock_path(database)
    created = not os.path.lexists(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _open(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            log.warning("cannot make %s (disk full): running without the one-daemon lock", path)
            return VisitLogLock(path, None)
        raise StoreError(f"cannot open {path} ({exc.strerror})",
                         advice="check the state directory's owner and mode") from None  # fmt: skip
    if created:
        share_with_the_daemon(database, [path])  # run as root: still the daemon user's file
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            os.close(fd)
            raise StoreError(f"cannot lock {path} ({exc.strerror})") from None
        holder = _kernel_holder(fd) or _recorded_pid(fd)
        os.close(fd)
        raise AlreadyRunning(database, holder) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:  # a full disk: the lock holds all the same, only the note is missing
        log.warning("cannot write the pid into %s: %s", path, exc.strerror)
    return VisitLogLock(path, fd)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a visit log, for the people asking: ``pid`` is the kernel's answer (None:
    nobody), ``recorded_pid`` the last holder's note, ``error`` why the kernel could not be
    asked (then ``held`` is None: unknown)."""

    path: Path
    held: bool | None
    pid: int | None = None
    recorded_pid: int | None = None
    error: str | None = None

    def released_by(self, pid: object) -> bool:
        """Whether ``pid`` held this lock and the kernel has let it go: that daemon is dead,
        whatever its last status says."""
        return self.held is False and self.recorded_pid is not None and self.recorded_pid == pid

    def describe(self) -> str:
        """One phrase: ``held by pid 812 (running)``, ``not held: no daemon runs on it``."""
        if self.held is None:
            return f"cannot tell which process holds it ({self.error})"
        if self.held:
            return f"held by pid {self.pid or '(another pid namespace)'} (running)"
        if self.recorded_pid is not None:
            return f"not held: the last daemon, pid {self.recorded_pid}, has exited"
        return "not held: no daemon runs on it"

    def as_json(self) -> dict[str, object]:
        return {"lock": str(self.path), "held": self.held, "pid": self.pid,
                "recorded_pid": self.recorded_pid, "error": self.error}  # fmt: skip


def lock_holder(database: Path) -> Holder:
    """Which process holds ``database``, asked of the kernel (``F_GETLK``), which needs only
    read access and changes nothing: never from the daemon's own process (see the module)."""
    path = lock_path(database)
    try:
        fd = _open(path, os.O_RDONLY)
    except FileNotFoundError:
        return Holder(path, held=False)
    except OSError as exc:
        return Holder(path, held=None, error=f"{path}: {exc.strerror}")
    except StoreError as exc:
        return Holder(path, held=None, error=exc.message)
    try:
        pid = _kernel_holder(fd)
        recorded = _recorded_pid(fd)
    except OSError as exc:
        return Holder(path, held=None, error=f"{path}: {exc.strerror}")
    finally:
        os.close(fd)
    return Holder(path, held=pid is not None, pid=pid, recorded_pid=recorded)
