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

from appliance.status import status_file_name
from tests.builders import acknowledge
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


def status_file(tmp_path: Path) -> Path:
    """The status of write_config's database, in runtime_env's directory."""
    return tmp_path / "data" / status_file_name(tmp_path / "data" / "visits.db")


def status_of(tmp_path: Path) -> dict[str, object] | None:
    try:
        return json.loads(status_file(tmp_path).read_text())  # type: ignore[no-any-return]
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
    acknowledge(db, {"synced"}, time.time())
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


# -- the daemon's parts, in-process -----------------------------------------------------------


def door_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str = "none"):  # type: ignore[no-untyped-def]
    """A door with no radio (or the simulated lobby) and no lights, on a real visit log."""
    from appliance.config import load_config

    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[checkpoint]\nid = "TQ-TEST-01"\nagency = "Sở Thông tin và Truyền thông"\n'
        '[storage]\ndatabase = "data/visits.db"\n[privacy]\nkey_file = "data/province.key"\n'
        f'[ble]\nsource = "{source}"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "province.key").write_bytes(b"k" * 32)
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "data"))
    return load_config(config)


@pytest.mark.parametrize(
    ("source", "simulate", "expected"),
    [("none", False, "NoSource"), ("simulate", False, "SimulatedSource"),
     ("none", True, "SimulatedSource"), ("bluez", False, "BluezSource")],
)  # fmt: skip
def test_open_source_picks_the_source_and_imports_bleak_only_for_bluez(
    tmp_path: Path, source: str, simulate: bool, expected: str
) -> None:
    code = (
        "import sys\n"
        "from appliance.ble import Wiring, open_source\n"
        "from appliance.config import BleSection\n"
        "class Sink:\n"
        "    on_needs_gatt = None\n"
        "    def on_sighting(self, s): pass\n"
        "    def on_sensor(self, e): pass\n"
        "    def identify(self, protocol, address, raw, now): pass\n"
        "sink = Sink()\n"
        f"source = open_source(BleSection(source={source!r}), Wiring(sink, lambda: 0.0),"
        f" simulate={simulate})\n"
        "print(type(source).__name__, source.name, 'bleak' in sys.modules,"
        " sink.on_needs_gatt is not None)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    name, source_name, bleak, gatt = proc.stdout.split()
    assert name == expected
    assert source_name == {"NoSource": "none", "SimulatedSource": "simulate"}.get(name, "bluez")
    assert bleak == str(expected == "BluezSource")  # imported only when it is BlueZ
    assert gatt == str(expected == "BluezSource")  # iPhones are read over GATT by default


def test_one_ticker_round_commits_applies_the_inbox_and_writes_the_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance import inbox
    from appliance.daemon import build
    from appliance.daemon.ticker import Ticker
    from appliance.visitors import submit_visitor, validate

    wall = [time.time()]  # the real wall clock, held still (a console request is believable)
    parts = build(door_config(tmp_path, monkeypatch), wall=lambda: wall[0])
    monotonic = [1000.0]
    ticker = Ticker(parts, monotonic=lambda: monotonic[0])
    try:
        db = parts.config.storage.database
        entry_uuid, _request = submit_visitor(db, validate("Trần Thị Mai"))
        inbox.submit(db, "mute", {"minutes": 5})
        ticker.step()
        assert inbox.pending(db) == []
        assert committed(db) == {entry_uuid}
        status = status_of(tmp_path)
        assert status is not None and status["state"] == "running"
        assert status["today"] == {"app": 0, "no_app": 0, "manual": 1}
        assert status["health"]["scanner"] == {"state": "ok", "source": "none"}  # type: ignore[index]
        assert status["health"]["clock"]["awaiting_correction"] is not None  # type: ignore[index]
        # The status's times and the mute's end are the injected wall clock's.
        assert status["started_at"] == status["updated_at"] == wall[0]
        assert status["door"]["muted_until"] == wall[0] + 5 * 60  # type: ignore[index]
        # Within the same second nothing is committed or written again.
        written = status_file(tmp_path).stat().st_mtime_ns
        submit_visitor(db, validate("Lê Văn Nam"))
        ticker.step()
        assert len(inbox.pending(db)) == 1
        assert status_file(tmp_path).stat().st_mtime_ns == written
        monotonic[0] += 1.0
        ticker.step()
        assert inbox.pending(db) == [] and len(committed(db)) == 2
        # The collector's heartbeat repeats the status without the sync part.
        wall[0] += 90.0
        heartbeat = parts.status.heartbeat()
        assert heartbeat["today"]["manual"] == 2 and heartbeat["simulated"] is False
        assert heartbeat["uptime_s"] == 90
        assert "sync" not in heartbeat["health"] and "scanner" in heartbeat["health"]
    finally:
        parts.close()


def test_the_simulated_lobby_feeds_its_sink_and_counts_what_fails(tmp_path: Path) -> None:
    import asyncio

    from appliance.ble.simulated import PacedClock, SimulatedSource
    from appliance.models import SensorEvent, Sighting

    class Sink:
        def __init__(self) -> None:
            self.sightings: list[Sighting] = []
            self.crossings: list[SensorEvent] = []

        def on_sighting(self, sighting: Sighting) -> None:
            self.sightings.append(sighting)
            if len(self.sightings) % 100 == 0:
                raise RuntimeError("a bug in the pipeline")

        def on_sensor(self, event: SensorEvent) -> None:
            self.crossings.append(event)

    sink, errors = Sink(), []
    source = SimulatedSource(sink, clock=PacedClock(speed=1.0).now,
                             on_error=lambda: errors.append(1))  # fmt: skip

    async def scenario() -> None:
        await source.start()
        running = asyncio.create_task(source.run())
        await asyncio.sleep(0.5)  # the lobby's first quarter-hour is replayed at once
        assert source.health() == {"state": "ok", "source": "simulate"}
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await source.close()

    asyncio.run(scenario())
    assert len(sink.sightings) >= 200 and sink.crossings
    assert len(errors) == len(sink.sightings) // 100  # each failure counted, none fatal
    times = [s.time for s in sink.sightings]
    assert times == sorted(times) and times[-1] <= time.time() + 1
    assert source.health()["state"] == "error"  # once stopped, the status says so
