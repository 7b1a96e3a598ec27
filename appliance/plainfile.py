"""Opening a file in a directory that others may write (the inbox, the daemon's state folder):
never through a link, never blocking on a FIFO, and only a plain file with one name, so that a
link planted in its place cannot turn a read, a move or a chown onto another file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from appliance.errors import UntrustedFile


def open_plain_file(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor on ``path`` and what it is, if it is a plain file with one link.

    Raises ``UntrustedFile`` for a symbolic link, anything but a plain file, or a file with
    other names (a hard link); ``OSError`` when it cannot be opened at all."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedFile("a symbolic link, not a plain file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFile("not a plain file")
        if info.st_nlink != 1:
            raise UntrustedFile(f"a file with {info.st_nlink} hard links")
    except BaseException:
        os.close(fd)
        raise
    return fd, info
