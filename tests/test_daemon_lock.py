"""One daemon per visit log, and a status that belongs to it: real daemon processes (the
simulated lobby) on real files, `checkpoint status`, `doctor` and the console's reader asking
who holds the log, and `status` run by a user who may not read the daemon's files."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.config import load_config
from appliance.errors import EXIT_LOCKED, AlreadyRunning, StoreError
from appliance.status import status_path
from appliance.store.lock import lock_holder, lock_path, take_lock
from tests.conftest import run_checkpoint
from tests.test_daemon import committed, runtime_env, wait_for, write_config

pytestmark = pytest.mark.slow

MAKES_IT = "the daemon makes it again"


def unit_config(directory: Path, door: str, runtime: Path | None = None) -> Path:
    """A simulated unit in ``directory``; with ``runtime``, its status goes there."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "checkpoint.toml"
    runtime_line = f'runtime_dir = "{runtime}"\n' if runtime is not None else ""
    config.write_text(
        f'[checkpoint]\nid = "{door}"\nagency = "Sở Y tế"\n'
        f'[storage]\ndatabase = "data/visits.db"\n{runtime_line}'
        '[privacy]\nkey_file = "data/province.key"\n'
        '[ble]\nsource = "simulate"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    return config


class Daemons:
    """Daemon processes a test starts; whatever is left is killed at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run", "--simulate", "--config", str(config),
             "--speed", "60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "CHECKPOINT_LOG_LEVEL": "WARNING", **(env or {})},
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a stopped one could not die
                proc.kill()
                proc.wait()


@pytest.fixture
def daemons() -> Iterator[Daemons]:
    started = Daemons()
    yield started
    started.stop_all()


def status_json(config: Path, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    result = run_checkpoint(["status", "--json", "--config", str(config)], env=env or {})
    return result.returncode, json.loads(result.stdout)


def running_as(config: Path, pid: int, env: dict[str, str] | None = None) -> bool:
    code, status = status_json(config, env)
    return code == 0 and status.get("pid") == pid


def daemon_check(config: Path) -> dict[str, Any]:
    result = run_checkpoint(["doctor", "--json", "--config", str(config)])
    (check,) = [c for c in map(json.loads, result.stdout.splitlines()) if c.get("name") == "daemon"]
    return check  # type: ignore[no-any-return]


def entries(db: Path) -> list[tuple[Any, ...]]:
    """Every entry with its stay, as a second daemon would have changed them."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT uuid, kind, entered_at, left_at FROM entries ORDER BY uuid"
        ).fetchall()
    finally:
        conn.close()


# -- defect 5: one daemon per database ---------------------------------------------------------


def test_a_second_daemon_on_the_same_database_refuses_at_once_naming_the_first(
    tmp_path: Path, daemons: Daemons
) -> None:
    config = write_config(tmp_path)
    env = runtime_env(config)
    db = tmp_path / "data" / "visits.db"
    first = daemons.start(config, env)
    wait_for(lambda: len(committed(db)) >= 3 and running_as(config, first.pid, env), timeout=60)
    # Frozen, the first changes nothing itself: whatever changes now is the second's doing.
    first.send_signal(signal.SIGSTOP)
    try:
        before = entries(db)
        started = time.monotonic()
        second = run_checkpoint(["run", "--simulate", "--config", str(config)], env=env, timeout=30)
        took = time.monotonic() - started
        assert entries(db) == before  # no stay of the first's closed, no lobby of its own
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == EXIT_LOCKED
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("checkpoint: another daemon") and f"pid {first.pid}" in line, line
    assert took < 10  # at once: it does not wait for the first to go
    assert first.poll() is None and running_as(config, first.pid, env)
    lock = lock_path(db)
    info = lock.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o007 == 0
    assert lock.read_text().strip() == str(first.pid)


def test_after_a_sigkill_a_new_daemon_starts_and_status_and_doctor_name_the_holder(
    tmp_path: Path, daemons: Daemons
) -> None:
    config = write_config(tmp_path)
    env = runtime_env(config)
    db = tmp_path / "data" / "visits.db"
    first = daemons.start(config, env)
    wait_for(lambda: running_as(config, first.pid, env), timeout=60)
    report = run_checkpoint(["status", "--config", str(config)], env=env)
    assert f"held by pid {first.pid} (running)" in report.stdout
    check = daemon_check(config)
    assert check["status"] == "PASS" and f"held by pid {first.pid}" in check["detail"]

    first.kill()
    first.wait()
    # At once, not once the status goes stale: the kernel let the lock go with the process.
    code, status = status_json(config, env)
    assert code == 3 and status["running"] is False
    assert status["holder"] == {"lock": str(lock_path(db)), "held": False, "pid": None,
                                "recorded_pid": first.pid, "error": None}  # fmt: skip
    report = run_checkpoint(["status", "--config", str(config)], env=env)
    assert report.returncode == 3 and "NOT RUNNING" in report.stdout
    assert f"not held: the last daemon, pid {first.pid}, has exited" in report.stdout
    check = daemon_check(config)
    assert check["status"] == "WARN" and f"pid {first.pid}, has exited" in check["detail"]

    again = daemons.start(config, env)
    wait_for(lambda: running_as(config, again.pid, env), timeout=60)
    # The pid in the file is only a note: the holder is the kernel's answer.
    lock_path(db).write_text("1\n")
    holder = lock_holder(db)
    assert (holder.held, holder.pid, holder.recorded_pid) == (True, again.pid, 1)
    assert f"held by pid {again.pid}" in daemon_check(config)["detail"]


def test_the_lock_file_is_never_taken_through_a_link(tmp_path: Path) -> None:
    from appliance.config import parse_config
    from appliance.doctor.holder import daemon_check

    db = tmp_path / "visits.db"
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    config = parse_config({"storage": {"database": str(db)}}, tmp_path)
    for plant in (os.symlink, os.link):
        plant(precious, lock_path(db))
        with pytest.raises(StoreError, match="not a plain file"):
            take_lock(db)
        assert precious.read_text() == "keep me\n"
        assert lock_holder(db).held is None
        check = daemon_check(config)  # doctor says what to do about it
        assert (check.status, check.advice) == ("FAIL", f"remove {lock_path(db)}; {MAKES_IT}")
        lock_path(db).unlink()
    ask = f"import pathlib, appliance.store.lock as s; s.take_lock(pathlib.Path('{db}'))"
    held = take_lock(db)
    try:  # another process (in this one, asking would let the lock go: see the module)
        other = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True)
        assert other.returncode == 1
        assert f"AlreadyRunning: another daemon (pid {os.getpid()})" in other.stderr
    finally:
        held.release()
    assert subprocess.run([sys.executable, "-c", ask]).returncode == 0


def test_already_running_is_one_line_with_the_pid(tmp_path: Path) -> None:
    error = AlreadyRunning(tmp_path / "visits.db", 4242)
    assert "\n" not in str(error) and "pid 4242" in str(error) and "kill 4242" in str(error)
    assert error.exit_code == EXIT_LOCKED


# -- defect 6: a status per database ---------------------------------------------------------


def test_two_daemons_on_two_databases_in_one_runtime_dir_each_show_their_own(
    tmp_path: Path, daemons: Daemons
) -> None:
    from appliance.daemon.readout import read_snapshot
    from appliance.i18n import text
    from appliance.status import write_status
    from tests.test_console import screen

    shared = tmp_path / "run"  # one runtime directory for both, as /run/checkpoint is
    a = unit_config(tmp_path / "a", "TQ-A", shared)
    b = unit_config(tmp_path / "b", "TQ-B", shared)
    proc_a, proc_b = daemons.start(a), daemons.start(b)
    wait_for(lambda: running_as(a, proc_a.pid) and running_as(b, proc_b.pid), timeout=60)
    config_a, config_b = load_config(a), load_config(b)
    assert status_path(config_a) != status_path(config_b)
    assert status_path(config_a).parent == status_path(config_b).parent == shared
    for _ in range(4):  # each rewrites its own file every second: never the other's
        for config, proc, door in ((a, proc_a, "TQ-A"), (b, proc_b, "TQ-B")):
            code, status = status_json(config)
            assert (code, status["pid"], status["checkpoint"]["id"]) == (0, proc.pid, door)
            assert status["database"] == str((config.parent / "data" / "visits.db").resolve())
        snap = read_snapshot(config_a, None, time.time())  # what A's console shows
        assert snap.status is not None and snap.status["pid"] == proc_a.pid
        time.sleep(0.5)

    # B's status planted where A's goes, fresh and "running": not shown as A's.
    proc_a.send_signal(signal.SIGTERM)
    assert proc_a.wait(timeout=30) == 0
    planted = json.loads(status_path(config_b).read_text())
    write_status(status_path(config_a), {**planted, "updated_at": time.time()})
    result = run_checkpoint(["status", "--config", str(a)])
    assert result.returncode == 3 and f"pid {proc_b.pid}" not in result.stdout
    assert "is not shown: it belongs to the database" in result.stdout
    snap = read_snapshot(config_a, None, time.time())
    assert snap.status is None and snap.status_problem == "foreign"
    lines = screen(snap, "vi", 80, 25)
    assert any(text("fault_status_foreign", "vi")[:40] in line for line in lines), lines
    assert not any(text("running", "vi") in line for line in lines[:3])
    planted_door = {**planted, "database": str(config_a.storage.database.resolve())}
    write_status(status_path(config_a), {**planted_door, "updated_at": time.time()})
    result = run_checkpoint(["status", "--config", str(a)])
    assert result.returncode == 3 and "it belongs to door TQ-B, not TQ-A" in result.stdout


def test_another_units_beacon_file_is_not_this_units_beacon(tmp_path: Path) -> None:
    from appliance.config import parse_config
    from appliance.status import beacon_status_path, owner_of, read_beacon_status, write_status

    def unit(name: str) -> Any:
        return parse_config({"checkpoint": {"id": name},
                             "storage": {"database": str(tmp_path / name / "v.db"),
                                         "runtime_dir": str(tmp_path / "run")},
                             "beacon": {}}, tmp_path)  # fmt: skip

    mine, other = unit("TQ-A"), unit("TQ-B")
    assert beacon_status_path(mine) != beacon_status_path(other)
    state = {"state": "ok", "message": None, "updated_at": time.time()}
    write_status(beacon_status_path(mine), {**state, **owner_of(other)})
    assert read_beacon_status(mine)["state"] == "stopped"
    write_status(beacon_status_path(mine), {**state, **owner_of(mine)})
    assert read_beacon_status(mine)["state"] == "ok"


# -- defect 9, second half: `status` as another user ---------------------------------------------

# The command runs as `nobody` for real (uid, gid, no supplementary groups). It starts as root
# and gives root up for good before running: the interpreter may live where nobody cannot reach
# it (a pyenv under /root), so the modules the command needs are loaded first.
AS_NOBODY = """
import os, sys
import appliance.cli, appliance.commands.status, appliance.core.doorway, appliance.status
import appliance.store.lock
os.setgroups([])
os.setgid({gid})
os.setuid({uid})
assert os.getuid() == os.geteuid() == {uid} and os.getgroups() == []
{run}
"""
COMMAND = "sys.exit(appliance.cli.main(sys.argv[1:]))"
STATUS_PATH = "print(appliance.status.status_path(appliance.config.load_config(sys.argv[1])))"


def as_nobody(args: list[str], run: str = COMMAND) -> subprocess.CompletedProcess[str]:
    nobody = pwd.getpwnam("nobody")
    code = AS_NOBODY.format(uid=nobody.pw_uid, gid=nobody.pw_gid, run=run)
    env = {**os.environ, "RUNTIME_DIRECTORY": ""}  # a login shell: not the daemon's environment
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )


@pytest.fixture
def open_tree() -> Iterator[Path]:
    """A directory other users may enter (pytest's own is root's only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    directory = Path(tempfile.mkdtemp(prefix="checkpoint-other-user-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_status_path_does_not_depend_on_who_asks(open_tree: Path) -> None:
    config = unit_config(open_tree / "unit", "TQ-A")  # no runtime_dir
    login_shell = {"RUNTIME_DIRECTORY": ""}  # and no $RUNTIME_DIRECTORY
    # The rule itself, asked in each user's own process: root's answer is everyone's.
    ask = f"import sys, appliance.status, appliance.config; {STATUS_PATH}"
    mine = subprocess.run(
        [sys.executable, "-c", ask, str(config)], capture_output=True, text=True,
        env={**os.environ, **login_shell},
    )  # fmt: skip
    theirs = as_nobody([str(config)], run=STATUS_PATH)
    assert mine.stdout == theirs.stdout, mine.stderr + theirs.stderr
    path = mine.stdout.strip()
    assert Path(path).parent == open_tree / "unit" / "data"  # beside the database
    as_root = run_checkpoint(["status", "--json", "--config", str(config)], env=login_shell)
    as_other = as_nobody(["status", "--json", "--config", str(config)])
    assert as_root.returncode == as_other.returncode == 3, as_other.stderr
    for answer in (as_root, as_other):
        assert json.loads(answer.stdout)["problem"] == {"kind": "missing", "detail": "",
                                                        "path": path}  # fmt: skip


def test_status_as_a_user_who_may_not_read_it_says_so_not_that_it_is_stopped(
    open_tree: Path, daemons: Daemons
) -> None:
    run = open_tree / "run"
    run.mkdir(mode=0o750)  # as systemd's RuntimeDirectoryMode=0750, not the other user's group
    config = unit_config(open_tree / "unit", "TQ-A", run)
    db = open_tree / "unit" / "data" / "visits.db"
    proc = daemons.start(config, {"RUNTIME_DIRECTORY": ""})
    wait_for(lambda: running_as(config, proc.pid), timeout=60)

    result = as_nobody(["status", "--config", str(config)])
    assert result.returncode == 4, result.stdout + result.stderr
    assert "cannot read its status" in result.stdout and "Permission denied" in result.stdout
    assert "not running" not in result.stdout.lower() and result.stderr == ""
    # The lock file is the daemon's group's (0640 here): who holds it cannot be told either.
    assert "cannot tell which process holds it" in result.stdout

    lock_path(db).chmod(0o644)  # a user who may read the lock learns the holder from the kernel
    result = as_nobody(["status", "--config", str(config)])
    assert result.returncode == 4 and f"held by pid {proc.pid} (running)" in result.stdout

    run.chmod(0o755)  # and one who may read the status sees the daemon's
    result = as_nobody(["status", "--config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"daemon: running (pid {proc.pid}, door TQ-A)" in result.stdout


@pytest.mark.parametrize("problem", ["unreadable", "foreign"])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_console_says_a_status_is_unreadable_or_another_units(problem: str, lang: str) -> None:
    from appliance.i18n import text
    from tests.test_console import SIZES, check_frame, screen, shows, snap_of

    for width, height in SIZES:
        lines = screen(snap_of(None, status_problem=problem), lang, width, height)
        check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
        header = lines[1]
        assert text("status_unknown", lang) in header and text("not_running", lang) not in header
        assert shows(lines, text(f"fault_status_{problem}", lang))
        assert not shows(lines, text("fault_daemon", lang))  # it may well be running
