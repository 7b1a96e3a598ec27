"""Pytest fixtures that run our BlueZ mock (``tests/bluez_template.py``) on a private system D-Bus,
so that bleak's and bluezero's real code can be tested without a radio.

Import the fixtures into a test module (``from tests.bluez import bluez, glib_loop, system_bus``):

- ``system_bus`` (session): a private system-type dbus-daemon; ``DBUS_SYSTEM_BUS_ADDRESS``
  points at it before anything connects.
- ``glib_loop`` (session): a GLib main loop in a daemon thread, which bluezero needs.
- ``bluez`` (function): a fresh mock bluetoothd with adapter ``hci0``, as a :class:`BluezMock`.
  Parametrize it indirectly to change the adapter, e.g.
  ``@pytest.mark.parametrize("bluez", [{"monitor": False}], indirect=True)`` for a bluetoothd
  without the advertisement monitor interface (``monitor``, ``advertising``, ``powered``,
  ``address`` are accepted).

The helper's methods are blocking dbus-python calls; inside an asyncio test, wrap the long ones
(``burst``) in ``asyncio.to_thread`` so bleak's loop keeps reading the bus meanwhile.
"""

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import dbus
import dbus.bus
import dbus.mainloop
import dbus.mainloop.glib
import dbus.service
import dbusmock.mockobject
import pytest
from dbusmock.testcase import BusType, PrivateDBus, SpawnedMock
from gi.repository import GLib

# Importing dbusmock replaces dbus-python's method lookup for the whole process with one that
# expects every exported object to be a mock; bluezero's Advertisement then fails with "object
# has no attribute 'methods'". The mock runs in its own process, so the original is right here.
dbus.service._method_lookup = dbusmock.mockobject.orig_method_lookup

TEMPLATE = Path(__file__).resolve().with_name("bluez_template.py")
BLUEZ_SERVICE = "org.bluez"
MOCK_IFACE = "org.bluez.Mock"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"
ADAPTER_IFACE = "org.bluez.Adapter1"
DEVICE_IFACE = "org.bluez.Device1"
DEFAULT_ADAPTER = "hci0"
DEFAULT_ADAPTER_ADDRESS = "00:11:22:33:44:55"
CALL_TIMEOUT_S = 10.0

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy and return that, or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


def plain(value: Any) -> Any:
    """Turn dbus-python values into plain Python ones (bytes for byte arrays) for assertions."""
    if isinstance(value, dbus.Boolean):
        return bool(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, dbus.Array) and value.signature == "y":
        return bytes(int(b) for b in value)
    if isinstance(value, dbus.Dictionary | dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, dbus.Struct | tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


@dataclass(frozen=True)
class AdapterSpec:
    """What ``add_adapter`` was asked for, so that ``restart`` can bring the same adapter back."""

    name: str
    address: str
    alias: str = ""
    monitor: bool | None = None  # None: the template's default (on)
    advertising: bool | None = None
    powered: bool = True

    @property
    def path(self) -> str:
        return f"/org/bluez/{self.name}"


@dataclass(frozen=True)
class RegisteredAdvertisement:
    """An advertisement as bluetoothd saw it: the properties it read back with GetAll."""

    adapter: str
    path: str
    sender: str
    serial: int  # grows with every registration, to spot a re-registration
    properties: dict[str, Any]


@dataclass(frozen=True)
class RegisteredMonitor:
    """An advertisement monitor application and the monitors read back from it."""

    adapter: str
    app_path: str
    sender: str
    monitors: dict[str, dict[str, Any]]

    @property
    def patterns(self) -> list[tuple[int, int, bytes]]:
        """Every (start position, AD type, content) or-pattern of every monitor."""
        return [
            (int(start), int(ad_type), bytes(content))
            for monitor in self.monitors.values()
            for start, ad_type, content in monitor.get("Patterns", [])
        ]


@dataclass(frozen=True)
class DiscoveryState:
    """Which clients hold a discovery session on an adapter, and their discovery filters."""

    sessions: list[str]
    filters: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class BurstResult:
    """What ``burst`` asked the mock to send and how long the mock took to queue it."""

    sent: int
    seconds: float


class BluezMock:
    """A mock bluetoothd in its own process, with Python methods for the template's helpers."""

    def __init__(
        self, bus: PrivateDBus, log_path: Path, parameters: Mapping[str, Any] | None = None
    ) -> None:
        self.bus_address = bus.address
        self.log_path = log_path
        self.parameters = dict(parameters or {})
        self.adapters: dict[str, AdapterSpec] = {}
        self._server: SpawnedMock | None = None
        # A connection of our own: calls go to the well-known name, so they reach the new
        # process after a restart without rebuilding proxies. It has no main loop: closing a
        # connection that the GLib thread dispatches corrupts the heap, and blocking calls
        # need none.
        self._connection = dbus.bus.BusConnection(
            self.bus_address, mainloop=dbus.mainloop.NULL_MAIN_LOOP
        )

    # -- process ---------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the mock process and add the adapters known so far (none at first)."""
        assert self._server is None, "mock already running"
        # The mock logs every call; a pipe would fill up and block it, a file never does.
        # spawn_with_template opens throwaway connections that are closed whenever they are
        # garbage-collected; attached to the GLib loop (the default once bluezero is imported)
        # that races with the loop's thread, so they get no main loop either.
        default_loop = dbus.get_default_main_loop()
        dbus.set_default_main_loop(dbus.mainloop.NULL_MAIN_LOOP)
        try:
            with self.log_path.open("ab") as log:
                self._server = SpawnedMock.spawn_with_template(
                    str(TEMPLATE),
                    self.parameters,
                    BusType.SYSTEM,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        finally:
            if default_loop is not None:
                dbus.set_default_main_loop(default_loop)
        # spawn_with_template loads the template here too, which imports dbusmock again.
        dbus.service._method_lookup = dbusmock.mockobject.orig_method_lookup
        for spec in self.adapters.values():
            self._add_adapter(spec)

    @property
    def alive(self) -> bool:
        return self._server is not None and self._server.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._server.process.pid if self._server else None

    def kill(self) -> None:
        """Kill bluetoothd abruptly (SIGKILL): its bus name vanishes, nothing is cleaned up."""
        if self._server is None:
            return
        process = self._server.process
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)
        self._server = None
        wait_until(lambda: not self._connection.name_has_owner(BLUEZ_SERVICE), timeout=5)

    def restart(self) -> None:
        """Simulate bluetoothd restarting: a new process with the same adapters, no devices,
        no registrations and no discovery sessions."""
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        self._connection.close()

    # -- plumbing --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        signature: str = "",
        *args: Any,
        path: str = "/",
        interface: str = MOCK_IFACE,
        timeout: float = CALL_TIMEOUT_S,
    ) -> Any:
        return self._connection.call_blocking(
            BLUEZ_SERVICE, path, interface, method, signature, args, timeout, byte_arrays=True
        )

    @staticmethod
    def _adapter_path(adapter: str) -> str:
        return adapter if adapter.startswith("/") else f"/org/bluez/{adapter}"

    @staticmethod
    def _bytes_dict(data: Mapping[Any, bytes] | None, key_signature: str) -> dbus.Dictionary:
        return dbus.Dictionary(
            {k: dbus.ByteArray(bytes(v)) for k, v in (data or {}).items()},
            signature=key_signature + "ay",
        )

    # -- adapters --------------------------------------------------------------------------

    @property
    def adapter_name(self) -> str:
        return next(iter(self.adapters), DEFAULT_ADAPTER)

    @property
    def adapter_path(self) -> str:
        return self._adapter_path(self.adapter_name)

    @property
    def adapter_address(self) -> str:
        return self.adapters[self.adapter_name].address

    def _add_adapter(self, spec: AdapterSpec) -> str:
        options: dict[str, Any] = {"powered": dbus.Boolean(spec.powered)}
        if spec.monitor is not None:
            options["monitor"] = dbus.Boolean(spec.monitor)
        if spec.advertising is not None:
            options["advertising"] = dbus.Boolean(spec.advertising)
        return str(
            self._call(
                "AddLEAdapter",
                "sssa{sv}",
                spec.name,
                spec.address,
                spec.alias,
                dbus.Dictionary(options, signature="sv"),
            )
        )

    def add_adapter(
        self,
        name: str,
        address: str,
        *,
        alias: str = "",
        monitor: bool | None = None,
        advertising: bool | None = None,
        powered: bool = True,
    ) -> str:
        """Add an adapter (``monitor=False``: no AdvertisementMonitorManager1, as bluetoothd
        without --experimental) and return its object path; ``restart`` re-adds it."""
        spec = AdapterSpec(name, address.upper(), alias, monitor, advertising, powered)
        path = self._add_adapter(spec)
        self.adapters[name] = spec
        return path

    def remove_adapter(self, name: str = DEFAULT_ADAPTER) -> None:
        """Unplug an adapter (and its devices); ``restart`` no longer brings it back."""
        self._call("RemoveAdapterWithDevices", "s", name)
        self.adapters.pop(name, None)

    def adapter_properties(
        self, adapter: str = DEFAULT_ADAPTER, interface: str = ADAPTER_IFACE
    ) -> dict[str, Any]:
        """The adapter's properties on ``interface`` (e.g. org.bluez.LEAdvertisingManager1)."""
        return plain(
            self._call(
                "GetAll",
                "s",
                interface,
                path=self._adapter_path(adapter),
                interface=dbus.PROPERTIES_IFACE,
            )
        )

    def managed_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What a client sees at startup: {object path: {interface: properties}}."""
        return plain(self._call("GetManagedObjects", path="/", interface=OBJECT_MANAGER_IFACE))

    def set_powered(self, value: bool, adapter: str = DEFAULT_ADAPTER) -> None:
        """Set ``Powered`` as a client would (powering off ends all discovery sessions)."""
        self._call(
            "Set",
            "ssv",
            ADAPTER_IFACE,
            "Powered",
            dbus.Boolean(value),
            path=self._adapter_path(adapter),
            interface=dbus.PROPERTIES_IFACE,
        )

    def set_discovering(self, value: bool, adapter: str = DEFAULT_ADAPTER) -> None:
        """Flip ``Discovering`` behind the clients' backs (their sessions stay)."""
        self._call("SetDiscovering", "ob", self._adapter_path(adapter), value)

    def discovery_state(self, adapter: str = DEFAULT_ADAPTER) -> DiscoveryState:
        sessions, filters = self._call("GetDiscoveryState", "o", self._adapter_path(adapter))
        return DiscoveryState(plain(sessions), plain(filters))

    # -- devices ---------------------------------------------------------------------------

    def add_le_device(
        self,
        address: str,
        *,
        alias: str = "",
        rssi: int = -60,
        manufacturer_data: Mapping[int, bytes] | None = None,
        service_uuids: Iterable[str] = (),
        service_data: Mapping[str, bytes] | None = None,
        adapter: str = DEFAULT_ADAPTER,
    ) -> str:
        """A device's first advertisement (InterfacesAdded); returns the device's object path.
        UUIDs may be short ("4e56"); BlueZ shows them as 128-bit lower case."""
        return str(
            self._call(
                "AddLEDevice",
                "sssna{qay}asa{say}",
                adapter,
                address,
                alias,
                rssi,
                self._bytes_dict(manufacturer_data, "q"),
                dbus.Array(list(service_uuids), signature="s"),
                self._bytes_dict(service_data, "s"),
            )
        )

    def update(
        self,
        device_path: str,
        *,
        rssi: int,
        manufacturer_data: Mapping[int, bytes] | None = None,
        service_uuids: Iterable[str] = (),
        service_data: Mapping[str, bytes] | None = None,
    ) -> None:
        """Another advertisement (PropertiesChanged): new RSSI, data merged in when given."""
        self._call(
            "UpdateLEDevice",
            "ona{qay}asa{say}",
            device_path,
            rssi,
            self._bytes_dict(manufacturer_data, "q"),
            dbus.Array(list(service_uuids), signature="s"),
            self._bytes_dict(service_data, "s"),
        )

    def burst(self, device_path: str, count: int, *, with_data: bool = False) -> BurstResult:
        """Have the mock emit ``count`` PropertiesChanged (RSSI varying) as fast as it can."""
        sent, seconds = self._call(
            "EmitBurst", "oub", device_path, count, with_data, timeout=max(60.0, count / 1000)
        )
        return BurstResult(int(sent), float(seconds))

    def remove_le_device(self, device_path: str) -> None:
        """The device is forgotten (InterfacesRemoved), GATT objects included."""
        self._call("RemoveLEDevice", "o", device_path)

    def device_properties(self, device_path: str) -> dict[str, Any]:
        return plain(
            self._call(
                "GetAll", "s", DEVICE_IFACE, path=device_path, interface=dbus.PROPERTIES_IFACE
            )
        )

    # -- GATT ------------------------------------------------------------------------------

    def add_gatt_service(self, device_path: str, uuid: str) -> str:
        return str(self._call("AddGattService", "os", device_path, uuid))

    def add_gatt_characteristic(
        self, service_path: str, uuid: str, value: bytes, flags: Iterable[str] = ("read",)
    ) -> str:
        return str(
            self._call(
                "AddGattCharacteristic",
                "osayas",
                service_path,
                uuid,
                dbus.ByteArray(bytes(value)),
                dbus.Array(list(flags), signature="s"),
            )
        )

    def set_characteristic_value(self, char_path: str, value: bytes) -> None:
        self._call("SetCharacteristicValue", "oay", char_path, dbus.ByteArray(bytes(value)))

    def set_device_behaviour(
        self,
        device_path: str,
        *,
        connect_error: str | None = None,
        connect_error_message: str | None = None,
        connect_delay: float | None = None,
        read_error: str | None = None,
        read_error_message: str | None = None,
        read_delay: float | None = None,
    ) -> None:
        """Make Connect / ReadValue fail (a D-Bus error name such as "org.bluez.Error.Failed")
        or answer late (seconds; below zero never answers, to test timeouts)."""
        given = {
            "ConnectError": connect_error,
            "ConnectErrorMessage": connect_error_message,
            "ConnectDelay": connect_delay,
            "ReadError": read_error,
            "ReadErrorMessage": read_error_message,
            "ReadDelay": read_delay,
        }
        behaviour = {
            key: dbus.Double(value) if isinstance(value, float | int) else dbus.String(value)
            for key, value in given.items()
            if value is not None
        }
        self._call(
            "SetDeviceBehaviour", "oa{sv}", device_path, dbus.Dictionary(behaviour, signature="sv")
        )

    def connect_count(self, device_path: str) -> int:
        """Successful connections to the device since this mock process started."""
        return int(self._call("GetConnectCount", "o", device_path))

    def read_count(self, device_path: str) -> int:
        """Successful characteristic reads on the device since this mock process started."""
        return int(self._call("GetReadCount", "o", device_path))

    def max_concurrent_connections(self) -> int:
        return int(self._call("GetMaxConcurrentConnections"))

    # -- registrations ---------------------------------------------------------------------

    def registered_advertisements(self) -> list[RegisteredAdvertisement]:
        return [
            RegisteredAdvertisement(str(adapter), str(path), str(sender), int(serial), plain(props))
            for adapter, path, sender, serial, props in self._call("GetRegisteredAdvertisements")
        ]

    def registered_monitors(self) -> list[RegisteredMonitor]:
        """Monitor registrations, with the monitors read back from the client. The read-back
        needs the client's event loop: from an asyncio test, call this through
        ``asyncio.to_thread`` (the mock then waits for it, up to 1 s) or poll for
        ``m.monitors``."""
        return [
            RegisteredMonitor(str(adapter), str(app_path), str(sender), plain(monitors))
            for adapter, app_path, sender, monitors in self._call("GetRegisteredMonitors")
        ]


class _Shared:
    """The one private bus and GLib thread of this test process, shared by reference count.

    Every test module that imports the fixtures gets its own copy of each session fixture from
    pytest (fixtures belong to the module they appear in), but dbus-python's ``SystemBus()`` is
    a process-wide singleton that stays on the first bus it met, so there must be one bus only.
    """

    bus: PrivateDBus | None = None
    bus_users = 0
    previous_address: str | None = None
    loop: GLib.MainLoop | None = None
    loop_thread: threading.Thread | None = None
    loop_users = 0


@pytest.fixture(scope="session")
def system_bus() -> Iterator[PrivateDBus]:
    """A private system bus for the whole session; ``DBUS_SYSTEM_BUS_ADDRESS`` points at it."""
    if _Shared.bus is None:
        _Shared.previous_address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        bus = PrivateDBus(BusType.SYSTEM)
        bus.start()  # sets DBUS_SYSTEM_BUS_ADDRESS
        _Shared.bus = bus
    _Shared.bus_users += 1
    try:
        yield _Shared.bus
    finally:
        _Shared.bus_users -= 1
        if _Shared.bus_users == 0:
            _Shared.bus.stop()
            _Shared.bus = None
            if _Shared.previous_address is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = _Shared.previous_address


@pytest.fixture(scope="session")
def glib_loop(system_bus: PrivateDBus) -> Iterator[GLib.MainLoop]:
    """A GLib main loop in a daemon thread: bluezero's exported objects and async replies only
    work while one runs, and bleak's asyncio loop keeps the main thread."""
    if _Shared.loop is None:
        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        # libdbus would _exit() the whole test run when the private bus goes away under the
        # shared SystemBus() connection that bluezero uses.
        dbus.SystemBus().set_exit_on_disconnect(False)
        loop = GLib.MainLoop()
        thread = threading.Thread(target=loop.run, name="glib-main-loop", daemon=True)
        thread.start()
        wait_until(loop.is_running)
        _Shared.loop, _Shared.loop_thread = loop, thread
    _Shared.loop_users += 1
    try:
        yield _Shared.loop
    finally:
        _Shared.loop_users -= 1
        if _Shared.loop_users == 0 and _Shared.loop_thread is not None:
            _Shared.loop.quit()
            _Shared.loop_thread.join(timeout=5)
            _Shared.loop = _Shared.loop_thread = None


@pytest.fixture
def bluez(
    request: pytest.FixtureRequest, system_bus: PrivateDBus, tmp_path: Path
) -> Iterator[BluezMock]:
    """A fresh mock bluetoothd with adapter hci0 (00:11:22:33:44:55); killed after the test."""
    options = dict(getattr(request, "param", None) or {})
    mock = BluezMock(system_bus, tmp_path / "bluez-mock.log")
    try:
        mock.start()
        mock.add_adapter(
            DEFAULT_ADAPTER,
            options.pop("address", DEFAULT_ADAPTER_ADDRESS),
            monitor=options.pop("monitor", None),
            advertising=options.pop("advertising", None),
            powered=options.pop("powered", True),
        )
        assert not options, f"unknown bluez fixture options: {options}"
        yield mock
    finally:
        mock.close()
