"""Prove the BlueZ test harness: bleak's and bluezero's real code against the mock bluetoothd over
a private D-Bus, with nothing in either library patched."""

# The fixtures are imported and then requested by name as parameters, which pyflakes reads as
# an unused import redefined.
# ruff: noqa: F401, F811

import asyncio
import time
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError
from bluezero import advertisement

from tests.bluez import BluezMock, bluez, glib_loop, system_bus, wait_until

BLUEZONE_UUID = "00004e56-0000-1000-8000-00805f9b34fb"
BLUEZONE_COMPANY = 0x22B5
ANDROID_ADDRESS = "5A:11:22:33:44:01"
ANDROID_ID = bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabac")
IPHONE_ADDRESS = "6B:11:22:33:44:02"
IPHONE_ID = bytes.fromhex("b1b2b3b4b5b6b7b8b9babbbc")
# An iOS app in the background advertises its service in Apple's "overflow area" only.
APPLE_COMPANY = 0x004C
APPLE_OVERFLOW = bytes.fromhex("01" + "00" * 9 + "80" + "00" * 6)
IOS_SERVICE = "00004E56-73F5-4BC4-A12F-17D1AD07A667"
IOS_CHARACTERISTIC = "00004E56-73F5-4BC4-A12F-17D1AD07A689"

Report = tuple[BLEDevice, AdvertisementData]


async def next_report(reports: "asyncio.Queue[Report]", timeout: float = 5.0) -> Report:
    return await asyncio.wait_for(reports.get(), timeout)


def test_active_scanner_sees_android_phone_and_its_rssi_update(bluez: BluezMock) -> None:
    async def scenario() -> None:
        reports: asyncio.Queue[Report] = asyncio.Queue()
        scanner = BleakScanner(
            lambda device, data: reports.put_nowait((device, data)), bluez={"adapter": "hci0"}
        )
        await scanner.start()
        try:
            assert bluez.adapter_properties()["Discovering"] is True
            [bleak_session] = bluez.discovery_state().sessions
            assert bluez.discovery_state().filters[bleak_session]["Transport"] == "le"

            path = bluez.add_le_device(
                ANDROID_ADDRESS,
                rssi=-61,
                manufacturer_data={BLUEZONE_COMPANY: ANDROID_ID},
                service_uuids=[BLUEZONE_UUID],
            )
            device, data = await next_report(reports)
            assert device.address == ANDROID_ADDRESS
            assert data.manufacturer_data == {BLUEZONE_COMPANY: ANDROID_ID}
            assert data.service_uuids == [BLUEZONE_UUID]
            assert data.rssi == -61

            bluez.update(path, rssi=-83)
            device, data = await next_report(reports)
            assert device.address == ANDROID_ADDRESS
            assert data.rssi == -83
            assert data.manufacturer_data == {BLUEZONE_COMPANY: ANDROID_ID}
            assert reports.empty()
        finally:
            await scanner.stop()
        assert bluez.adapter_properties()["Discovering"] is False
        assert bluez.discovery_state().sessions == []

    asyncio.run(scenario())


def test_bleak_client_reads_the_iphone_id_over_gatt(bluez: BluezMock) -> None:
    path = bluez.add_le_device(
        IPHONE_ADDRESS, rssi=-58, manufacturer_data={APPLE_COMPANY: APPLE_OVERFLOW}
    )
    service = bluez.add_gatt_service(path, IOS_SERVICE)
    bluez.add_gatt_characteristic(service, IOS_CHARACTERISTIC, IPHONE_ID)
    assert bluez.connect_count(path) == 0

    async def read_id() -> bytes:
        # By address, as the app knows a sighting: BleakClient scans for it first, which works
        # because the mock re-announces known devices when discovery starts.
        async with BleakClient(IPHONE_ADDRESS, bluez={"adapter": "hci0"}, timeout=5) as client:
            return bytes(await client.read_gatt_char(IOS_CHARACTERISTIC))

    assert asyncio.run(read_id()) == IPHONE_ID
    assert bluez.connect_count(path) == 1
    assert bluez.read_count(path) == 1
    assert bluez.max_concurrent_connections() == 1
    properties = bluez.device_properties(path)
    assert properties["Connected"] is False
    assert properties["ServicesResolved"] is False


def test_connect_and_read_failures_can_be_injected(bluez: BluezMock) -> None:
    path = bluez.add_le_device(IPHONE_ADDRESS, manufacturer_data={APPLE_COMPANY: APPLE_OVERFLOW})
    service = bluez.add_gatt_service(path, IOS_SERVICE)
    bluez.add_gatt_characteristic(service, IOS_CHARACTERISTIC, IPHONE_ID)

    async def read_id(timeout: float) -> bytes:
        async with BleakClient(
            IPHONE_ADDRESS, bluez={"adapter": "hci0"}, timeout=timeout
        ) as client:
            return bytes(await client.read_gatt_char(IOS_CHARACTERISTIC))

    bluez.set_device_behaviour(path, connect_error="org.bluez.Error.Failed")
    with pytest.raises(BleakDBusError, match=r"org\.bluez\.Error\.Failed"):
        asyncio.run(read_id(5))

    # A Connect that never answers: bleak gives up and its Disconnect cancels the attempt.
    bluez.set_device_behaviour(path, connect_error="", connect_delay=-1)
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(read_id(1))
    assert bluez.connect_count(path) == 0

    bluez.set_device_behaviour(path, connect_delay=0, read_error="org.bluez.Error.NotPermitted")
    with pytest.raises(BleakDBusError, match="NotPermitted"):
        asyncio.run(read_id(5))
    assert (bluez.connect_count(path), bluez.read_count(path)) == (1, 0)
    assert bluez.device_properties(path)["Connected"] is False


def test_bluezero_advertisement_is_read_back_by_the_mock(bluez: BluezMock, glib_loop: Any) -> None:
    beacon = advertisement.Advertisement(1, "broadcast")
    try:
        beacon.service_UUIDs = ["4E56"]
        beacon.manufacturer_data(BLUEZONE_COMPANY, list(ANDROID_ID))
        manager = advertisement.AdvertisingManager(bluez.adapter_address)
        manager.register_advertisement(beacon, {})

        [registered] = wait_until(bluez.registered_advertisements)
        assert registered.adapter == bluez.adapter_path
        assert registered.path == beacon.path
        assert registered.properties["Type"] == "broadcast"
        assert registered.properties["ServiceUUIDs"] == ["4E56"]
        assert registered.properties["ManufacturerData"] == {BLUEZONE_COMPANY: ANDROID_ID}
        manager_properties = bluez.adapter_properties(interface="org.bluez.LEAdvertisingManager1")
        assert manager_properties["ActiveInstances"] == 1

        manager.unregister_advertisement(beacon)
        assert bluez.registered_advertisements() == []
    finally:
        # bluezero always uses the same object path; free it for the next test.
        beacon.remove_from_connection()


def test_burst_of_properties_changed_reaches_a_bleak_scanner(
    bluez: BluezMock, capsys: pytest.CaptureFixture[str]
) -> None:
    count = 20_000

    async def scenario() -> tuple[int, float, float]:
        received = 0
        last = 0.0

        def on_report(_device: BLEDevice, _data: AdvertisementData) -> None:
            nonlocal received, last
            received += 1
            last = time.perf_counter()

        scanner = BleakScanner(on_report, bluez={"adapter": "hci0"})
        await scanner.start()
        try:
            path = bluez.add_le_device(ANDROID_ADDRESS, manufacturer_data={0x22B5: ANDROID_ID})
            while received == 0:
                await asyncio.sleep(0.01)
            before = received
            start = time.perf_counter()
            # In a thread, so that bleak's loop reads the bus while the mock is sending.
            burst = await asyncio.to_thread(bluez.burst, path, count)
            assert burst.sent == count
            # Wait for the stragglers until everything is in or nothing arrives for a second.
            deadline = time.monotonic() + 30
            while received - before < count and time.monotonic() < deadline:
                seen = received
                await asyncio.sleep(1.0)
                if received == seen:
                    break
            return received - before, last - start, burst.seconds
        finally:
            await scanner.stop()

    got, seconds, queued = asyncio.run(scenario())
    with capsys.disabled():
        print(
            f"\nD-Bus burst: {got}/{count} PropertiesChanged reached BleakScanner"
            f" in {seconds:.2f} s = {got / seconds:,.0f}/s (the mock queued them in {queued:.2f} s)"
        )
    assert got >= 0.9 * count


def test_passive_scanner_registers_a_monitor_with_its_patterns(bluez: BluezMock) -> None:
    pattern = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\x56\x4e")

    async def scenario() -> None:
        reports: asyncio.Queue[Report] = asyncio.Queue()
        scanner = BleakScanner(
            lambda device, data: reports.put_nowait((device, data)),
            scanning_mode="passive",
            bluez={"adapter": "hci0", "or_patterns": [pattern]},
        )
        await scanner.start()
        try:
            [monitor] = await asyncio.to_thread(
                wait_until, lambda: [m for m in bluez.registered_monitors() if m.monitors]
            )
            assert monitor.adapter == bluez.adapter_path
            assert monitor.patterns == [(0, 0x16, b"\x56\x4e")]
            bluez.add_le_device(ANDROID_ADDRESS, service_data={"4e56": ANDROID_ID})
            _device, data = await next_report(reports)
            assert data.service_data == {BLUEZONE_UUID: ANDROID_ID}
        finally:
            await scanner.stop()
        assert bluez.registered_monitors() == []

    asyncio.run(scenario())


@pytest.mark.parametrize("bluez", [{"monitor": False}], indirect=True)
def test_adapter_without_monitor_interface_refuses_passive_scanning(bluez: BluezMock) -> None:
    interfaces = bluez.managed_objects()[bluez.adapter_path]
    assert "org.bluez.LEAdvertisingManager1" in interfaces
    assert "org.bluez.AdvertisementMonitorManager1" not in interfaces
    pattern = OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, b"\x56\x4e")

    async def scenario() -> None:
        scanner = BleakScanner(
            scanning_mode="passive", bluez={"adapter": "hci0", "or_patterns": [pattern]}
        )
        with pytest.raises(BleakError, match="passive scanning"):
            await scanner.start()

    asyncio.run(scenario())


def test_restart_drops_sessions_and_a_new_scanner_works(bluez: BluezMock) -> None:
    async def scenario() -> None:
        reports: asyncio.Queue[Report] = asyncio.Queue()
        first = BleakScanner(bluez={"adapter": "hci0"})
        await first.start()
        assert bluez.discovery_state().sessions

        old_pid = bluez.pid
        await asyncio.to_thread(bluez.restart)
        assert bluez.pid != old_pid
        assert bluez.discovery_state().sessions == []
        assert bluez.adapter_properties()["Discovering"] is False
        # bluetoothd no longer knows the session: stopping it fails, as on a real restart.
        with pytest.raises(BleakError, match="No discovery started"):
            await first.stop()

        second = BleakScanner(
            lambda device, data: reports.put_nowait((device, data)), bluez={"adapter": "hci0"}
        )
        await second.start()
        try:
            bluez.add_le_device(ANDROID_ADDRESS, manufacturer_data={0x22B5: ANDROID_ID})
            device, _data = await next_report(reports)
            assert device.address == ANDROID_ADDRESS
        finally:
            await second.stop()

    asyncio.run(scenario())


def test_discovering_flipped_behind_the_back_and_power_cycle(bluez: BluezMock) -> None:
    async def scenario() -> None:
        scanner = BleakScanner(bluez={"adapter": "hci0"})
        await scanner.start()
        bluez.set_discovering(False)
        assert bluez.adapter_properties()["Discovering"] is False
        # the session survives, so the usual stop/start cure works
        await scanner.stop()
        await scanner.start()
        assert bluez.adapter_properties()["Discovering"] is True

        bluez.set_powered(False)
        assert bluez.adapter_properties()["Discovering"] is False
        assert bluez.discovery_state().sessions == []
        await scanner.stop()  # NotReady, which bleak takes as "stopped"
        with pytest.raises(BleakError, match="NotReady"):
            await scanner.start()
        bluez.set_powered(True)
        await scanner.start()
        assert bluez.adapter_properties()["Discovering"] is True
        await scanner.stop()

    asyncio.run(scenario())
