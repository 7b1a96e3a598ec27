"""BLE scanning on BlueZ through bleak: the one place that turns bleak's data into ``Sighting``.

Active scanning asks BlueZ for duplicate reports (``DuplicateData``), so that every repeated
advertisement and RSSI change reaches the tracker. Passive scanning registers a BlueZ
advertisement monitor with or-patterns for the apps' distinctive bytes; BlueZ only offers the
monitor when bluetoothd runs with experimental features, so without it the scanner falls back
to active scanning and says so.
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakScanner
from bleak.args.bluez import OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from appliance.errors import ScannerError
from appliance.models import Sighting
from appliance.protocols import frames
from appliance.protocols.adstructs import AD_SERVICE_DATA128, short_uuid

log = logging.getLogger("checkpoint.ble")

# What passive scanning asks BlueZ to pass on: the apps' distinctive bytes (docs/protocols.md).
_AD = AdvertisementDataType
PASSIVE_PATTERNS = (
    OrPattern(0, _AD.COMPLETE_LIST_SERVICE_UUID16, b"\x56\x4e"),  # Bluezone service
    OrPattern(0, _AD.INCOMPLETE_LIST_SERVICE_UUID16, b"\x56\x4e"),
    OrPattern(0, _AD.MANUFACTURER_SPECIFIC_DATA, b"\xb5\x22"),  # Bluezone ID
    OrPattern(0, _AD.COMPLETE_LIST_SERVICE_UUID16, b"\x6f\xfd"),  # Exposure Notification
    OrPattern(0, _AD.SERVICE_DATA_UUID16, b"\x6f\xfd"),
    OrPattern(0, _AD.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x01"),  # Apple overflow area
    OrPattern(  # Bluezone on an iPhone in the foreground
        0, _AD.COMPLETE_LIST_SERVICE_UUID128,
        uuidlib.UUID("00004E56-73F5-4BC4-A12F-17D1AD07A667").bytes[::-1],
    ),
)  # fmt: skip

NO_RSSI = -127  # BlueZ reports none for a device it only remembers
DEVICES_REMEMBERED = 512  # recent advertisers kept for GATT reads (memory only)


def _uuid_bytes(text: str) -> bytes | None:
    """A UUID as bleak prints it, as its 16 bytes (big-endian), or None if it is not one."""
    try:
        return uuidlib.UUID(text).bytes
    except ValueError:
        return None


def _uuid_lists(service_uuids: list[str]) -> list[bytes]:
    """The advertised service UUIDs as AD structures: 16-bit ones in one list, 128-bit ones
    15 to a structure (at most 15 fit one)."""
    uuid16: list[int] = []
    uuid128: list[str] = []
    for text in service_uuids:
        value = _uuid_bytes(text)
        if value is None:
            continue
        short = short_uuid(value)
        if short is None:
            uuid128.append(text)
        else:
            uuid16.append(short)
    parts = [frames.uuid16_list(*uuid16)] if uuid16 else []
    for start in range(0, len(uuid128), 15):
        parts.append(frames.uuid128_list(*uuid128[start : start + 15]))
    return parts


def _service_data(service_data: dict[str, bytes]) -> list[bytes]:
    parts: list[bytes] = []
    for text, payload in service_data.items():
        value = _uuid_bytes(text)
        if value is None:
            continue
        short = short_uuid(value)
        if short is not None:
            parts.append(frames.service_data16(short, bytes(payload[:250])))
        else:
            parts.append(frames.ad(AD_SERVICE_DATA128, value[::-1] + bytes(payload[:230])))
    return parts


def advertisement_bytes(adv: AdvertisementData) -> bytes:
    """bleak's parsed advertisement back into AD structures, so that real Bluetooth goes
    through exactly the parser and decoders that captures and the simulator use."""
    parts: list[bytes] = []
    try:
        parts += _uuid_lists(adv.service_uuids)
        for company, payload in adv.manufacturer_data.items():
            parts.append(frames.manufacturer(company, bytes(payload[:250])))
        parts += _service_data(adv.service_data)
        if adv.local_name:
            parts.append(frames.local_name(adv.local_name[:240]))
        if adv.tx_power is not None and -127 <= adv.tx_power <= 127:
            parts.append(frames.tx_power(adv.tx_power))
    except (ValueError, OverflowError):
        log.debug("an advertisement field could not be re-encoded", exc_info=True)
    return b"".join(parts)


@dataclass
class ScannerState:
    """What the status file and `doctor` say about scanning."""

    mode: str = "stopped"  # active | passive | stopped
    fallback_reason: str | None = None
    reports: int = 0
    last_report: float | None = None
    started_at: float | None = None


class BluezScanner:
    """A ``BleakScanner`` on one adapter, handing every report to ``on_sighting``."""

    def __init__(
        self,
        adapter: str,
        on_sighting: Callable[[Sighting], None],
        *,
        scanning: str = "active",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.adapter = adapter
        self.scanning = scanning
        self.state = ScannerState()
        self._on_sighting = on_sighting
        self._clock = clock
        self._scanner: BleakScanner | None = None
        # The last BLEDevice of recent addresses, so a GATT read can connect without scanning
        # again (a second discovery from the same client is refused by BlueZ).
        self.devices: OrderedDict[str, BLEDevice] = OrderedDict()
        self._encoded: dict[str, tuple[tuple[object, ...], bytes]] = {}

    def _callback(self, device: BLEDevice, adv: AdvertisementData) -> None:
        # Called by bleak in the event loop for every report: keep it short and never raise.
        try:
            now = self._clock()
            rssi = adv.rssi if adv.rssi is not None else NO_RSSI
            self.state.reports += 1
            self.state.last_report = now
            address = device.address
            devices = self.devices
            devices[address] = device
            devices.move_to_end(address)
            if len(devices) > DEVICES_REMEMBERED:
                devices.popitem(last=False)
            # Most reports only move the RSSI: re-encode only when the content changed, and
            # hand on the very same bytes, which the pipeline recognises without parsing.
            fields = (adv.manufacturer_data, adv.service_data, adv.service_uuids,
                      adv.local_name, adv.tx_power)  # fmt: skip
            cached = self._encoded.get(address)
            if cached is not None and cached[0] == fields:
                data = cached[1]
            else:
                data = advertisement_bytes(adv)
                if len(self._encoded) >= DEVICES_REMEMBERED:
                    self._encoded.clear()
                self._encoded[address] = (fields, data)
            self._on_sighting(Sighting(now, address, rssi, data))
        except Exception:
            log.exception("error handling an advertisement")

    def _make(self, mode: str) -> BleakScanner:
        bluez: dict[str, Any] = {"adapter": self.adapter}
        if mode == "passive":
            bluez["or_patterns"] = list(PASSIVE_PATTERNS)
        else:
            # BlueZ drops repeated advertisements by default; we want every one (RSSI moves).
            bluez["filters"] = {"DuplicateData": True}
        return BleakScanner(self._callback, scanning_mode=mode, bluez=bluez)  # type: ignore[arg-type]

    async def start(self) -> None:
        mode = self.scanning
        if mode == "passive":
            try:
                self._scanner = self._make("passive")
                await self._scanner.start()
                self._started("passive")
                return
            except BleakError as exc:
                self.state.fallback_reason = (
                    f"passive scanning unavailable ({exc}); scanning actively instead: start "
                    "bluetoothd with --experimental for passive scanning"
                )
                log.warning("%s", self.state.fallback_reason)
                mode = "active"
        try:
            self._scanner = self._make(mode)
            await self._scanner.start()
        except (BleakError, OSError) as exc:
            self._scanner = None
            raise ScannerError(
                f"cannot scan on {self.adapter}: {exc}",
                advice="is bluetoothd running (`systemctl status bluetooth`) and the adapter "
                "present (`bluetoothctl list`)?",
            ) from exc
        self._started(mode)

    def _started(self, mode: str) -> None:
        self.state.mode = mode
        self.state.started_at = self._clock()
        log.info("scanning (%s) on %s", mode, self.adapter)

    async def stop(self) -> None:
        """Stop scanning; safe to call twice, and when BlueZ has already gone."""
        scanner, self._scanner = self._scanner, None
        self.state.mode = "stopped"
        if scanner is None:
            return
        try:
            await scanner.stop()
        except (BleakError, OSError, EOFError) as exc:
            log.info("stopping the scanner: %s", exc)
