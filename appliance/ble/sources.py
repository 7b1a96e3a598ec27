"""Where the daemon's advertisements come from: BlueZ, the simulated lobby, or none.

``open_source`` is the one place that picks the source from the configuration; each source
starts, runs, closes and reports its health the same way, so the daemon never asks which one
it has. The BlueZ path imports bleak and D-Bus only when it is chosen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from appliance.ble.simulated import SimulatedSource
from appliance.config import BleSection
from appliance.models import SensorEvent, Sighting

if TYPE_CHECKING:
    from appliance.ble.gatt import GattIdReader
    from appliance.ble.health import ScannerSupervisor


class AdvertisementSource(Protocol):
    name: str

    async def start(self) -> None:
        """Get ready to hear advertisements (before the daemon says it is ready)."""

    async def run(self) -> int | None:
        """Hear advertisements until cancelled; an exit code when the source gives up."""

    async def close(self) -> None: ...

    def health(self) -> dict[str, Any]:
        """The ``scanner`` part of the status file."""


class Sink(Protocol):
    """What a source feeds: the daemon's pipeline."""

    on_needs_gatt: Callable[[str, float], None] | None

    def on_sighting(self, sighting: Sighting) -> None: ...

    def on_sensor(self, event: SensorEvent) -> None: ...

    def identify(self, protocol: str, address: str, raw_id: bytes, now: float) -> None: ...


def _no_offset() -> float:
    return 0.0


def _same_time(t: float) -> float:
    return t


def _no_error() -> None:
    pass


@dataclass(frozen=True, slots=True)
class Wiring:
    """How a source is tied to the door."""

    sink: Sink
    clock: Callable[[], float]  # the door's time: what sightings are stamped with
    wall_of: Callable[[float], float] = _same_time  # a door time as wall time
    utc_offset: Callable[[], float] = _no_offset  # add to a door time for UTC (Bluezone's slots)
    on_error: Callable[[], None] = _no_error  # an event the sink could not handle


class NoSource:
    """No advertisements at all (`[ble] source = "none"`): a door counted by its sensor only."""

    name = "none"

    async def start(self) -> None:
        pass

    async def run(self) -> int | None:
        await asyncio.Event().wait()  # until cancelled
        return None

    async def close(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"state": "ok", "source": self.name}


class BluezSource:
    """BlueZ's scanner under its supervisor (the healing ladder), and iPhones' GATT reads."""

    name = "bluez"

    def __init__(
        self,
        supervisor: ScannerSupervisor,
        gatt: GattIdReader | None,
        wall_of: Callable[[float], float],
    ) -> None:
        self.supervisor = supervisor
        self.gatt = gatt
        self.wall_of = wall_of

    async def start(self) -> None:
        await self.supervisor.start()

    async def run(self) -> int | None:
        """The supervisor's exit code once it cannot recover (GATT reads run beside it)."""
        reads = asyncio.create_task(self.gatt.run(), name="gatt") if self.gatt else None
        try:
            return await self.supervisor.run()
        finally:
            if reads is not None:
                reads.cancel()
                await asyncio.gather(reads, return_exceptions=True)

    async def close(self) -> None:
        await self.supervisor.close()

    def health(self) -> dict[str, Any]:
        scanner = self.supervisor.scanner.state
        health = self.supervisor.health.as_json()
        return {
            **health,
            "since": self.wall_of(health["since"]),  # the supervisor's clock is the door's
            "source": self.name,
            "mode": scanner.mode,
            "fallback": scanner.fallback_reason,
            "reports": scanner.reports,
            "gatt_reads": self.gatt.reads if self.gatt else None,
            "gatt_failures": self.gatt.failures if self.gatt else None,
        }


def open_bluez(ble: BleSection, wiring: Wiring) -> BluezSource:
    from appliance.ble.health import ScannerSupervisor
    from appliance.ble.scanner import BluezScanner

    sink = wiring.sink
    scanner = BluezScanner(ble.adapter, sink.on_sighting, scanning=ble.scanning, clock=wiring.clock)
    # The supervisor compares its time with the scanner's last report: the same clock.
    supervisor = ScannerSupervisor(scanner, clock=wiring.clock)
    gatt: GattIdReader | None = None
    if ble.gatt_reads:
        from appliance.ble.gatt import GattIdReader

        gatt = GattIdReader(
            ble.adapter,
            lambda address, raw, when: sink.identify("bluezone-ios", address, raw, when),
            min_interval_s=ble.gatt_min_interval_s,
            clock=wiring.clock,
            utc_offset=wiring.utc_offset,
            devices=scanner.devices,
        )
        sink.on_needs_gatt = gatt.request
    return BluezSource(supervisor, gatt, wiring.wall_of)


def open_source(
    ble: BleSection, wiring: Wiring, *, simulate: bool = False, speed: float = 1.0
) -> AdvertisementSource:
    """The source ``[ble] source`` names; the simulated lobby when ``simulate`` says so."""
    if simulate or ble.source == "simulate":
        return SimulatedSource(wiring.sink, clock=wiring.clock, speed=speed,
                               on_error=wiring.on_error)  # fmt: skip
    if ble.source == "bluez":
        return open_bluez(ble, wiring)
    return NoSource()
