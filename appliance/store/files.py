"""Opening the visit log's file: the pragmas every connection needs, the integrity check, the
schema, and the plain-language errors SQLite's messages become.

Run as root, opening also hands the files it created to the daemon's user, so that a root
command never leaves the daemon a log it cannot write.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Final

import sqlite_utils

from appliance.errors import DiskFull, StoreError, UntrustedFile
from appliance.plainfile import open_plain_file
from appliance.store.schema import migrate

BUSY_TIMEOUT_MS: Final = 5000  # the console reads while the daemon writes
CORRUPT_ADVICE: Final = "stop the daemon, move the file aside and restore a backup"
FULL_ADVICE: Final = "free space on the SD card; the daemon holds its entries until then"
# SQLite keeps no errno: a write the filesystem refused comes back as one of these I/O errors
# (ENOSPC growing the -shm file is SQLITE_IOERR_SHMSIZE). Such an error is a full disk only if
# the filesystem has less than ROOM_NEEDED_BYTES left for us: the -shm grows 32 KiB at a time
# and a commit appends its pages to the WAL, so below that SQLite cannot write at all.
WRITE_IOERRS: Final = frozenset({
    sqlite3.SQLITE_IOERR_WRITE, sqlite3.SQLITE_IOERR_FSYNC, sqlite3.SQLITE_IOERR_TRUNCATE,
    sqlite3.SQLITE_IOERR_SHMSIZE, sqlite3.SQLITE_IOERR_SHMMAP, sqlite3.SQLITE_IOERR_DIR_FSYNC,
})  # fmt: skip
ROOM_NEEDED_BYTES: Final = 1024 * 1024


def no_room(directory: Path) -> bool:
    """Whether the filesystem holding ``directory`` is (all but) full for this process: root may
    use the blocks ext4 reserves for it, anyone else may not."""
    try:
        fs = os.statvfs(directory)
    except OSError:
        return False
    blocks = fs.f_bfree if os.geteuid() == 0 else fs.f_bavail
    return blocks * fs.f_frsize < ROOM_NEEDED_BYTES or (fs.f_files > 0 and fs.f_favail == 0)


def is_disk_full(path: Path, exc: BaseException) -> bool:
    """ENOSPC (or a quota), SQLITE_FULL, or a write SQLite could not make on a filesystem with
    no room: not every I/O error is a full disk."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return False
    if code & 0xFF == sqlite3.SQLITE_FULL:
        return True
    return code in WRITE_IOERRS and no_room(path.parent)


def explain(path: Path, exc: BaseException) -> StoreError:
    """SQLite's or the OS's error on ``path``, as a sentence a person can act on."""
    text = str(exc)
    if is_disk_full(path, exc):
        return DiskFull(f"disk full writing {path}", advice=FULL_ADVICE)
    if "not a database" in text or "malformed" in text:
        return StoreError(f"{path} is corrupt ({text})", advice=CORRUPT_ADVICE)
    if "unable to open" in text or isinstance(exc, PermissionError):
        return StoreError(f"cannot open {path} ({text})", advice="check the path and permissions")
    return StoreError(f"database error on {path}: {text}")


def log_files(path: Path) -> tuple[Path, Path, Path]:
    """The log and the write-ahead files SQLite keeps beside it."""
    return path, Path(f"{path}-wal"), Path(f"{path}-shm")


def open_log(path: Path, *, readonly: bool, check: bool) -> sqlite_utils.Database:
    """The log at ``path``: checked (``PRAGMA quick_check``) unless ``check`` is false, and,
    for a writer, in WAL mode with ``synchronous=FULL`` and migrated to the current schema.

    WAL with ``synchronous=FULL`` keeps every committed batch through a crash or a power cut,
    which is what happens to a Pi at a door. Raises StoreError.
    """
    new_files = [f for f in log_files(path) if not f.exists()]
    conn: sqlite3.Connection | None = None
    try:
        if readonly:
            if not path.exists():
                raise StoreError(f"no visit log at {path} (has the daemon run yet?)")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db = sqlite_utils.Database(conn)
        if check:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise StoreError(f"{path} failed its integrity check: {result}",
                                 advice=CORRUPT_ADVICE)  # fmt: skip
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(db)
        return db
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        raise explain(path, exc) from None
    finally:
        share_with_the_daemon(path, new_files)


def share_with_the_daemon(path: Path, created: list[Path]) -> None:
    """Run as root (`sudo checkpoint doctor`, an export), opening the log makes its -wal and
    -shm files (and, on a new unit, the log itself) root's: the daemon, which runs as its
    own user, could then no longer write them. What this opening created goes to whoever
    owns the log's directory (systemd's StateDirectory: the daemon's user), group-writable
    as the daemon's own files are (UMask=0007). Files that were there are left as they
    were: `checkpoint doctor` reports those, it does not mend them behind anyone's back."""
    if os.geteuid() != 0 or not created:
        return
    try:
        home = path.parent.stat()
    except OSError:
        return
    if home.st_uid == 0:
        return  # a root-owned directory: root's log, nothing to share
    for name in created:
        _give_away(name, home.st_uid, home.st_gid)


def _give_away(name: Path, uid: int, gid: int) -> None:
    # The directory is the daemon user's: a name in it may have been swapped for a link to
    # another file by now. Only a plain file root made, with no other name, is given away,
    # through its descriptor (no path is followed).
    try:
        fd, info = open_plain_file(name)
    except (OSError, UntrustedFile):
        return
    try:
        if info.st_uid == 0:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o660)
    except OSError:
        pass
    finally:
        os.close(fd)
