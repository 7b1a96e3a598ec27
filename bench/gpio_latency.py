"""Door signal latency: from an advertisement reaching the pipeline to the green LED's pin
changing, on gpiozero's mock pins (the same code path a Pi runs, minus the electrons)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.config import GpioSection
from appliance.core.doorway import DoorTuning, Doorway
from appliance.core.pipeline import Pipeline
from appliance.core.presence import PresenceTracker
from appliance.gpio.signals import DoorSignals
from appliance.models import Sighting
from appliance.protocols import frames
from appliance.protocols.registry import Classifier
from appliance.store import VisitLog
from bench.results import Figure

EVENTS = 1000
# Well inside one Bluezone slot: new IDs near a quarter-hour are held for pairing, which is a
# different (and rarer) path than the one measured here.
START = datetime(2020, 8, 20, 2, 5, tzinfo=UTC).timestamp()
TARGET_P99_MS = 20.0


async def _measure(database: Path) -> list[float]:
    factory = MockFactory(pin_class=MockPWMPin)
    store = VisitLog(database)
    # No sensor: every new app phone is an entry and is greeted at once.
    pipeline = Pipeline(Classifier(), PresenceTracker(lambda s, r, w: r.hex()),
                        Doorway(DoorTuning(sensor=False)), store)  # fmt: skip
    door = DoorSignals(GpioSection(sensor="none", button_pin=None), "Asia/Ho_Chi_Minh",
                       pipeline.on_sensor, lambda: None, pin_factory=factory)  # fmt: skip
    pipeline.on_signal = door.signal
    door.ensure()
    assert door.player is not None
    green = factory.pin(17)
    latencies = []
    t = START
    for n in range(EVENTS):
        data = frames.bluezone_android(n.to_bytes(12, "big"))
        mac = f"4A:00:00:00:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"
        pipeline.on_sighting(Sighting(t, mac, -58, data))
        door.player.close()  # the previous greeting is cut: each event starts from dark
        start = time.perf_counter()
        pipeline.on_sighting(Sighting(t + 0.2, mac, -58, data))  # the second report: entry
        while green.state != 1.0:
            await asyncio.sleep(0)
        latencies.append((time.perf_counter() - start) * 1000)
        t += 0.005
    door.close()
    store.close()
    factory.reset()
    return latencies


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        latencies = asyncio.run(_measure(Path(tmp) / "v.db"))
    latencies.sort()
    median = statistics.median(latencies)
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    note = f"{EVENTS:,} greetings, advertisement into the pipeline → green LED pin on (mock pins)"
    return [
        Figure("signal_latency_median", round(median, 3), "ms", None, "lower", note),
        Figure("signal_latency_p99", round(p99, 3), "ms", TARGET_P99_MS, "lower", note),
    ]
