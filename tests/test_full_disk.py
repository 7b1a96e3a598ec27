"""A full SD card: the daemon runs degraded instead of dying, holds what it decides in memory
(bounded, counted), shows the fault, and writes everything once there is room again.

The card is a real filesystem: a tmpfs of a few MiB mounted for the test (root only), filled
with a file until the kernel says ENOSPC, and freed by deleting that file.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CARD_BYTES = 8 * 1024 * 1024
SPEED = 120  # the simulated lobby decides a few entries a second of wall time


class Card:
    """A tiny filesystem standing in for the SD card."""

    def __init__(self, mountpoint: Path) -> None:
        self.path = mountpoint
        self.filler = mountpoint / "filler"

    def fill(self) -> None:
        """Write until the kernel refuses: no byte left for anyone."""
        chunk = b"\0" * 65536
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        finally:
            os.close(fd)
        assert os.statvfs(self.path).f_bfree == 0

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def card(tmp_path: Path) -> Iterator[Card]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs for the full card needs root")
    mountpoint = tmp_path / "card"
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={CARD_BYTES},mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused ({done.stderr.strip()}): no real full disk here")
    try:
        yield Card(mountpoint)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def door_config(tmp_path: Path, card: Card, gpio: bool) -> Path:
    """The visit log on the card; the key and the status (on a Pi, /run: RAM) elsewhere."""
    (tmp_path / "province.key").write_bytes(b"k" * 32)
    (tmp_path / "run").mkdir()
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[checkpoint]\nid = "TQ-TEST-01"\nagency = "Sở Thông tin và Truyền thông"\n'
        f'[storage]\ndatabase = "{card.path}/visits.db"\nruntime_dir = "{tmp_path}/run"\n'
        '[privacy]\nkey_file = "province.key"\n[ble]\nsource = "simulate"\n'
        f'[gpio]\nenabled = {"true" if gpio else "false"}\nsensor = "none"\nbutton_pin = 25\n'
        "long_press_s = 0.5\n",
        encoding="utf-8",
    )
    return config


def rows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


async def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` every 0.1 s on the running loop until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.1)
    return found


@pytest.mark.parametrize("fills", ["before the start", "while running"])
def test_a_full_card_degrades_the_daemon_and_nothing_it_held_is_lost(
    tmp_path: Path, card: Card, fills: str
) -> None:
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from appliance.config import load_config
    from appliance.daemon import Daemon, build
    from appliance.store import VisitLog

    db = card.path / "visits.db"
    if fills == "before the start":
        VisitLog(db).close()  # an installed unit's log, then the card filled up
        card.fill()
    config = load_config(door_config(tmp_path, card, gpio=True))
    factory = MockFactory(pin_class=MockPWMPin)
    parts = build(config, simulate=True, speed=SPEED)
    assert parts.door is not None
    parts.door.pin_factory = factory
    daemon = Daemon(parts)
    status_file = parts.status.path
    red, green = factory.pin(config.gpio.red_pin), factory.pin(config.gpio.green_pin)

    def store() -> dict[str, Any]:
        return read_json(status_file).get("health", {}).get("store", {})

    def decided() -> int:
        return sum(parts.pipeline.counters.entries.values())

    async def scenario() -> int:
        running = asyncio.create_task(daemon.run())
        try:
            if fills == "while running":
                await until(lambda: db.exists() and rows(db) >= 3, 30, "entries on the card")
                card.fill()
            held = await until(
                lambda: store().get("state") == "full" and store().get("pending", 0) >= 3
                and store()["pending"], 30, "the status saying the card is full",
            )  # fmt: skip
            status = read_json(status_file)
            assert status["state"] == "running"
            assert status["health"]["disk"]["state"] == "full"
            assert "disk full" in status["health"]["store"]["message"]
            assert status["health"]["store"]["dropped"] == 0
            await until(lambda: store().get("pending", 0) > held, 30, "more entries held")
            # The lights: the fault pattern (slow red blinking) and nothing else.
            door = parts.door
            assert door is not None
            await until(lambda: door.player is not None, 10, "the board")
            red.clear_states()
            green.clear_states()
            await until(lambda: {s.state for s in red.states} >= {0.0, 1.0}, 5, "red blinking")
            assert door.player is not None and door.player.current is not None
            assert door.player.current.name == "fault"
            assert {s.state for s in green.states} <= {0.0}

            # The receptionist's long press: a visitor registered on paper, held as well.
            button = factory.pin(25)
            held_now = store()["pending"]
            button.drive_low()
            await asyncio.sleep(0.9)  # held past long_press_s
            button.drive_high()
            await until(lambda: store().get("pending", 0) > held_now, 5, "the paper visitor")

            before = decided()  # every one of these must reach the card
            card.free()
            await until(lambda: store().get("state") == "ok", 30, "leaving degraded mode")
            assert rows(db) >= before + 1
            assert read_json(status_file)["health"]["disk"]["state"] == "low"  # 8 MiB: not full
            await until(lambda: door.player is not None and not door.player.fault, 10,
                        "the fault light off")  # fmt: skip
        finally:
            daemon.stop()
        return await running

    try:
        assert asyncio.run(scenario()) == 0  # nothing decided was lost
    finally:
        factory.reset()
        Device.pin_factory = None
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT name FROM manual_details").fetchall() == [("(sổ giấy)",)]
    finally:
        conn.close()
    assert rows(db) == decided() + 1  # every decision, and the paper visitor
    assert integrity(db) == "ok"
    assert read_json(status_file)["state"] == "stopped"


def test_decisions_held_in_memory_are_bounded_and_what_overflows_is_counted(
    tmp_path: Path,
) -> None:
    from appliance.core.doorway import Entry
    from appliance.store.files import open_log
    from appliance.store.writer import EntryWriter

    writer = EntryWriter(tmp_path / "visits.db", origin="live", boot_clock=lambda: None,
                         session=None, key_day_of=None, max_pending=3)  # fmt: skip
    for i in range(5):
        writer.record(Entry(f"e{i}", "no_app", 1.7e9 + i, via_sensor=True))
    assert (writer.pending, writer.dropped) == (3, 2)
    writer.db = open_log(tmp_path / "visits.db", readonly=False, check=False)
    assert writer.flush() == 3  # the held ones, oldest first; the newest were dropped
    uuids = [r[0] for r in writer.db.conn.execute("SELECT uuid FROM entries ORDER BY id")]
    assert uuids == ["e0", "e1", "e2"]
    writer.db.conn.close()


def ioerror(code: int) -> sqlite3.OperationalError:
    """An error as SQLite raises it (these carry no errno)."""
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


def test_only_a_filesystem_without_room_makes_an_io_error_a_full_disk(
    tmp_path: Path, card: Card
) -> None:
    from appliance.errors import DiskFull
    from appliance.store.files import explain

    roomy, full = tmp_path / "visits.db", card.path / "visits.db"
    shm = sqlite3.SQLITE_IOERR_SHMSIZE  # what a full disk gives when the -shm must grow
    card.fill()
    assert isinstance(explain(full, ioerror(shm)), DiskFull)
    assert isinstance(explain(full, OSError(errno.ENOSPC, "No space left on device")), DiskFull)
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    sqlite_full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert isinstance(explain(roomy, sqlite_full), DiskFull)
    # A failing card with room, or a read error on a full one, is not "disk full".
    for path, code in ((roomy, shm), (full, sqlite3.SQLITE_IOERR_READ)):
        error = explain(path, ioerror(code))
        assert not isinstance(error, DiskFull)
        assert str(error) == f"database error on {path}: disk I/O error"
    assert "disk full" in str(explain(full, ioerror(shm)))


def test_the_daemon_on_a_full_card_keeps_running_and_says_so(tmp_path: Path, card: Card) -> None:
    """As systemd starts it: a process that stays up (no restart loop), says the disk is full in
    its log, and exits 1 on SIGTERM only because what it held could not be written."""
    import signal
    import sys

    from appliance.store import VisitLog

    db = card.path / "visits.db"
    VisitLog(db).close()
    card.fill()
    config = door_config(tmp_path, card, gpio=False)
    status_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--simulate", "--config", str(config),
         "--speed", str(SPEED)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CHECKPOINT_LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    try:

        def held() -> int:
            for path in status_dir.glob("*.json"):
                store = read_json(path).get("health", {}).get("store", {})
                if store.get("state") == "full":
                    return int(store.get("pending", 0))
            return 0

        deadline = time.monotonic() + 30
        while held() < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no degraded status within 30 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "disk full writing" in err and "degraded mode" in err
    assert "disk I/O error" not in err and "Traceback" not in err
    assert "decided entries could not be written" in err


def test_the_flusher_backs_off_on_a_full_card_and_tells_every_drop(
    tmp_path: Path, card: Card, caplog: pytest.LogCaptureFixture
) -> None:
    from appliance.core.doorway import Entry
    from appliance.daemon.ticker import Flusher
    from appliance.store import VisitLog, WaitForSpace

    db = card.path / "visits.db"
    VisitLog(db).close()
    card.fill()
    visits = VisitLog(db, wait_for_space=WaitForSpace(max_pending=3))
    assert visits.waiting is not None and "disk full" in str(visits.waiting)
    now = [0.0]
    flusher = Flusher(visits, monotonic=lambda: now[0])
    for i in range(4):
        visits.record(Entry(f"e{i}", "no_app", 1.7e9 + i, via_sensor=True))
    # Tried at 0, then 1 s later, then 2 s after that: each failure doubles the wait.
    for at in (0.0, 1.0, 3.0):
        now[0] = at
        flusher.flush()
        assert flusher.disk_full and visits.pending == 3
    assert "1 decisions dropped in all" in caplog.text
    card.free()
    now[0] = 6.9  # room again, but the next try is due at 7 s
    flusher.flush()
    assert flusher.disk_full and visits.pending == 3
    now[0] = 7.0
    flusher.flush()
    assert not flusher.disk_full and flusher.error is None
    assert visits.pending == 0 and visits.waiting is None
    visits.close()
    assert rows(db) == 3 and visits.dropped == 1
