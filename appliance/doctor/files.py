"""Doctor's checks of files: the configuration, secrets, the state directory, the visit log,
the disk, and the clock the records are stamped with."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from appliance import clock
from appliance.config import Config, load_secret
from appliance.doctor.base import (
    FAIL,
    PASS,
    WARN,
    Account,
    Check,
    described,
    failed,
    group_name,
    nearest_existing,
    owner,
)
from appliance.errors import CheckpointError

DISK_MIN_FREE_BYTES = 200 * 1024 * 1024  # a few months of visits and the journal's headroom


def secret_mode_check(name: str, path: Path, account: Account, what: str) -> Check:
    """A secret must be 0600, or 0640 for a group; the daemon's user must be able to read it."""
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    where = described(path, st)
    if mode & 0o027:
        return Check(FAIL, name, f"{where}: other users can read or change it", f"chmod 600 {path}")
    if not account.can(st, read=True):
        return Check(
            FAIL,
            name,
            f"{where} is not readable by {account.name}, the daemon's user",
            f"chown {account.name}:{account.group} {path}",
        )
    shared = f", readable by group {group_name(st.st_gid)}" if mode & 0o040 else ""
    return Check(PASS, name, f"{path}: {what}, mode {mode:04o}, owner {owner(st)}{shared}")


def province_key_check(config: Config, account: Account) -> Check:
    path = config.privacy.key_file
    try:
        secret = load_secret(config)
    except CheckpointError as exc:
        fallback = (
            f"make it readable by the daemon's user (`chown {account.name} {path}`), or run"
            " the doctor as root"
            if path.exists()
            else f"install the key the collector issued as {path} (`checkpoint enroll`)"
        )
        return failed("province key", exc, fallback)
    return secret_mode_check("province key", path, account, f"{len(secret)} bytes")


def beacon_key_check(config: Config, account: Account) -> Check | None:
    """The door's own beacon key (made at enrollment), when the configuration has a beacon."""
    if config.beacon is None:
        return None
    path = config.beacon.key_file
    if not path.exists():
        return Check(
            FAIL,
            "beacon key",
            f"{path} does not exist: the door's beacon cannot advertise",
            "enroll the unit (`checkpoint provision apply`), or `checkpoint beacon --new-key`",
        )
    from appliance.ble.beacon import load_beacon_key

    try:
        load_beacon_key(path)  # a base key of the wrong length would advertise nothing valid
    except CheckpointError as exc:
        fallback = f"make it readable by {account.name}, or run the doctor as root"
        return failed("beacon key", exc, fallback)
    return secret_mode_check("beacon key", path, account, "a 32-byte base key")


def config_file_check(config: Config, account: Account) -> Check:
    """Not secret, but whoever can change it can point the unit at another key or collector."""
    path = config.path
    if path is None:
        return Check(
            WARN,
            "configuration",
            "none: built-in defaults",
            "install one at /etc/checkpoint/checkpoint.toml",
        )
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    where = described(path, st)
    if mode & 0o002:
        return Check(FAIL, "configuration", f"{where}: anyone can change it", f"chmod o-w {path}")
    if not account.can(st, read=True):
        return Check(
            FAIL,
            "configuration",
            f"{where} is not readable by {account.name}",
            f"chgrp {account.group} {path} && chmod 640 {path}",
        )
    if mode & 0o020:
        return Check(
            WARN,
            "configuration",
            f"{where}: group {group_name(st.st_gid)} can change it",
            f"chmod g-w {path}",
        )
    return Check(PASS, "configuration", where)


def state_dir_check(config: Config, account: Account) -> Check:
    """The daemon writes the visit log here and the console's user drops requests in inbox/:
    2770, shared through the group, setgid so new files keep it."""
    directory = config.storage.database.parent
    name = "state directory"
    setup = f"chown {account.name}:{account.group} {directory} && chmod 2770 {directory}"
    if not directory.exists():
        parent = nearest_existing(directory)
        if parent.is_dir() and account.can(parent.stat(), write=True):
            return Check(
                WARN,
                name,
                f"{directory} does not exist yet: the daemon will create it",
                "systemd's StateDirectory= makes it with mode 2770",
            )
        return Check(
            FAIL,
            name,
            f"{directory} does not exist and {account.name} cannot create it",
            f"mkdir -p {directory} && {setup}",
        )
    st = directory.stat()
    mode = stat.S_IMODE(st.st_mode)
    where = described(directory, st)
    if not stat.S_ISDIR(st.st_mode):
        return Check(FAIL, name, f"{directory} is not a directory", "fix [storage] database")
    if not account.can(st, write=True) or not account.can(st, read=True):
        return Check(FAIL, name, f"{where} is not writable by {account.name}", setup)
    if not mode & stat.S_ISGID:
        return Check(
            WARN,
            name,
            f"{where} is not setgid: files the console creates may not stay in the daemon's group",
            f"chmod 2770 {directory}",
        )
    return Check(PASS, name, f"{where}, writable by {account.name}")


def visit_log_check(config: Config, account: Account) -> Check:
    from appliance.store import VisitLog

    database = config.storage.database
    if not database.exists():
        return Check(WARN, "visit log", f"{database} does not exist yet (first start)")
    try:
        VisitLog(database, readonly=True).close()
    except CheckpointError as exc:
        return failed("visit log", exc, "stop the daemon, move the file aside and restore a backup")
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists() and not account.can(path.stat(), read=True, write=True):
            # A command run as root creates root's files: the daemon could no longer write.
            return Check(
                FAIL,
                "visit log",
                f"{path} ({owner(path.stat())}) is not writable by {account.name}",
                f"chown {account.name}:{account.group} {database}*",
            )
    return Check(PASS, "visit log", f"{database} passes its integrity check")


def disk_check(config: Config) -> Check:
    target = nearest_existing(config.storage.database.parent)
    free = shutil.disk_usage(target).free
    detail = f"{free / 2**20:.0f} MiB free on {target}"
    if free >= DISK_MIN_FREE_BYTES:
        return Check(PASS, "disk space", detail)
    return Check(
        FAIL,
        "disk space",
        f"{detail}, under {DISK_MIN_FREE_BYTES // 2**20} MiB",
        "free space on the SD card (`journalctl --vacuum-size=50M`, `apt-get clean`)",
    )


def clock_check() -> Check:
    if clock.is_synchronized():
        return Check(PASS, "clock", "synchronised")
    return Check(
        WARN,
        "clock",
        "not synchronised: records are flagged and retention waits",
        "check NTP with `timedatectl timesync-status`",
    )
