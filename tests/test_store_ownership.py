"""Run as root (`sudo checkpoint doctor`, an export, `log-visitor` with the daemon stopped), the
visit log's files must stay the daemon's: SQLite makes -wal and -shm as whoever opens the log
first, and a root-owned -shm would stop the daemon (its own user) from writing."""

from __future__ import annotations

import os
import pwd
import sqlite3
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


@pytest.mark.parametrize("swap", ["symlink", "hardlink"])
def test_a_name_swapped_in_the_daemons_directory_gives_nothing_else_away(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """The daemon's user owns the directory: while root has the log open it could replace the
    new -wal with a link to, say, /etc/shadow. Root must not give that file away."""
    import appliance.store.files as files

    state, _uid, _gid = _daemon_dir(tmp_path)
    database = state / "checkpoint.db"
    victim = tmp_path / "shadow"
    victim.write_text("root's secret")
    victim.chmod(0o600)
    real_migrate = files.migrate

    def migrate_then_swap(db: object) -> int:
        done: int = real_migrate(db)
        wal = Path(f"{database}-wal")
        wal.unlink(missing_ok=True)
        if swap == "symlink":
            wal.symlink_to(victim)
        else:
            os.link(victim, wal)
        return done

    monkeypatch.setattr(files, "migrate", migrate_then_swap)
    VisitLog(database).close()
    info = victim.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)
    assert victim.read_text() == "root's secret"


def test_files_made_before_a_failed_open_are_still_the_daemons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appliance.store.files as files
    from appliance.errors import StoreError

    state, uid, gid = _daemon_dir(tmp_path)
    database = state / "checkpoint.db"

    def broken(db: object) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(files, "migrate", broken)
    with pytest.raises(StoreError):
        VisitLog(database)
    assert database.stat().st_uid == uid and database.stat().st_gid == gid
