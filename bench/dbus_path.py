"""The D-Bus path: BlueZ's PropertiesChanged bursts through bleak into the full pipeline, as a
share of what a bare ``BleakScanner`` with an empty callback takes in the same run.

Uses the test harness's mock bluetoothd (``tests/bluez_template.py``) on a private system bus;
runs the two alternately and reports medians.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bleak import BleakScanner

from appliance.ble.scanner import BluezScanner
from appliance.core.doorway import DoorTuning, Doorway
from appliance.core.pipeline import Pipeline
from appliance.core.presence import PresenceTracker
from appliance.protocols.registry import Classifier
from appliance.store import VisitLog
from bench.results import Figure

BURST = 20_000
ROUNDS = 3
TARGET_SHARE = 0.80
ANDROID = "5A:11:22:33:44:01"
ANDROID_ID = bytes.fromhex("a1a2a3a4a5a6a7a8a9aaabac")


async def _measure(mock: object, start: Callable[[Callable[[], None]], object]) -> float:
    """Reports per second that reach a callback during one burst."""
    received = 0
    last = 0.0

    def count() -> None:
        nonlocal received, last
        received += 1
        last = time.perf_counter()

    scanner = start(count)
    await scanner.start()  # type: ignore[attr-defined]
    try:
        path = mock.add_le_device(ANDROID, rssi=-60, manufacturer_data={0x22B5: ANDROID_ID},  # type: ignore[attr-defined]
                                  service_uuids=["4e56"])  # fmt: skip
        while received == 0:
            await asyncio.sleep(0.01)
        before = received
        began = time.perf_counter()
        await asyncio.to_thread(mock.burst, path, BURST)  # type: ignore[attr-defined]
        while True:
            seen = received
            await asyncio.sleep(0.5)
            if received == seen:
                break
        mock.remove_le_device(path)  # type: ignore[attr-defined]
        return (received - before) / (last - began)
    finally:
        await scanner.stop()  # type: ignore[attr-defined]


def run() -> list[Figure]:
    from dbusmock.testcase import BusType, PrivateDBus

    bus = PrivateDBus(BusType.SYSTEM)
    bus.start()
    try:
        from tests.bluez import BluezMock

        with tempfile.TemporaryDirectory() as tmp:
            mock = BluezMock(bus, Path(tmp) / "mock.log")
            mock.start()
            mock.add_adapter("hci0", "00:11:22:33:44:55")
            store = VisitLog(Path(tmp) / "v.db")
            pipeline = Pipeline(
                Classifier(),
                PresenceTracker(lambda scheme, raw, when: raw.hex()),
                Doorway(DoorTuning(sensor=False)),
                store,
            )

            def bare(count: Callable[[], None]) -> object:
                return BleakScanner(lambda d, a: count(), bluez={"adapter": "hci0"})

            def ours(count: Callable[[], None]) -> object:
                def on_sighting(sighting: object) -> None:
                    pipeline.on_sighting(sighting)  # type: ignore[arg-type]
                    count()

                return BluezScanner("hci0", on_sighting)

            bare_rates, our_rates = [], []
            for _ in range(ROUNDS):
                bare_rates.append(asyncio.run(_measure(mock, bare)))
                our_rates.append(asyncio.run(_measure(mock, ours)))
            store.close()
            mock.close()
    finally:
        bus.stop()
    bare_rate = statistics.median(bare_rates)
    our_rate = statistics.median(our_rates)
    note = f"median of {ROUNDS} bursts of {BURST:,} PropertiesChanged, alternated"
    return [
        Figure("dbus_bare_bleak_rate", round(bare_rate), "reports/s", None, "higher", note),
        Figure("dbus_pipeline_rate", round(our_rate), "reports/s", None, "higher", note),
        Figure("dbus_pipeline_share", round(our_rate / bare_rate, 3), "ratio", TARGET_SHARE,
               "higher", "full pipeline rate / bare BleakScanner rate, same run"),
    ]  # fmt: skip
