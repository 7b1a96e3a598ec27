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

from appliance.errors import StoreError, UntrustedFile
from appliance.plainfile import open_plain_file
from appliance.store.schema import migrate

BUSY_TIMEOUT_MS: Final = 5000  # the console reads while the daemon writes
CORRUPT_ADVICE: Final = "stop the daemon, move the file aside and restore a backup"


def explain(path: Path, exc: BaseException) -> StoreError:
    """SQLite's or the OS's error on ``path``, as a sentence a person can act on."""
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "disk is full" in text:
        return StoreError(f"disk full writing {path}", advice="free space on the SD card")
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
