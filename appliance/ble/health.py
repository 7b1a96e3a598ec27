"""Keep the scanner alive for months: notice when BlueZ stops scanning and climb a bounded
ladder of remedies, as Home Assistant's Bluetooth core does.

Checks, every few seconds: is ``org.bluez`` on the bus, is the adapter there (found again by
its address if it came back under another name), is it ``Discovering``? An adapter that keeps
``Discovering`` true on a bus that answers is alive even when the lobby is empty: silence alone
is reported, never treated as a fault. The ladder: restart discovery, then power-cycle the
adapter, then exit with ``SCANNER_FAILED_EXIT`` so that systemd's recovery helper can reset the
radio (restart bluetoothd, power-cycle it through the kernel).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from appliance.ble.scanner import BluezScanner
from appliance.errors import ScannerError

log = logging.getLogger("checkpoint.ble")

BLUEZ = "org.bluez"
ADAPTER_INTERFACE = "org.bluez.Adapter1"
SCANNER_FAILED_EXIT = 75  # EX_TEMPFAIL: the systemd unit's recovery helper acts on it

CHECK_EVERY_S = 3.0  # fast enough to resume within 15 s of bluetoothd coming back
RESTARTS_BEFORE_POWER_CYCLE = 3  # restarting discovery cures most stalls
POWER_CYCLES_BEFORE_EXIT = 2  # then the radio needs more than D-Bus can give it
BLUEZ_GONE_GRACE_S = 60.0  # bluetoothd restarting takes seconds; gone for a minute is a fault
SILENCE_NOTE_S = 300.0  # no report for this long is worth a line in the status, not a fault
CHECK_TIMEOUT_S = 10.0  # a check (D-Bus calls, restarting discovery) never takes longer
HEALTHY_RESET_S = 300.0  # healthy this long, and the ladder starts again from the bottom

ADVICE = {
    "ok": None,
    "bluez-missing": "bluetoothd is not running: `systemctl restart bluetooth`",
    "bluez-unresponsive": "bluetoothd does not answer: `systemctl restart bluetooth`",
    "adapter-missing": "the Bluetooth adapter is gone: check `bluetoothctl list` and the "
    "kernel log (`journalctl -k | grep -i bluetooth`)",
    "not-discovering": "BlueZ stopped scanning; restarting discovery",
    "power-cycling": "the adapter does not scan; power-cycling it",
    "failed": "the radio did not recover; the service restarts it (`journalctl -u checkpoint`)",
}


@dataclass
class Health:
    state: str = "starting"
    since: float = 0.0
    restarts: int = 0
    power_cycles: int = 0
    adapter_path: str | None = None
    adapter_address: str | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "state": "ok" if self.state == "ok" else self.state,
            "since": self.since,
            "restarts": self.restarts,
            "power_cycles": self.power_cycles,
            "adapter": self.adapter_path,
            "advice": ADVICE.get(self.state),
            "note": self.note,
        }


class AdapterProbe:
    """Small direct D-Bus questions to BlueZ (bleak keeps its own connection for scanning)."""

    def __init__(self) -> None:
        self._bus: MessageBus | None = None

    async def _connected(self) -> MessageBus:
        if self._bus is None or not self._bus.connected:
            self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        return self._bus

    async def _call(self, message: Message) -> Any:
        bus = await self._connected()
        reply = await bus.call(message)
        if reply is None or reply.message_type == MessageType.ERROR:
            return None
        return reply.body

    async def bluez_present(self) -> bool:
        body = await self._call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="NameHasOwner", signature="s", body=[BLUEZ],
        ))  # fmt: skip
        return bool(body and body[0])

    async def _managed_objects(self) -> Any:
        return await self._call(Message(
            destination=BLUEZ, path="/", interface="org.freedesktop.DBus.ObjectManager",
            member="GetManagedObjects",
        ))  # fmt: skip

    async def find_adapter(self, name: str, address: str | None) -> tuple[str, str] | None:
        """(object path, address) of the adapter called ``name`` or having ``address``."""
        body = await self._managed_objects()
        if not body:
            return None
        by_address = None
        for path, interfaces in body[0].items():
            adapter = interfaces.get(ADAPTER_INTERFACE)
            if adapter is None:
                continue
            addr = adapter.get("Address")
            addr = addr.value.upper() if isinstance(addr, Variant) else None
            if path.rsplit("/", 1)[-1] == name or (addr and addr == name.upper()):
                return path, addr or ""
            if address and addr == address.upper():
                by_address = (path, addr)
        return by_address

    async def adapter_interfaces(self, path: str) -> dict[str, dict[str, Any]]:
        """The interfaces (and their properties, unwrapped) BlueZ offers on an adapter."""
        body = await self._managed_objects()
        if not body or path not in body[0]:
            return {}
        return {
            name: {k: v.value if isinstance(v, Variant) else v for k, v in props.items()}
            for name, props in body[0][path].items()
        }

    async def get(self, path: str, prop: str) -> Any:
        body = await self._call(Message(
            destination=BLUEZ, path=path, interface="org.freedesktop.DBus.Properties",
            member="Get", signature="ss", body=[ADAPTER_INTERFACE, prop],
        ))  # fmt: skip
        return body[0].value if body else None

    async def set_powered(self, path: str, on: bool) -> bool:
        body = await self._call(Message(
            destination=BLUEZ, path=path, interface="org.freedesktop.DBus.Properties",
            member="Set", signature="ssv", body=[ADAPTER_INTERFACE, "Powered", Variant("b", on)],
        ))  # fmt: skip
        return body is not None

    def close(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None


class ScannerSupervisor:
    """Watches the scanner and BlueZ; heals what it can, exits when it cannot."""

    def __init__(
        self,
        scanner: BluezScanner,
        probe: AdapterProbe | None = None,
        clock: Callable[[], float] = time.time,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self.scanner = scanner
        self.probe = probe or AdapterProbe()
        self.clock = clock
        self.check_every_s = check_every_s
        self.health = Health(since=clock())
        self.exit_code: int | None = None
        self._bluez_gone_since: float | None = None
        self._adapter_gone_since: float | None = None
        self._healthy_since = clock()

    def _set(self, state: str) -> None:
        if state != self.health.state:
            self.health.state = state
            self.health.since = self.clock()
            advice = ADVICE.get(state)
            (log.info if state == "ok" else log.warning)(
                "scanner: %s%s", state, f" ({advice})" if advice else ""
            )

    async def start(self) -> None:
        """Find the adapter and start scanning. Failing here is not fatal: the checks go on and
        the ladder decides, so a unit that boots before its adapter is ready still comes up."""
        try:
            found = await self.probe.find_adapter(self.scanner.adapter, None)
        except OSError as exc:  # no system bus at all
            log.error("cannot reach D-Bus: %s", exc)
            found = None
        if found is None:
            self._set("adapter-missing" if await self._bluez_up() else "bluez-missing")
            return
        self.health.adapter_path, self.health.adapter_address = found
        self.scanner.adapter = found[0].rsplit("/", 1)[-1]
        try:
            await self.scanner.start()
        except ScannerError as exc:
            log.error("%s", exc)
            self._set("not-discovering")
            return
        self._set("ok")

    async def _bluez_up(self) -> bool:
        try:
            return await self.probe.bluez_present()
        except OSError:
            return False

    async def check(self) -> None:
        """One round of checks and, if needed, one rung of the ladder."""
        health = self.health
        now = self.clock()
        if not await self._bluez_up():
            self._bluez_gone_since = self._bluez_gone_since or now
            self._set("bluez-missing")
            if now - self._bluez_gone_since > BLUEZ_GONE_GRACE_S:
                self._fail()
            return
        self._bluez_gone_since = None
        found = await self.probe.find_adapter(self.scanner.adapter, health.adapter_address)
        if found is None:
            self._adapter_gone_since = self._adapter_gone_since or now
            self._set("adapter-missing")
            await self.scanner.stop()
            if now - self._adapter_gone_since > BLUEZ_GONE_GRACE_S:
                self._fail()
            return
        self._adapter_gone_since = None
        if found[0] != health.adapter_path:
            log.warning("adapter is now %s (was %s)", found[0], health.adapter_path)
        health.adapter_path = found[0]
        self.scanner.adapter = found[0].rsplit("/", 1)[-1]
        mode = self.scanner.state.mode
        if mode == "passive":
            # The advertisement monitor scans without a discovery session: Discovering stays
            # false. Alive means the adapter is powered (the monitor goes with bluetoothd).
            alive = bool(await self.probe.get(found[0], "Powered"))
        else:
            alive = bool(await self.probe.get(found[0], "Discovering")) and mode != "stopped"
        if alive:
            if health.state != "ok":
                self._healthy_since = now
            elif now - self._healthy_since >= HEALTHY_RESET_S:
                # Only a sustained recovery clears the ladder: discovery dying again and again
                # must climb it, not restart for ever.
                health.restarts = health.power_cycles = 0
            self._set("ok")
            last = self.scanner.state.last_report
            quiet = now - (last if last is not None else health.since)
            health.note = (
                f"no advertisement for {quiet / 60:.0f} min: an empty lobby (the radio answers)"
                if quiet > SILENCE_NOTE_S
                else None
            )
            return
        await self._climb(found[0])

    async def _climb(self, adapter_path: str) -> None:
        health = self.health
        if health.restarts < RESTARTS_BEFORE_POWER_CYCLE:
            health.restarts += 1
            self._set("not-discovering")
            await self._restart()
            return
        if health.power_cycles < POWER_CYCLES_BEFORE_EXIT:
            health.power_cycles += 1
            health.restarts = 0
            self._set("power-cycling")
            await self.scanner.stop()
            await self.probe.set_powered(adapter_path, False)
            await asyncio.sleep(1.0)
            await self.probe.set_powered(adapter_path, True)
            await self._restart()
            return
        self._fail()

    async def _restart(self) -> None:
        await self.scanner.stop()
        try:
            await self.scanner.start()
        except ScannerError as exc:
            log.warning("%s", exc)

    def _fail(self) -> None:
        self._set("failed")
        self.exit_code = SCANNER_FAILED_EXIT

    async def run(self) -> int:
        """Check until the ladder runs out; returns the exit code the daemon should use."""
        unanswered = 0
        while self.exit_code is None:
            await asyncio.sleep(self.check_every_s)
            try:
                await asyncio.wait_for(self.check(), CHECK_TIMEOUT_S)
                unanswered = 0
            except TimeoutError:
                # bluetoothd holds its name but does not answer: wedged, not gone.
                unanswered += 1
                self._set("bluez-unresponsive")
                if unanswered * (CHECK_TIMEOUT_S + self.check_every_s) > BLUEZ_GONE_GRACE_S:
                    self._fail()
            except Exception:  # a probe failing is itself a sign: try again next round
                log.exception("scanner check failed")
        return self.exit_code

    async def close(self) -> None:
        await self.scanner.stop()
        self.probe.close()
