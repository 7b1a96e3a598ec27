"""The daemon as a real process: simulated lobby, status file, clean and violent stops."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_checkpoint

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[checkpoint]\nid = "TQ-TEST-01"\nagency = "Sở Thông tin và Truyền thông"\n'
        '[storage]\ndatabase = "data/visits.db"\n[privacy]\nkey_file = "data/province.key"\n'
        '[ble]\nsource = "simulate"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    return config


def runtime_env(config: Path) -> dict[str, str]:
    """Where systemd would point the daemon (RuntimeDirectory=): here, beside the database."""
    return {"RUNTIME_DIRECTORY": str(config.parent / "data")}


def start(config: Path, speed: float) -> subprocess.Popen[str]:
    env = {**os.environ, "CHECKPOINT_LOG_LEVEL": "WARNING", **runtime_env(config)}
    return subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--simulate", "--config", str(config),
         "--speed", str(speed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def status_of(tmp_path: Path) -> dict[str, object] | None:
    try:
        return json.loads((tmp_path / "data" / "status.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def committed(db: Path) -> set[str]:
    if not db.exists():
        return set()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT uuid FROM entries")}
    except sqlite3.OperationalError:  # schema not created yet
        return set()
    finally:
        conn.close()


def wait_for(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[str]]]]:
    procs: list[subprocess.Popen[str]] = []
    yield tmp_path, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_flushes_everything_and_marks_the_status_stopped(daemon) -> None:  # type: ignore[no-untyped-def]
    tmp_path, procs = daemon
    config = write_config(tmp_path)
    proc = start(config, speed=60)
    procs.append(proc)
    db = tmp_path / "data" / "visits.db"
    wait_for(lambda: len(committed(db)) >= 5, timeout=60)
    status = status_of(tmp_path)
    assert status is not None and status["state"] == "running"
    assert status["checkpoint"]["agency"] == "Sở Thông tin và Truyền thông"  # type: ignore[index]
    assert status["health"]["scanner"]["state"] == "ok"  # type: ignore[index]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
    final = status_of(tmp_path)
    assert final is not None and final["state"] == "stopped"
    decided = sum(final["counters"]["entries"].values())  # type: ignore[index]
    assert len(committed(db)) == decided  # nothing decided was lost at shutdown
    report = run_checkpoint(["status", "--config", str(config)], env=runtime_env(config))
    assert report.returncode == 3 and "NOT RUNNING" in report.stdout


def test_entries_are_committed_within_two_seconds_of_being_decided(daemon) -> None:  # type: ignore[no-untyped-def]
    tmp_path, procs = daemon
    config = write_config(tmp_path)
    proc = start(config, speed=40)
    procs.append(proc)
    db = tmp_path / "data" / "visits.db"
    wait_for(db.exists, timeout=30)
    seen: dict[str, float] = {}
    delays: list[float] = []
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and len(delays) < 15:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT uuid, created_at FROM entries").fetchall()
        except sqlite3.OperationalError:
            rows = []
        conn.close()
        now = time.time()
        for uuid, created in rows:
            if uuid not in seen:
                seen[uuid] = now
                delays.append(now - created)
        time.sleep(0.05)
    assert len(delays) >= 5
    assert max(delays) <= 2.0, sorted(delays)[-3:]


def test_status_command_while_running(daemon) -> None:  # type: ignore[no-untyped-def]
    tmp_path, procs = daemon
    config = write_config(tmp_path)
    procs.append(start(config, speed=30))
    wait_for(lambda: (s := status_of(tmp_path)) is not None and s.get("state") == "running", 30)
    report = run_checkpoint(["status", "--config", str(config)], env=runtime_env(config))
    assert report.returncode == 0, report.stdout + report.stderr
    assert "daemon: running" in report.stdout
    as_json = json.loads(
        run_checkpoint(
            ["status", "--json", "--config", str(config)], env=runtime_env(config)
        ).stdout
    )
    assert as_json["running"] is True and "today" in as_json
    # The console renders what the live daemon writes (as `make demo` shows it).
    screen = run_checkpoint(["console", "--once", "--config", str(config)], env=runtime_env(config))
    assert screen.returncode == 0, screen.stderr
    assert "đang chạy" in screen.stdout and "Lượt vào gần đây" in screen.stdout


def test_sigkill_under_heavy_traffic_never_loses_a_committed_entry(daemon) -> None:  # type: ignore[no-untyped-def]
    tmp_path, procs = daemon
    config = write_config(tmp_path)
    db = tmp_path / "data" / "visits.db"
    rng = random.Random(20)
    survived: set[str] = set()
    for _round in range(20):
        proc = start(config, speed=400)
        procs.append(proc)
        time.sleep(rng.uniform(1.0, 3.0))
        before = committed(db)  # what a reader saw committed just before the kill
        proc.kill()
        proc.wait(timeout=10)
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        after = {row[0] for row in conn.execute("SELECT uuid FROM entries")}
        conn.close()
        assert before <= after
        assert survived <= after
        survived = after
    assert len(survived) > 50  # the traffic really was heavy


def test_daemon_applies_retention_at_start_and_closes_stale_stays(daemon) -> None:  # type: ignore[no-untyped-def]
    from appliance.core.doorway import Entry
    from appliance.store import VisitLog

    tmp_path, procs = daemon
    config = write_config(tmp_path)
    db = tmp_path / "data" / "visits.db"
    log = VisitLog(db)
    old = time.time() - 30 * 86400
    log.record(Entry("unsynced", "no_app", old, via_sensor=True))
    log.record(Entry("synced", "no_app", old, via_sensor=True))
    log.record(Entry("open", "app", time.time() - 3600, "bluezone", (("ab" * 16, 0.0),)))
    log.add_manual("Lê Văn Cũ", when=old)
    log.flush()
    log.db.execute("UPDATE entries SET synced_at = ? WHERE uuid = 'synced'", (time.time(),))
    log.db.conn.commit()
    log.close()
    proc = start(config, speed=1)
    procs.append(proc)
    wait_for(lambda: "synced" not in committed(db), timeout=20)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM manual_details").fetchone()[0] == 0
    left = dict(conn.execute("SELECT uuid, left_at FROM entries"))
    conn.close()
    assert "unsynced" in left  # never dropped before the collector has it
    assert left["open"] is not None  # the stay a crash left open was closed
