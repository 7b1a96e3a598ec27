"""Read Bluezone IDs from iPhones over GATT, rarely and briefly.

An iPhone with Bluezone does not put its ID in the air: it must be connected to and one
characteristic read (docs/protocols.md §1). Connections hurt Wi-Fi on the Pi's combined radio chip,
so: one connection at a time, at most one every ``min_interval_s``, 10 s at most each, and each
phone (MAC address) read at most once per 15-minute slot. Requests are queued and served by one
background task: the scanning loop never waits for a connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from appliance.protocols.bluezone_keys import SLOT_SECONDS
from appliance.protocols.decoders.bluezone_ios import ID_CHARACTERISTIC_UUID, ID_LENGTH

log = logging.getLogger("checkpoint.ble")

READ_TIMEOUT_S = 10.0  # docs/protocols.md §1.3: give up after 10 s
MIN_INTERVAL_S = 5.0  # between two connections: keeps the radio free for scanning and Wi-Fi
QUEUE_LIMIT = 32  # more iPhones waiting than this and the oldest requests are dropped
CACHE_LIMIT = 4096  # (address, slot) answers remembered


class GattIdReader:
    """Queues iPhone ID reads and hands each ID read to ``on_identified``."""

    def __init__(
        self,
        adapter: str,
        on_identified: Callable[[str, bytes, float], None],
        *,
        min_interval_s: float = MIN_INTERVAL_S,
        timeout_s: float = READ_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        utc_offset: Callable[[], float] = lambda: 0.0,
        devices: Mapping[str, BLEDevice] | None = None,
    ) -> None:
        self.adapter = adapter
        self.on_identified = on_identified
        self.min_interval_s = min_interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        # What to add to ``clock``'s time for UTC: IDs rotate on UTC's quarter-hours, and the
        # daemon's clock is off UTC by the step NTP made after it started (0 for wall time).
        self.utc_offset = utc_offset
        # The scanner's recent BLEDevices: connecting to one needs no new scan.
        self.devices = devices if devices is not None else {}
        self._queue: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._done: OrderedDict[tuple[str, int], bool] = OrderedDict()
        self._wake = asyncio.Event()
        self._inflight: tuple[str, int] | None = None
        self.reads = 0
        self.failures = 0
        self.dropped = 0

    def request(self, address: str, now: float) -> None:
        """Ask for this phone's ID in the current slot (cheap: called on every sighting)."""
        key = (address, self._slot(now))
        if key in self._done or key in self._queue or key == self._inflight:
            return
        if len(self._queue) >= QUEUE_LIMIT:
            self._queue.popitem(last=False)
            self.dropped += 1
        self._queue[key] = None
        self._wake.set()

    async def run(self) -> None:
        """Serve requests one at a time, forever (cancel to stop)."""
        last = 0.0
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = last + self.min_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            key, _ = self._queue.popitem(last=False)
            address, slot = key
            if slot != self._slot(self.clock()):
                continue  # the slot is over: the phone has a new ID, ask again when seen
            last = time.monotonic()
            self._inflight = key
            try:
                raw = await self._read(address)
            except Exception as exc:  # one bad read must never stop the reader for good
                log.error("iPhone ID read failed unexpectedly: %s", type(exc).__name__)
                raw = None
            finally:
                self._inflight = None
            self._done[key] = raw is not None
            while len(self._done) > CACHE_LIMIT:
                self._done.popitem(last=False)
            if raw is None:
                self.failures += 1
                continue
            self.reads += 1
            try:
                self.on_identified(address, raw, self.clock())
            except Exception:
                log.exception("handling an iPhone ID")

    def _slot(self, now: float) -> int:
        """The UTC quarter-hour (docs/protocols.md §1.5) of ``clock``'s time ``now``."""
        return int((now + self.utc_offset()) // SLOT_SECONDS)

    async def _read(self, address: str) -> bytes | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                target: BLEDevice | str = self.devices.get(address) or address
                async with BleakClient(
                    target, timeout=self.timeout_s, bluez={"adapter": self.adapter}
                ) as client:
                    value = await client.read_gatt_char(ID_CHARACTERISTIC_UUID)
        except (TimeoutError, BleakError, OSError, EOFError) as exc:
            log.info("iPhone ID read failed: %s", type(exc).__name__)
            return None
        if len(value) != ID_LENGTH:
            log.info("iPhone ID read returned %d bytes, not %d: ignored", len(value), ID_LENGTH)
            return None
        return bytes(value)
