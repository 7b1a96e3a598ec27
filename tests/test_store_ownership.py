"""Run as root (`sudo checkpoint doctor`, an export, `log-visitor` with the daemon stopped), the
visit log's files must stay the daemon's: SQLite makes -wal and -shm as whoever opens the log
first, and a root-owned -shm would stop the daemon (its own user) from writing."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from appliance.store import VisitLog

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")


def _daemon_dir(tmp_path: Path) -> tuple[Path, int, int]:
    """A StateDirectory as systemd makes it: the daemon's user (`nobody` here), setgid 2770."""
    nobody = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    state.chmod(0o2770)
    return state, nobody.pw_uid, nobody.pw_gid


def _owners(database: Path) -> dict[str, tuple[int, int, int]]:
    found = {}
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        if path.exists():
            info = path.stat()
            found[path.name] = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    return found


def test_a_log_root_creates_in_the_daemons_directory_is_the_daemons(tmp_path: Path) -> None:
    state, uid, gid = _daemon_dir(tmp_path)
    database = state / "checkpoint.db"
    store = VisitLog(database)
    store.add_manual("Nguyễn Văn A", clock_synced=True)
    owners = _owners(database)
    store.close()
    assert set(owners) >= {"checkpoint.db", "checkpoint.db-wal", "checkpoint.db-shm"}
    assert all(owner == (uid, gid, 0o660) for owner in owners.values()), owners


def test_a_read_only_look_by_root_leaves_nothing_the_daemon_cannot_write(tmp_path: Path) -> None:
    state, uid, gid = _daemon_dir(tmp_path)
    database = state / "checkpoint.db"
    VisitLog(database).close()
    for sidecar in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        sidecar.unlink(missing_ok=True)  # the daemon stopped cleanly: no -wal, no -shm
    look = VisitLog(database, readonly=True)  # what `sudo checkpoint doctor` does
    owners = _owners(database)
    look.close()
    assert all(owner[:2] == (uid, gid) for owner in owners.values()), owners


def test_roots_own_log_in_roots_directory_is_left_alone(tmp_path: Path) -> None:
    database = tmp_path / "root-only" / "checkpoint.db"
    VisitLog(database).close()
    assert database.stat().st_uid == 0
