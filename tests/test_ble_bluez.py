"""Real Bluetooth code against BlueZ's D-Bus interface: our scanner (bleak), the iPhone ID
reader, the self-healing supervisor and the beacon (bluezero), with the mock bluetoothd of
``tests/bluez_template.py`` on a private system bus. Nothing in bleak or bluezero is patched."""

# The fixtures are imported and then requested by name as parameters.
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from appliance.ble.beacon import BeaconKey, CheckpointBeacon, content_at
from appliance.ble.gatt import GattIdReader
from appliance.ble.health import AdapterProbe, ScannerSupervisor
from appliance.ble.scanner import PASSIVE_PATTERNS, BluezScanner
from appliance.core.doorway import DoorTuning, Doorway
from appliance.core.pipeline import Pipeline
from appliance.core.presence import PresenceTracker
from appliance.models import Sighting
from appliance.protocols import frames
from appliance.protocols.registry import Classifier
from appliance.status import read_status, status_file_name
from appliance.store import VisitLog
from tests.bluez import BluezMock, bluez, glib_loop, system_bus, wait_until
from tests.builders import fake_token
from tests.sim import MemorySink

BLUEZONE_UUID = "00004e56-0000-1000-8000-00805f9b34fb"
ANDROID = "5A:11:22:33:44:01"
ANDROID_ID = bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabac")
IPHONE = "6B:11:22:33:44:02"
IPHONE_ID = bytes.fromhex("b1b2b3b4b5b6b7b8b9babbbc")
OVERFLOW = b"\x01\x08" + bytes(15)  # Apple overflow area with Bluezone's bit (byte 0, 0x08)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


async def eventually(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_android_phone_becomes_an_entry_and_rssi_moves_it_in_and_out(
    bluez: BluezMock, tmp_path: Path
) -> None:
    async def scenario() -> None:
        store = VisitLog(tmp_path / "v.db")
        pipeline = Pipeline(Classifier(), PresenceTracker(fake_token),
                            Doorway(DoorTuning(sensor=False)), store)  # fmt: skip
        scanner = BluezScanner("hci0", pipeline.on_sighting)
        await scanner.start()
        try:
            assert scanner.state.mode == "active"
            [session] = bluez.discovery_state().sessions
            assert bluez.discovery_state().filters[session]["DuplicateData"] is True
            path = bluez.add_le_device(ANDROID, rssi=-61, service_uuids=[BLUEZONE_UUID],
                                       manufacturer_data={0x22B5: ANDROID_ID})  # fmt: skip
            await eventually(lambda: scanner.state.reports >= 1)
            bluez.update(path, rssi=-59)
            await eventually(lambda: pipeline.counters.entries["app"] == 1)
            store.flush()
            (row,) = store.recent(5)
            assert (row.kind, row.protocol, row.left_at) == ("app", "bluezone", None)
            assert store.tokens_of(row.id) == ["bluezone:" + ANDROID_ID.hex()]
            for rssi in (-92, -95, -96, -94, -97):  # walks away: out of range
                bluez.update(path, rssi=rssi)
            await eventually(lambda: pipeline.tracker.present == 0)
            store.flush()
            assert store.recent(1)[0].left_at is not None
        finally:
            await scanner.stop()
            store.close()
        assert bluez.discovery_state().sessions == []

    run(scenario)


def test_iphone_id_is_read_once_per_slot(bluez: BluezMock) -> None:
    async def scenario() -> None:
        sink = MemorySink()
        pipeline = Pipeline(Classifier(), PresenceTracker(fake_token),
                            Doorway(DoorTuning(sensor=False)), sink)  # fmt: skip
        scanner = BluezScanner("hci0", pipeline.on_sighting)
        reader = GattIdReader(
            "hci0",
            lambda address, raw, when: pipeline.identify("bluezone-ios", address, raw, when),
            min_interval_s=0.1,
            devices=scanner.devices,
        )
        pipeline.on_needs_gatt = reader.request
        # The phone is there, with its GATT service, before the door unit starts scanning.
        path = bluez.add_le_device(IPHONE, rssi=-60, manufacturer_data={0x004C: OVERFLOW})
        service = bluez.add_gatt_service(path, "00004E56-73F5-4BC4-A12F-17D1AD07A667")
        bluez.add_gatt_characteristic(service, "00004E56-73F5-4BC4-A12F-17D1AD07A689",
                                      IPHONE_ID)  # fmt: skip
        worker = asyncio.create_task(reader.run())
        await scanner.start()
        try:
            for rssi in (-58, -59, -57, -60, -58):
                bluez.update(path, rssi=rssi)
                await asyncio.sleep(0.2)
            await eventually(lambda: reader.reads + reader.failures >= 1, timeout=15)
            assert reader.reads == 1, reader.failures
            (uuid,) = sink.entries
            assert sink.entries[uuid].protocol == "bluezone-ios"
            assert sink.tokens[uuid] == ["bluezone:" + IPHONE_ID.hex()]
            for rssi in (-59, -58, -60):  # more reports in the same slot: no new connection
                bluez.update(path, rssi=rssi)
                await asyncio.sleep(0.3)
            assert bluez.connect_count(path) == 1
            assert bluez.max_concurrent_connections() == 1
        finally:
            worker.cancel()
            await scanner.stop()

    run(scenario)


def test_an_iphone_that_answers_with_the_wrong_length_is_not_believed(bluez: BluezMock) -> None:
    async def scenario() -> None:
        found: list[bytes] = []
        scanner = BluezScanner("hci0", lambda s: None)
        reader = GattIdReader("hci0", lambda a, raw, t: found.append(raw), min_interval_s=0.1,
                              devices=scanner.devices)  # fmt: skip
        path = bluez.add_le_device(IPHONE, rssi=-60, manufacturer_data={0x004C: OVERFLOW})
        service = bluez.add_gatt_service(path, "00004E56-73F5-4BC4-A12F-17D1AD07A667")
        bluez.add_gatt_characteristic(service, "00004E56-73F5-4BC4-A12F-17D1AD07A689",
                                      IPHONE_ID[:11])  # fmt: skip
        worker = asyncio.create_task(reader.run())
        await scanner.start()  # bleak only connects to devices BlueZ knows
        try:
            await eventually(lambda: IPHONE in scanner.devices)
            reader.request(IPHONE, time.time())
            await eventually(lambda: reader.failures == 1, timeout=15)
            assert found == []
        finally:
            worker.cancel()
            await scanner.stop()

    run(scenario)


def test_iphone_ids_are_read_once_per_utc_quarter_hour_on_the_daemons_clock(
    bluez: BluezMock,
) -> None:
    # The daemon's clock reads the wall time of its start plus the boot clock; NTP has since
    # stepped the wall clock by three days and 400 s, so its quarter-hours are not UTC's.
    utc_offset_s = 3 * 86400 + 400.0
    quarter = 1_760_000_400.0  # 2025-10-09 09:00 UTC, when the iPhone's ID rotates
    start = quarter - 60 - utc_offset_s  # the daemon's time at 08:59 UTC
    now = [start]

    async def scenario() -> None:
        read_at: list[float] = []
        scanner = BluezScanner("hci0", lambda s: None)
        reader = GattIdReader("hci0", lambda a, raw, t: read_at.append(t), min_interval_s=0.1,
                              clock=lambda: now[0], utc_offset=lambda: utc_offset_s,
                              devices=scanner.devices)  # fmt: skip
        path = bluez.add_le_device(IPHONE, rssi=-60, manufacturer_data={0x004C: OVERFLOW})
        service = bluez.add_gatt_service(path, "00004E56-73F5-4BC4-A12F-17D1AD07A667")
        bluez.add_gatt_characteristic(service, "00004E56-73F5-4BC4-A12F-17D1AD07A689",
                                      IPHONE_ID)  # fmt: skip
        worker = asyncio.create_task(reader.run())
        await scanner.start()
        try:
            await eventually(lambda: IPHONE in scanner.devices)
            # (seconds after 08:59 UTC, reads by then): 460 s in is the daemon's quarter-hour.
            for after_s, reads in ((0, 1), (50, 1), (70, 2), (500, 2), (970, 3)):
                now[0] = start + after_s
                reader.request(IPHONE, now[0])
                await asyncio.sleep(0.3)
                await eventually(lambda n=reads: reader.reads + reader.failures >= n, timeout=15)
                assert (reader.reads, reader.failures) == (reads, 0), after_s
            assert bluez.connect_count(path) == 3
            assert read_at == [start, start + 70, start + 970]  # the daemon's own times
        finally:
            worker.cancel()
            await scanner.stop()

    run(scenario)


@pytest.mark.parametrize("bluez", [{"monitor": True}], indirect=True)
def test_passive_mode_registers_a_monitor_with_the_apps_patterns(bluez: BluezMock) -> None:
    async def scenario() -> None:
        scanner = BluezScanner("hci0", lambda s: None, scanning="passive")
        await scanner.start()
        try:
            assert scanner.state.mode == "passive" and scanner.state.fallback_reason is None
            # bluetoothd reads the monitor's patterns back once bleak has exported it.
            await eventually(lambda: [m for m in bluez.registered_monitors() if m.monitors], 5)
            (monitor,) = [m for m in bluez.registered_monitors() if m.monitors]
            patterns = set(monitor.patterns)
            assert patterns == {(p[0], int(p[1]), bytes(p[2])) for p in PASSIVE_PATTERNS}
        finally:
            await scanner.stop()

    run(scenario)


@pytest.mark.parametrize("bluez", [{"monitor": False}], indirect=True)
def test_without_the_monitor_interface_passive_falls_back_to_active_and_says_so(
    bluez: BluezMock,
) -> None:
    async def scenario() -> None:
        scanner = BluezScanner("hci0", lambda s: None, scanning="passive")
        await scanner.start()
        try:
            assert scanner.state.mode == "active"
            assert "--experimental" in (scanner.state.fallback_reason or "")
            assert bluez.adapter_properties()["Discovering"] is True
        finally:
            await scanner.stop()

    run(scenario)


def test_discovery_turned_off_behind_our_back_is_restarted(bluez: BluezMock) -> None:
    async def scenario() -> None:
        seen: list[Sighting] = []
        supervisor = ScannerSupervisor(BluezScanner("hci0", seen.append), check_every_s=0.5)
        await supervisor.start()
        task = asyncio.create_task(supervisor.run())
        try:
            assert supervisor.health.state == "ok"
            bluez.set_discovering(False)
            await eventually(lambda: supervisor.health.restarts == 1, timeout=5)
            await eventually(lambda: bluez.adapter_properties()["Discovering"] is True, 5)
            await eventually(lambda: supervisor.health.state == "ok", timeout=5)
            bluez.add_le_device(ANDROID, rssi=-60, manufacturer_data={0x22B5: ANDROID_ID})
            await eventually(lambda: seen, timeout=5)
        finally:
            task.cancel()
            await supervisor.close()

    run(scenario)


def test_scanning_resumes_within_15_s_after_bluetoothd_restarts(bluez: BluezMock) -> None:
    async def scenario() -> None:
        seen: list[Sighting] = []
        supervisor = ScannerSupervisor(BluezScanner("hci0", seen.append), check_every_s=1.0)
        await supervisor.start()
        task = asyncio.create_task(supervisor.run())
        try:
            await asyncio.to_thread(bluez.kill)
            await eventually(lambda: supervisor.health.state == "bluez-missing", timeout=5)
            await asyncio.to_thread(bluez.start)
            restarted = time.monotonic()
            await eventually(lambda: bluez.adapter_properties()["Discovering"] is True, 15)
            await eventually(lambda: supervisor.health.state == "ok", timeout=15)
            bluez.add_le_device(ANDROID, rssi=-60, manufacturer_data={0x22B5: ANDROID_ID})
            await eventually(lambda: seen, timeout=15 - (time.monotonic() - restarted))
        finally:
            task.cancel()
            await supervisor.close()

    run(scenario)


def test_a_dead_radio_climbs_the_ladder_to_the_recovery_exit_code(bluez: BluezMock) -> None:
    async def scenario() -> None:
        supervisor = ScannerSupervisor(BluezScanner("hci0", lambda s: None), check_every_s=0.2)
        await supervisor.start()
        # The adapter refuses to scan: discovery stops again as soon as it starts.
        stop = asyncio.Event()

        async def saboteur() -> None:
            while not stop.is_set():
                if bluez.adapter_properties().get("Discovering"):
                    await asyncio.to_thread(bluez.set_discovering, False)
                await asyncio.sleep(0.05)

        sabotage = asyncio.create_task(saboteur())
        try:
            code = await asyncio.wait_for(supervisor.run(), timeout=30)
            assert code == 75
            assert supervisor.health.power_cycles == 2
        finally:
            stop.set()
            await sabotage
            await supervisor.close()

    run(scenario)


def test_empty_lobby_is_not_a_dead_radio(bluez: BluezMock) -> None:
    async def scenario() -> None:
        now = [time.time()]
        supervisor = ScannerSupervisor(BluezScanner("hci0", lambda s: None), clock=lambda: now[0])
        await supervisor.start()
        try:
            now[0] += 3600  # an hour with no advertisement at all
            await supervisor.check()
            assert supervisor.health.state == "ok" and supervisor.health.restarts == 0
            assert "empty lobby" in (supervisor.health.note or "")
        finally:
            await supervisor.close()

    run(scenario)


def test_a_wall_clock_stepped_by_days_does_not_make_a_busy_lobby_quiet(
    bluez: BluezMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.ble.sources import BluezSource
    from appliance.config import load_config
    from appliance.daemon import build

    true_time = time.time
    stale = {"s": 3 * 86400.0}  # fake-hwclock's wall clock, three days behind until NTP
    monkeypatch.setattr(time, "time", lambda: true_time() - stale["s"])
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    parts = build(load_config(write_bluez_config(tmp_path)))

    async def scenario() -> None:
        assert isinstance(parts.source, BluezSource)
        supervisor = parts.source.supervisor
        await supervisor.start()
        try:
            bluez.add_le_device(ANDROID, rssi=-60, service_uuids=[BLUEZONE_UUID],
                                manufacturer_data={0x22B5: ANDROID_ID})  # fmt: skip
            await eventually(lambda: supervisor.scanner.state.reports >= 1)
            stale["s"] = 0.0  # NTP steps the clock; the phone advertised a moment ago
            await supervisor.check()
            health = parts.source.health()
            assert (health["state"], health["note"]) == ("ok", None)
            assert health["since"] == pytest.approx(true_time(), abs=30)  # a true wall time
        finally:
            await supervisor.close()

    try:
        run(scenario)
    finally:
        parts.close()


def test_beacon_advertises_the_checkpoint_id_and_rotates_at_the_quarter_hour(
    bluez: BluezMock, glib_loop: object
) -> None:
    key = BeaconKey(bytes(range(32)), date(2020, 8, 20))
    now = [datetime(2020, 8, 20, 2, 14, 58, tzinfo=UTC).timestamp()]
    beacon = CheckpointBeacon("hci0", lambda when: content_at(key, when), clock=lambda: now[0])
    try:
        beacon.register()
        (ad,) = wait_until(bluez.registered_advertisements)
        assert ad.properties["ServiceUUIDs"] == [BLUEZONE_UUID]
        first_id = key.id_at(datetime(2020, 8, 20, 2, 14, tzinfo=UTC))
        assert {k: bytes(v) for k, v in ad.properties["ManufacturerData"].items()} == {
            0x22B5: first_id
        }
        assert ad.properties["Type"] == "broadcast"
        beacon.refresh()  # same slot: nothing to do
        assert beacon.registrations == 1
        now[0] += 5  # 02:15:03
        beacon.refresh()
        assert beacon.registrations == 2
        latest = wait_until(
            lambda: [a for a in bluez.registered_advertisements() if a.serial > ad.serial]
        )[-1]
        second_id = bytes(latest.properties["ManufacturerData"][0x22B5])
        assert second_id == key.id_at(datetime(2020, 8, 20, 2, 15, tzinfo=UTC)) != first_id
    finally:
        beacon.close()
    assert wait_until(lambda: bluez.registered_advertisements() == [] or True)


def test_beacon_registers_again_when_bluetoothd_comes_back(
    bluez: BluezMock, glib_loop: object
) -> None:
    key = BeaconKey(bytes(range(32)), date(2020, 8, 20))
    beacon = CheckpointBeacon("hci0", lambda when: content_at(key, when))
    try:
        beacon.register()
        wait_until(bluez.registered_advertisements)
        bluez.restart()  # a new bluetoothd: no advertisement registered
        assert bluez.registered_advertisements() == []
        beacon.on_bluez_owner_changed("org.bluez", "", ":1.99")
        (ad,) = wait_until(bluez.registered_advertisements)
        assert ad.properties["ServiceUUIDs"] == [BLUEZONE_UUID]
        assert beacon.registrations == 2
    finally:
        beacon.close()


def test_adapter_is_found_again_by_address_under_a_new_name(bluez: BluezMock) -> None:
    async def scenario() -> None:
        seen: list[Sighting] = []
        supervisor = ScannerSupervisor(
            BluezScanner("00:11:22:33:44:55", seen.append), check_every_s=0.3
        )
        await supervisor.start()
        assert supervisor.scanner.adapter == "hci0" and supervisor.health.state == "ok"
        task = asyncio.create_task(supervisor.run())
        try:
            await asyncio.to_thread(bluez.remove_adapter, "hci0")
            await eventually(lambda: supervisor.health.state == "adapter-missing", 5)
            await asyncio.to_thread(bluez.add_adapter, "hci1", "00:11:22:33:44:55")
            await eventually(lambda: supervisor.health.state == "ok", 10)
            assert supervisor.scanner.adapter == "hci1"
            assert bluez.adapter_properties("hci1")["Discovering"] is True
            bluez.add_le_device(ANDROID, rssi=-60, manufacturer_data={0x22B5: ANDROID_ID},
                                adapter="hci1")  # fmt: skip
            await eventually(lambda: seen, timeout=5)
        finally:
            task.cancel()
            await supervisor.close()

    run(scenario)


def write_bluez_config(tmp_path: Path, scanning: str = "active") -> Path:
    (tmp_path / "province.key").write_bytes(bytes(range(40, 72)))
    (tmp_path / "province.key").chmod(0o600)  # `checkpoint doctor` fails a readable secret
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[storage]\ndatabase = "visits.db"\n[privacy]\nkey_file = "province.key"\n'
        f'[ble]\nsource = "bluez"\nadapter = "hci0"\nscanning = "{scanning}"\n'
        "[gpio]\nenabled = false\n"
    )
    return config


def test_the_daemon_scans_bluez_and_records_entries(bluez: BluezMock, tmp_path: Path) -> None:
    config = write_bluez_config(tmp_path)
    env = {**os.environ, "RUNTIME_DIRECTORY": str(tmp_path), "CHECKPOINT_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: bluez.adapter_properties()["Discovering"], timeout=15)
        path = bluez.add_le_device(ANDROID, rssi=-60, service_uuids=[BLUEZONE_UUID],
                                   manufacturer_data={0x22B5: ANDROID_ID})  # fmt: skip
        for rssi in (-59, -61, -58):
            time.sleep(0.3)
            bluez.update(path, rssi=rssi)

        def entries() -> list[tuple[str, str]]:
            db = tmp_path / "visits.db"
            if not db.exists():
                return []
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                return conn.execute("SELECT kind, protocol FROM entries").fetchall()
            except sqlite3.OperationalError:
                return []
            finally:
                conn.close()

        assert wait_until(entries, timeout=10) == [("app", "bluezone")]

        def scanner_status() -> dict[str, object] | None:
            status = read_status(tmp_path / status_file_name(tmp_path / "visits.db"))
            scanner = status["health"]["scanner"] if status else None
            return scanner if scanner and scanner.get("reports", 0) >= 4 else None

        scanner = wait_until(scanner_status, timeout=5)  # the status file is rewritten each second
        assert scanner["state"] == "ok" and scanner["mode"] == "active"
        assert scanner["advice"] is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""


@pytest.mark.parametrize("bluez", [{"monitor": False}], indirect=True)
def test_doctor_fails_passive_scanning_without_the_monitor(
    bluez: BluezMock, tmp_path: Path
) -> None:
    from appliance.config import load_config
    from appliance.doctor import run_doctor

    lines: list[str] = []
    code = run_doctor(load_config(write_bluez_config(tmp_path, "passive")), lines.append)
    assert code == 1
    assert any(line.startswith("PASS  adapter: /org/bluez/hci0") for line in lines)
    assert any(line.startswith("FAIL  passive scanning") and "--experimental" in line
               for line in lines)  # fmt: skip
    assert lines[-1].endswith("1 failed")


def test_doctor_passes_a_healthy_unit(bluez: BluezMock, tmp_path: Path) -> None:
    from appliance.config import load_config
    from appliance.doctor import run_doctor

    lines: list[str] = []
    code = run_doctor(load_config(write_bluez_config(tmp_path, "passive")), lines.append)
    assert not [line for line in lines if line.startswith("FAIL")], lines
    assert code == 0
    assert any(line.startswith("PASS  BlueZ") for line in lines)


@pytest.mark.parametrize("bluez", [{"monitor": True}], indirect=True)
def test_passive_scanning_is_healthy_without_a_discovery_session(bluez: BluezMock) -> None:
    async def scenario() -> None:
        scanner = BluezScanner("hci0", lambda s: None, scanning="passive")
        supervisor = ScannerSupervisor(scanner, check_every_s=0.2)
        await supervisor.start()
        try:
            assert scanner.state.mode == "passive"
            assert bluez.adapter_properties()["Discovering"] is False  # the monitor scans
            for _ in range(5):
                await supervisor.check()
            assert supervisor.health.state == "ok" and supervisor.health.restarts == 0
        finally:
            await supervisor.close()

    run(scenario)
