"""python-dbusmock template: the stock ``bluez5`` mock plus correctly typed LE devices, GATT
objects, advertisement read-back, advertisement monitors and discovery that behaves like
bluetoothd's, so that bleak's and bluezero's real code can be tested over a private D-Bus.

Load it by absolute path (``SpawnedMock.spawn_with_template("/abs/tests/bluez_template.py")``);
``tests/bluez.py`` wraps it in pytest fixtures. Everything the stock template offers
(``AddAdapter``, ``AddDevice``, agents, …) is re-exported unchanged; the additions live on the
main object ``/`` under the ``org.bluez.Mock`` interface:

- ``AddLEAdapter(s name, s address, s alias, a{sv} options) -> o``: options ``monitor`` (b,
  AdvertisementMonitorManager1, default: template parameter ``enable_monitor_api``),
  ``advertising`` (b, LEAdvertisingManager1, default ``enable_advertise_api``), ``powered`` (b).
- ``AddLEDevice(s adapter, s address, s alias, n rssi, a{qay} manufacturer_data, as uuids,
  a{say} service_data) -> o`` and ``UpdateLEDevice(o, n rssi, a{qay}, as, a{say})``: one
  advertisement each (``InterfacesAdded`` / ``PropertiesChanged``).
- ``EmitBurst(o device, u count, b with_data) -> (u sent, d seconds)``, ``RemoveLEDevice(o)``.
- ``AddGattService(o device, s uuid) -> o``, ``AddGattCharacteristic(o service, s uuid, ay value,
  as flags) -> o``, ``SetCharacteristicValue(o, ay)``, ``SetDeviceBehaviour(o device, a{sv})``.
- ``GetConnectCount(o) -> u``, ``GetReadCount(o) -> u``, ``GetMaxConcurrentConnections() -> u``.
- ``GetRegisteredAdvertisements() -> a(oosua{sv})``, ``GetRegisteredMonitors() -> a(oosa{oa{sv}})``.
- ``GetDiscoveryState(o adapter) -> (as sessions, a{sa{sv}} filters)``,
  ``SetDiscovering(o adapter, b)`` (behind the clients' backs).

Discovery follows bluetoothd: sessions per client (InProgress / "No discovery started" errors),
NotReady while powered off, sessions dropped on power-off and when the client leaves the bus; and
while a session lasts, the devices known at StartDiscovery re-advertise (an RSSI
PropertiesChanged) 50, 200 and 500 ms after it, as phones in range would.

Not modelled: discovery filters (UUIDs, RSSI, DuplicateData) and monitor patterns are recorded,
never applied; every advertisement a test injects reaches every scanner on the adapter.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import dbus
import dbus.lowlevel
import dbus.service
import dbusmock.templates.bluez5 as _stock
from dbusmock import OBJECT_MANAGER_IFACE, mockobject

# Re-export the stock template: AddTemplate() picks up every D-Bus method in this module's
# namespace, so the star import is what makes AddAdapter, AddDevice, agents… available.
from dbusmock.templates.bluez5 import *  # noqa: F403
from gi.repository import GLib

BUS_NAME = _stock.BUS_NAME
MAIN_OBJ = _stock.MAIN_OBJ
SYSTEM_BUS = True
IS_OBJECT_MANAGER = True

MOCK_IFACE = _stock.BLUEZ_MOCK_IFACE
ADAPTER_IFACE = _stock.ADAPTER_IFACE
DEVICE_IFACE = _stock.DEVICE_IFACE
ADV_MANAGER_IFACE = _stock.LE_ADVERTISING_MANAGER_IFACE
ADV_IFACE = _stock.LE_ADVERTISEMENT_IFACE
MONITOR_MANAGER_IFACE = _stock.ADVERTISEMENT_MONITOR_MANAGER_IFACE
MONITOR_IFACE = _stock.ADVERTISEMENT_MONITOR_IFACE
GATT_SERVICE_IFACE = "org.bluez.GattService1"
GATT_CHARACTERISTIC_IFACE = "org.bluez.GattCharacteristic1"
PROPERTIES_IFACE = dbus.PROPERTIES_IFACE

MAX_ADVERTISEMENTS = _stock.MAX_ADVERTISEMENT_INSTANCES
BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

# bluetoothd gives a client this long to answer GetAll on its advertisement.
ADVERTISEMENT_READ_TIMEOUT_S = 5.0
# bleak exports its monitor only after RegisterMonitor has returned, so the read-back of the
# monitor objects is retried for a while instead of being done once.
MONITOR_READ_INTERVAL_MS = 20
MONITOR_READ_ATTEMPTS = 100
# GetRegisteredMonitors waits this long at most for monitors still being read back.
MONITOR_WAIT_S = 1.0
# After StartDiscovery, known devices "advertise" (an RSSI PropertiesChanged) at these times
# while a discovery session lasts. More than once and not at once: bleak registers the
# callback of BleakScanner.find_device_by_address() only after StartDiscovery has returned,
# and a single early advertisement can slip past it.
ANNOUNCE_DELAYS_MS = (50, 200, 500)
# EmitBurst cycles the RSSI through this many values (-40 … -89 dBm).
BURST_RSSI_VALUES = 50


@dataclass
class _State:
    """Counters that must survive RemoveLEDevice, so tests can assert on them afterwards."""

    connect_counts: dict[str, int] = field(default_factory=dict)
    read_counts: dict[str, int] = field(default_factory=dict)
    # devices connecting or connected right now, for "one connection at a time" tests
    active: set[str] = field(default_factory=set)
    max_active: int = 0
    registration_serial: int = 0
    # one NameOwnerChanged watch per client, to drop its state when it leaves the bus
    owner_watches: dict[str, Any] = field(default_factory=dict)


_STATE = _State()


def _error(name: str, message: str) -> dbus.exceptions.DBusException:
    return dbus.exceptions.DBusException(message, name=name)


def _uuid128(uuid: str) -> str:
    """BlueZ always shows 128-bit, lower-case UUIDs; accept the 16/32-bit short forms too."""
    uuid = str(uuid).lower()
    if uuid.startswith("0x"):
        uuid = uuid[2:]
    if len(uuid) == 4:
        return f"0000{uuid}{BASE_UUID_TAIL}"
    if len(uuid) == 8:
        return f"{uuid}{BASE_UUID_TAIL}"
    return uuid


def _manufacturer_data(data: Any) -> dbus.Dictionary:
    # Values must be variants holding "ay": the stock AddDevice gets this wrong and bleak then
    # drops the device's first advertisement.
    return dbus.Dictionary(
        {dbus.UInt16(k): dbus.ByteArray(bytes(v)) for k, v in dict(data).items()},
        signature="qv",
    )


def _service_data(data: Any) -> dbus.Dictionary:
    return dbus.Dictionary(
        {dbus.String(_uuid128(k)): dbus.ByteArray(bytes(v)) for k, v in dict(data).items()},
        signature="sv",
    )


def _emit_changed(obj: mockobject.DBusMockObject, interface: str, changed: dict[str, Any]) -> None:
    obj.EmitSignal(
        PROPERTIES_IFACE,
        "PropertiesChanged",
        "sa{sv}as",
        [interface, dbus.Dictionary(changed, signature="sv"), dbus.Array([], signature="s")],
    )


def _emit_added(path: str, interfaces: dict[str, dict[str, Any]]) -> None:
    mockobject.objects[MAIN_OBJ].EmitSignal(
        OBJECT_MANAGER_IFACE,
        "InterfacesAdded",
        "oa{sa{sv}}",
        [dbus.ObjectPath(path), dbus.Dictionary(interfaces, signature="sa{sv}")],
    )


def _emit_removed(path: str, interfaces: list[str]) -> None:
    mockobject.objects[MAIN_OBJ].EmitSignal(
        OBJECT_MANAGER_IFACE,
        "InterfacesRemoved",
        "oas",
        [dbus.ObjectPath(path), dbus.Array(interfaces, signature="s")],
    )


def _get(path: str, kind: type[mockobject.DBusMockObject]) -> Any:
    obj = mockobject.objects.get(str(path))
    if not isinstance(obj, kind):
        raise _error(MOCK_IFACE + ".NoSuchObject", f"no {kind.__name__} at {path}")
    return obj


def _watch_client(connection: dbus.connection.Connection, sender: str) -> None:
    """Forget a client's discovery sessions, advertisements and monitors when it leaves the bus,
    as bluetoothd does."""
    if sender in _STATE.owner_watches:
        return

    def owner_changed(new_owner: str) -> None:
        if new_owner:
            return
        _STATE.owner_watches.pop(sender, None)
        for obj in list(mockobject.objects.values()):
            if isinstance(obj, _Adapter):
                obj.forget_client(sender)

    _STATE.owner_watches[sender] = connection.watch_name_owner(sender, owner_changed)


class _Adapter(mockobject.DBusMockObject):
    """org.bluez.Adapter1 with per-client discovery sessions and ``Powered`` side effects."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: set[str] = set()
        self.filters: dict[str, Any] = {}
        # (sender, path) -> (serial, properties read back from the client)
        self.advertisements: dict[tuple[str, str], tuple[int, Any]] = {}
        # (sender, application path) -> {monitor path: properties}
        self.monitor_apps: dict[tuple[str, str], dict[str, Any]] = {}
        # registrations whose monitors are still being read back
        self.monitor_reads: set[tuple[str, str]] = set()

    @property
    def powered(self) -> bool:
        return bool(self.props[ADAPTER_IFACE]["Powered"])

    def set_discovering(self, value: bool) -> None:
        if bool(self.props[ADAPTER_IFACE]["Discovering"]) != value:
            self.props[ADAPTER_IFACE]["Discovering"] = dbus.Boolean(value)
            _emit_changed(self, ADAPTER_IFACE, {"Discovering": dbus.Boolean(value)})

    def forget_client(self, sender: str) -> None:
        self.sessions.discard(sender)
        self.filters.pop(sender, None)
        for key in [k for k in self.advertisements if k[0] == sender]:
            del self.advertisements[key]
        for key in [k for k in self.monitor_apps if k[0] == sender]:
            del self.monitor_apps[key]
            self.monitor_reads.discard(key)
        self.update_advertising_instances()
        if not self.sessions:
            self.set_discovering(False)

    def update_advertising_instances(self) -> None:
        if ADV_MANAGER_IFACE not in self.props:
            return
        active = len(self.advertisements)
        self.UpdateProperties(
            ADV_MANAGER_IFACE,
            {
                "ActiveInstances": dbus.Byte(active),
                "SupportedInstances": dbus.Byte(MAX_ADVERTISEMENTS - active),
            },
        )

    def _require_powered(self) -> None:
        if not self.powered:
            raise _error("org.bluez.Error.NotReady", "Resource Not Ready")

    def _known_devices(self) -> list[str]:
        return [
            path
            for path, obj in mockobject.objects.items()
            if isinstance(obj, _LEDevice) and path.startswith(self.path + "/")
        ]

    def _announce_devices(self, paths: list[str]) -> bool:
        # Devices in range advertise again when a scan starts; without this, a fresh scanner
        # (BleakClient(address) runs one) would never hear of devices already known. Devices
        # added after StartDiscovery already had their advertisement (InterfacesAdded).
        if not self.sessions:
            return False
        for path in paths:
            obj = mockobject.objects.get(path)
            if isinstance(obj, _LEDevice):
                _emit_changed(obj, DEVICE_IFACE, {"RSSI": obj.props[DEVICE_IFACE]["RSSI"]})
        return False

    @dbus.service.method(
        ADAPTER_IFACE,
        in_signature="",
        out_signature="",
        sender_keyword="sender",
        connection_keyword="connection",
    )
    def StartDiscovery(self, sender: str = "", connection: Any = None) -> None:
        self.log(f"StartDiscovery {self.path} from {sender}")
        self._require_powered()
        if sender in self.sessions:
            raise _error("org.bluez.Error.InProgress", "Operation already in progress")
        self.sessions.add(sender)
        _watch_client(connection, sender)
        self.set_discovering(True)
        known = self._known_devices()
        for delay in ANNOUNCE_DELAYS_MS if known else ():
            GLib.timeout_add(delay, self._announce_devices, known)

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="", sender_keyword="sender")
    def StopDiscovery(self, sender: str = "") -> None:
        self.log(f"StopDiscovery {self.path} from {sender}")
        self._require_powered()
        if sender not in self.sessions:
            raise _error("org.bluez.Error.Failed", "No discovery started")
        self.sessions.discard(sender)
        if not self.sessions:
            self.set_discovering(False)

    @dbus.service.method(
        ADAPTER_IFACE, in_signature="a{sv}", out_signature="", sender_keyword="sender"
    )
    def SetDiscoveryFilter(self, discovery_filter: Any, sender: str = "") -> None:
        self.log(f"SetDiscoveryFilter {self.path} from {sender}: {dict(discovery_filter)}")
        if discovery_filter:
            self.filters[sender] = discovery_filter
        else:
            self.filters.pop(sender, None)

    @dbus.service.method(ADAPTER_IFACE, in_signature="", out_signature="as")
    def GetDiscoveryFilters(self) -> list[str]:
        return ["UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable"]

    @dbus.service.method(ADAPTER_IFACE, in_signature="o", out_signature="")
    def RemoveDevice(self, path: str) -> None:
        _remove_device(str(path))

    @dbus.service.method(PROPERTIES_IFACE, in_signature="ssv", out_signature="")
    def Set(self, interface_name: str, property_name: str, value: Any, *_: Any, **__: Any) -> None:
        super().Set(interface_name, property_name, value)
        if interface_name != ADAPTER_IFACE or property_name != "Powered":
            return
        self.UpdateProperties(ADAPTER_IFACE, {"PowerState": dbus.String("on" if value else "off")})
        if not value:
            # Powering off ends every discovery session, like bluetoothd's adapter_stop().
            self.sessions.clear()
            self.set_discovering(False)


class _AdvertisingAdapter(_Adapter):
    """Adds org.bluez.LEAdvertisingManager1 with bluetoothd's read-back of the advertisement."""

    @dbus.service.method(
        ADV_MANAGER_IFACE,
        in_signature="oa{sv}",
        out_signature="",
        sender_keyword="sender",
        connection_keyword="connection",
        async_callbacks=("reply", "error"),
    )
    def RegisterAdvertisement(
        self,
        path: str,
        options: Any,
        sender: str = "",
        connection: Any = None,
        reply: Any = None,
        error: Any = None,
    ) -> None:
        self.log(f"RegisterAdvertisement {self.path} {path} from {sender}")
        key = (str(sender), str(path))
        if key in self.advertisements:
            error(_error("org.bluez.Error.AlreadyExists", "Already Exists"))
            return
        if len(self.advertisements) >= MAX_ADVERTISEMENTS:
            error(_error("org.bluez.Error.NotPermitted", "Maximum advertisements reached"))
            return

        # bluetoothd reads the advertisement before it replies; a synchronous call back into a
        # client that is itself blocked in RegisterAdvertisement would deadlock, so this is
        # asynchronous and the reply is sent from the callbacks.
        def got_properties(properties: Any) -> None:
            kind = str(properties.get("Type", ""))
            if kind not in ("broadcast", "peripheral"):
                error(_error("org.bluez.Error.Failed", f"Failed to parse advertisement: {kind!r}"))
                return
            _STATE.registration_serial += 1
            self.advertisements[key] = (_STATE.registration_serial, properties)
            _watch_client(connection, key[0])
            self.update_advertising_instances()
            self.log(f"registered advertisement {path}: {dict(properties)}")
            reply()

        def read_failed(exc: Exception) -> None:
            self.log(f"reading advertisement {path} failed: {exc}")
            error(_error("org.bluez.Error.Failed", "Failed to parse advertisement"))

        connection.call_async(
            sender,
            path,
            PROPERTIES_IFACE,
            "GetAll",
            "s",
            (ADV_IFACE,),
            got_properties,
            read_failed,
            timeout=ADVERTISEMENT_READ_TIMEOUT_S,
            byte_arrays=True,
        )

    @dbus.service.method(
        ADV_MANAGER_IFACE, in_signature="o", out_signature="", sender_keyword="sender"
    )
    def UnregisterAdvertisement(self, path: str, sender: str = "") -> None:
        self.log(f"UnregisterAdvertisement {self.path} {path} from {sender}")
        if self.advertisements.pop((str(sender), str(path)), None) is None:
            raise _error("org.bluez.Error.DoesNotExist", "Does Not Exist")
        self.update_advertising_instances()


class _MonitorAdapter(_Adapter):
    """Adds org.bluez.AdvertisementMonitorManager1; records the monitors, does not filter."""

    @dbus.service.method(
        MONITOR_MANAGER_IFACE,
        in_signature="o",
        out_signature="",
        sender_keyword="sender",
        connection_keyword="connection",
    )
    def RegisterMonitor(self, app_path: str, sender: str = "", connection: Any = None) -> None:
        self.log(f"RegisterMonitor {self.path} {app_path} from {sender}")
        key = (str(sender), str(app_path))
        if key in self.monitor_apps:
            raise _error("org.bluez.Error.AlreadyExists", "Already Exists")
        self.monitor_apps[key] = {}
        self.monitor_reads.add(key)
        _watch_client(connection, key[0])
        attempts = [MONITOR_READ_ATTEMPTS]
        GLib.timeout_add(MONITOR_READ_INTERVAL_MS, self._read_monitors, key, connection, attempts)

    def _read_monitors(self, key: tuple[str, str], connection: Any, attempts: list[int]) -> bool:
        """Read the application's monitors as bluetoothd does (GetManagedObjects on the
        application), falling back to the application object itself, which is where bleak
        exports its single monitor."""
        sender, app_path = key
        if key not in self.monitor_apps:
            return False

        def retry() -> None:
            attempts[0] -= 1
            if attempts[0] > 0 and key in self.monitor_apps:
                GLib.timeout_add(
                    MONITOR_READ_INTERVAL_MS, self._read_monitors, key, connection, attempts
                )
            else:
                self.monitor_reads.discard(key)

        def store(monitors: dict[str, Any]) -> None:
            self.monitor_reads.discard(key)
            if key not in self.monitor_apps:
                return
            self.monitor_apps[key] = monitors
            self.log(f"monitors of {app_path}: {monitors}")
            for monitor_path in monitors:
                connection.call_async(
                    sender,
                    monitor_path,
                    MONITOR_IFACE,
                    "Activate",
                    "",
                    (),
                    None,
                    lambda _exc: None,
                    timeout=2.0,
                )

        def got_itself(properties: Any) -> None:
            if properties.get("Patterns") is not None:
                store({app_path: properties})
            else:
                retry()

        def got_objects(objects: Any) -> None:
            monitors = {
                str(path): interfaces[MONITOR_IFACE]
                for path, interfaces in objects.items()
                if MONITOR_IFACE in interfaces
            }
            if monitors:
                store(monitors)
                return
            connection.call_async(
                sender,
                app_path,
                PROPERTIES_IFACE,
                "GetAll",
                "s",
                (MONITOR_IFACE,),
                got_itself,
                lambda _exc: retry(),
                timeout=2.0,
                byte_arrays=True,
            )

        connection.call_async(
            sender,
            app_path,
            OBJECT_MANAGER_IFACE,
            "GetManagedObjects",
            "",
            (),
            got_objects,
            lambda _exc: retry(),
            timeout=2.0,
            byte_arrays=True,
        )
        return False

    @dbus.service.method(
        MONITOR_MANAGER_IFACE, in_signature="o", out_signature="", sender_keyword="sender"
    )
    def UnregisterMonitor(self, app_path: str, sender: str = "") -> None:
        self.log(f"UnregisterMonitor {self.path} {app_path} from {sender}")
        self.monitor_reads.discard((str(sender), str(app_path)))
        if self.monitor_apps.pop((str(sender), str(app_path)), None) is None:
            raise _error("org.bluez.Error.DoesNotExist", "Does Not Exist")


class _FullAdapter(_AdvertisingAdapter, _MonitorAdapter):
    """An adapter with both LE managers, as bluetoothd started with --experimental has."""


@dataclass
class _Behaviour:
    """How a device answers Connect and ReadValue; a delay below zero means never."""

    connect_error: str = ""
    connect_error_message: str = "Software caused connection abort"
    connect_delay: float = 0.0
    read_error: str = ""
    read_error_message: str = "Operation failed"
    read_delay: float = 0.0


def _later(delay: float, action: Any) -> int | None:
    """Run ``action`` now, after ``delay`` seconds, or never (delay < 0); return the source id."""
    if delay < 0:
        return None
    if delay == 0:
        action()
        return None

    def fire() -> bool:
        action()
        return False

    return int(GLib.timeout_add(int(delay * 1000), fire))


class _LEDevice(mockobject.DBusMockObject):
    """org.bluez.Device1 whose Connect resolves services and counts connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.behaviour = _Behaviour()
        self.next_handle = 0x000A
        # (reply, error, GLib source id) of a Connect still in progress
        self.pending_connect: tuple[Any, Any, int | None] | None = None

    @property
    def connected(self) -> bool:
        return bool(self.props[DEVICE_IFACE]["Connected"])

    def _set(self, **values: bool) -> None:
        for name, value in values.items():
            self.props[DEVICE_IFACE][name] = dbus.Boolean(value)
            _emit_changed(self, DEVICE_IFACE, {name: dbus.Boolean(value)})

    def _release(self) -> None:
        _STATE.active.discard(self.path)

    @dbus.service.method(
        DEVICE_IFACE, in_signature="", out_signature="", async_callbacks=("reply", "error")
    )
    def Connect(self, reply: Any = None, error: Any = None) -> None:
        self.log(f"Connect {self.path}")
        if self.connected:
            reply()
            return
        if self.pending_connect is not None:
            error(_error("org.bluez.Error.InProgress", "In Progress"))
            return
        _STATE.active.add(self.path)
        _STATE.max_active = max(_STATE.max_active, len(_STATE.active))
        behaviour = self.behaviour

        def finish() -> None:
            self.pending_connect = None
            if behaviour.connect_error:
                self._release()
                error(_error(behaviour.connect_error, behaviour.connect_error_message))
                return
            _STATE.connect_counts[self.path] = _STATE.connect_counts.get(self.path, 0) + 1
            # bluetoothd reports the link first and the resolved GATT database after it.
            self._set(Connected=True)
            self._set(ServicesResolved=True)
            reply()

        self.pending_connect = (reply, error, None)
        source = _later(behaviour.connect_delay, finish)
        if self.pending_connect is not None:
            self.pending_connect = (reply, error, source)

    @dbus.service.method(DEVICE_IFACE, in_signature="", out_signature="")
    def Disconnect(self) -> None:
        self.log(f"Disconnect {self.path}")
        if self.pending_connect is not None:
            # Disconnect cancels a pending Connect, which then fails.
            _reply, error, source = self.pending_connect
            self.pending_connect = None
            if source is not None:
                GLib.source_remove(source)
            self._release()
            error(_error("org.bluez.Error.Failed", "Operation was cancelled"))
            return
        if not self.connected:
            raise _error("org.bluez.Error.NotConnected", "Not Connected")
        self._set(ServicesResolved=False)
        self._set(Connected=False)
        self._release()


class _Characteristic(mockobject.DBusMockObject):
    """org.bluez.GattCharacteristic1 whose ReadValue returns the stored value."""

    def device(self) -> _LEDevice:
        return _get(str(self.path).rsplit("/", 2)[0], _LEDevice)

    @dbus.service.method(
        GATT_CHARACTERISTIC_IFACE,
        in_signature="a{sv}",
        out_signature="ay",
        async_callbacks=("reply", "error"),
    )
    def ReadValue(self, options: Any, reply: Any = None, error: Any = None) -> None:
        self.log(f"ReadValue {self.path}")
        device = self.device()
        behaviour = device.behaviour

        def finish() -> None:
            if not device.connected:
                error(_error("org.bluez.Error.Failed", "Not connected"))
            elif behaviour.read_error:
                error(_error(behaviour.read_error, behaviour.read_error_message))
            else:
                _STATE.read_counts[device.path] = _STATE.read_counts.get(device.path, 0) + 1
                value = self.props[GATT_CHARACTERISTIC_IFACE]["Value"]
                reply(dbus.ByteArray(bytes(value)))

        _later(behaviour.read_delay, finish)

    @dbus.service.method(GATT_CHARACTERISTIC_IFACE, in_signature="aya{sv}", out_signature="")
    def WriteValue(self, value: Any, options: Any) -> None:
        self.props[GATT_CHARACTERISTIC_IFACE]["Value"] = dbus.ByteArray(bytes(value))

    @dbus.service.method(GATT_CHARACTERISTIC_IFACE, in_signature="", out_signature="")
    def StartNotify(self) -> None:
        self.props[GATT_CHARACTERISTIC_IFACE]["Notifying"] = dbus.Boolean(True)

    @dbus.service.method(GATT_CHARACTERISTIC_IFACE, in_signature="", out_signature="")
    def StopNotify(self) -> None:
        self.props[GATT_CHARACTERISTIC_IFACE]["Notifying"] = dbus.Boolean(False)


def load(mock: mockobject.DBusMockObject, parameters: dict[str, Any]) -> None:
    """Set up /org/bluez exactly as the stock template does; adapters are added by the tests."""
    _stock.load(mock, parameters)


@dbus.service.method(MOCK_IFACE, in_signature="sssa{sv}", out_signature="o")
def AddLEAdapter(self: Any, device_name: str, address: str, alias: str, options: Any) -> str:
    """Add an adapter with a chosen address; ``options`` may turn off the monitor or
    advertising managers (to test fallbacks) or start it powered off."""
    bluez = mockobject.objects["/org/bluez"]
    monitor = bool(options.get("monitor", bluez.enable_monitor_api))
    advertising = bool(options.get("advertising", bluez.enable_advertise_api))
    powered = bool(options.get("powered", True))
    path = f"/org/bluez/{device_name}"
    if path in mockobject.objects:
        raise _error(MOCK_IFACE + ".AdapterExists", f"adapter {device_name} already exists")

    adapter_class = {
        (True, True): _FullAdapter,
        (True, False): _AdvertisingAdapter,
        (False, True): _MonitorAdapter,
        (False, False): _Adapter,
    }[(advertising, monitor)]
    name = alias or "checkpoint"
    properties = {
        "Address": dbus.String(address.upper()),
        "AddressType": dbus.String("public"),
        "Name": dbus.String(name),
        "Alias": dbus.String(name),
        "Class": dbus.UInt32(0),
        "Powered": dbus.Boolean(powered),
        "PowerState": dbus.String("on" if powered else "off"),
        "Discoverable": dbus.Boolean(False),
        "DiscoverableTimeout": dbus.UInt32(180),
        "Pairable": dbus.Boolean(False),
        "PairableTimeout": dbus.UInt32(0),
        "Discovering": dbus.Boolean(False),
        "UUIDs": dbus.Array(
            ["00001800-0000-1000-8000-00805f9b34fb", "00001801-0000-1000-8000-00805f9b34fb"],
            signature="s",
        ),
        "Modalias": dbus.String("usb:v1D6Bp0246d054A"),
        "Roles": dbus.Array(["central", "peripheral"], signature="s"),
    }
    self.AddObject(path, ADAPTER_IFACE, properties, [], mock_class=adapter_class)
    adapter = mockobject.objects[path]
    if advertising:
        adapter.AddProperties(
            ADV_MANAGER_IFACE,
            {
                "ActiveInstances": dbus.Byte(0),
                "SupportedInstances": dbus.Byte(MAX_ADVERTISEMENTS),
                "SupportedIncludes": dbus.Array(["tx-power", "appearance", "local-name"], "s"),
                "SupportedSecondaryChannels": dbus.Array(["1M", "2M", "Coded"], signature="s"),
            },
        )
    if monitor:
        adapter.AddProperties(
            MONITOR_MANAGER_IFACE,
            {
                "SupportedMonitorTypes": dbus.Array(["or_patterns"], signature="s"),
                "SupportedFeatures": dbus.Array([], signature="s"),
            },
        )
    # Announce every interface at once: a client that is already running (bleak after a
    # bluetoothd restart) only learns about the managers from this signal.
    _emit_added(path, adapter.props)
    return path


@dbus.service.method(MOCK_IFACE, in_signature="sssna{qay}asa{say}", out_signature="o")
def AddLEDevice(
    self: Any,
    adapter_device_name: str,
    address: str,
    alias: str,
    rssi: int,
    manufacturer_data: Any,
    service_uuids: Any,
    service_data: Any,
) -> str:
    """Add an LE device as bluetoothd does on its first advertisement (InterfacesAdded with
    correctly typed properties); an empty alias means the device advertises no name."""
    adapter_path = f"/org/bluez/{adapter_device_name}"
    _get(adapter_path, _Adapter)
    address = address.upper()
    path = f"{adapter_path}/dev_{address.replace(':', '_')}"
    if path in mockobject.objects:
        raise _error(MOCK_IFACE + ".DeviceExists", f"device {address} already exists")

    properties: dict[str, Any] = {
        "Address": dbus.String(address),
        "AddressType": dbus.String("random"),
        "Alias": dbus.String(alias or address.replace(":", "-")),
        "Adapter": dbus.ObjectPath(adapter_path),
        "Paired": dbus.Boolean(False),
        "Bonded": dbus.Boolean(False),
        "Trusted": dbus.Boolean(False),
        "Blocked": dbus.Boolean(False),
        "LegacyPairing": dbus.Boolean(False),
        "Connected": dbus.Boolean(False),
        "ServicesResolved": dbus.Boolean(False),
        "UUIDs": dbus.Array([_uuid128(u) for u in service_uuids], signature="s"),
        "RSSI": dbus.Int16(rssi),
    }
    if alias:
        properties["Name"] = dbus.String(alias)
    # bluetoothd leaves these out when the advertisement carries none.
    if manufacturer_data:
        properties["ManufacturerData"] = _manufacturer_data(manufacturer_data)
    if service_data:
        properties["ServiceData"] = _service_data(service_data)

    self.AddObject(path, DEVICE_IFACE, properties, [], mock_class=_LEDevice)
    device = mockobject.objects[path]
    device.AddMethods(
        DEVICE_IFACE,
        [
            ("Pair", "", "", ""),
            ("CancelPairing", "", "", ""),
            ("ConnectProfile", "s", "", ""),
            ("DisconnectProfile", "s", "", ""),
        ],
    )
    _emit_added(path, {DEVICE_IFACE: properties})
    return path


@dbus.service.method(MOCK_IFACE, in_signature="ona{qay}asa{say}", out_signature="")
def UpdateLEDevice(
    self: Any,
    device_path: str,
    rssi: int,
    manufacturer_data: Any,
    service_uuids: Any,
    service_data: Any,
) -> None:
    """One more advertisement: a PropertiesChanged with the new RSSI and, when given (non-empty),
    the data; bluetoothd merges new data into what it has, and so does this."""
    device = _get(device_path, _LEDevice)
    props = device.props[DEVICE_IFACE]
    changed: dict[str, Any] = {"RSSI": dbus.Int16(rssi)}
    if manufacturer_data:
        merged = dict(props.get("ManufacturerData", {}))
        merged.update(_manufacturer_data(manufacturer_data))
        changed["ManufacturerData"] = _manufacturer_data(merged)
    if service_uuids:
        uuids = list(props["UUIDs"])
        uuids += [u for u in map(_uuid128, service_uuids) if u not in uuids]
        changed["UUIDs"] = dbus.Array(uuids, signature="s")
    if service_data:
        merged = dict(props.get("ServiceData", {}))
        merged.update(_service_data(service_data))
        changed["ServiceData"] = _service_data(merged)
    props.update(changed)
    _emit_changed(device, DEVICE_IFACE, changed)


@dbus.service.method(MOCK_IFACE, in_signature="oub", out_signature="ud")
def EmitBurst(self: Any, device_path: str, count: int, with_data: bool) -> tuple[int, float]:
    """Emit ``count`` PropertiesChanged (RSSI varying, plus the ManufacturerData if
    ``with_data``) as fast as this process can; returns (count, seconds spent queueing)."""
    device = _get(device_path, _LEDevice)
    props = device.props[DEVICE_IFACE]
    manufacturer_data = props.get("ManufacturerData")
    start = time.perf_counter()
    # The messages are built by hand, once per RSSI value, and each is sent many times:
    # EmitSignal() type-checks through a throwaway method call and logs every signal, and even
    # building a message per signal caps the mock near 40,000/s, below what bleak can take, so
    # a benchmark would measure the mock. (Signal serials repeat; no receiver relies on them.)
    messages = []
    for i in range(min(count, BURST_RSSI_VALUES)):
        changed: dict[str, Any] = {"RSSI": dbus.Int16(-40 - i)}
        if with_data and manufacturer_data is not None:
            changed["ManufacturerData"] = manufacturer_data
        message = dbus.lowlevel.SignalMessage(device_path, PROPERTIES_IFACE, "PropertiesChanged")
        message.append(DEVICE_IFACE, changed, dbus.Array([], signature="s"), signature="sa{sv}as")
        messages.append(message)
    connections = [connection for connection, _path, _fallback in device.locations]
    for i in range(count):
        message = messages[i % len(messages)]
        for connection in connections:
            connection.send_message(message)
    if count:
        props["RSSI"] = dbus.Int16(-40 - (count - 1) % len(messages))
    elapsed = time.perf_counter() - start
    device.log(f"EmitBurst {device_path}: {count} signals queued in {elapsed:.3f} s")
    return count, elapsed


def _remove_device(device_path: str) -> None:
    device = _get(device_path, _LEDevice)
    if device.pending_connect is not None:
        _reply, error, source = device.pending_connect
        if source is not None:
            GLib.source_remove(source)
        error(_error("org.bluez.Error.Failed", "Device removed"))
    _STATE.active.discard(device_path)
    # children first, as bluetoothd tears down the GATT database before the device
    children = sorted(
        (p for p in mockobject.objects if p.startswith(device_path + "/")), key=len, reverse=True
    )
    for path in [*children, device_path]:
        interfaces = [i for i in mockobject.objects[path].props if i]
        mockobject.objects[MAIN_OBJ].RemoveObject(path)
        _emit_removed(path, interfaces)


@dbus.service.method(MOCK_IFACE, in_signature="o", out_signature="")
def RemoveLEDevice(self: Any, device_path: str) -> None:
    """Forget a device (and its GATT objects), emitting InterfacesRemoved."""
    _remove_device(str(device_path))


@dbus.service.method(MOCK_IFACE, in_signature="os", out_signature="o")
def AddGattService(self: Any, device_path: str, uuid: str) -> str:
    """Add a primary GATT service to a device made by AddLEDevice."""
    device = _get(device_path, _LEDevice)
    handle = device.next_handle
    device.next_handle += 1
    # bleak parses the handle from the last four hex digits of the path
    path = f"{device_path}/service{handle:04x}"
    properties = {
        "UUID": dbus.String(_uuid128(uuid)),
        "Primary": dbus.Boolean(True),
        "Device": dbus.ObjectPath(device_path),
        "Includes": dbus.Array([], signature="o"),
        "Handle": dbus.UInt16(handle),
    }
    self.AddObject(path, GATT_SERVICE_IFACE, properties, [])
    _emit_added(path, {GATT_SERVICE_IFACE: properties})
    return path


@dbus.service.method(MOCK_IFACE, in_signature="osayas", out_signature="o")
def AddGattCharacteristic(self: Any, service_path: str, uuid: str, value: Any, flags: Any) -> str:
    """Add a characteristic whose ReadValue returns ``value`` while the device is connected."""
    _get(service_path, mockobject.DBusMockObject)
    device = _get(str(service_path).rsplit("/", 1)[0], _LEDevice)
    handle = device.next_handle
    device.next_handle += 1
    path = f"{service_path}/char{handle:04x}"
    properties = {
        "UUID": dbus.String(_uuid128(uuid)),
        "Service": dbus.ObjectPath(service_path),
        "Value": dbus.ByteArray(bytes(value)),
        "Notifying": dbus.Boolean(False),
        "Flags": dbus.Array([str(f) for f in flags] or ["read"], signature="s"),
        "Handle": dbus.UInt16(handle),
        "MTU": dbus.UInt16(185),
    }
    self.AddObject(path, GATT_CHARACTERISTIC_IFACE, properties, [], mock_class=_Characteristic)
    _emit_added(path, {GATT_CHARACTERISTIC_IFACE: properties})
    return path


@dbus.service.method(MOCK_IFACE, in_signature="oay", out_signature="")
def SetCharacteristicValue(self: Any, char_path: str, value: Any) -> None:
    """Change what the next ReadValue returns (an iPhone's ID rotates)."""
    characteristic = _get(char_path, _Characteristic)
    characteristic.props[GATT_CHARACTERISTIC_IFACE]["Value"] = dbus.ByteArray(bytes(value))


@dbus.service.method(MOCK_IFACE, in_signature="oa{sv}", out_signature="")
def SetDeviceBehaviour(self: Any, device_path: str, behaviour: Any) -> None:
    """Make Connect/ReadValue fail or stall: keys ConnectError, ConnectErrorMessage,
    ConnectDelay (s, < 0 never replies), ReadError, ReadErrorMessage, ReadDelay."""
    device = _get(device_path, _LEDevice)
    names = {
        "ConnectError": ("connect_error", str),
        "ConnectErrorMessage": ("connect_error_message", str),
        "ConnectDelay": ("connect_delay", float),
        "ReadError": ("read_error", str),
        "ReadErrorMessage": ("read_error_message", str),
        "ReadDelay": ("read_delay", float),
    }
    for key, value in behaviour.items():
        if key not in names:
            raise _error(MOCK_IFACE + ".InvalidArguments", f"unknown behaviour {key}")
        attribute, kind = names[key]
        setattr(device.behaviour, attribute, kind(value))


@dbus.service.method(MOCK_IFACE, in_signature="o", out_signature="u")
def GetConnectCount(self: Any, device_path: str) -> int:
    """Successful connections to this device since the mock started."""
    return _STATE.connect_counts.get(str(device_path), 0)


@dbus.service.method(MOCK_IFACE, in_signature="o", out_signature="u")
def GetReadCount(self: Any, device_path: str) -> int:
    """Successful ReadValue calls on any characteristic of this device."""
    return _STATE.read_counts.get(str(device_path), 0)


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="u")
def GetMaxConcurrentConnections(self: Any) -> int:
    """The most devices that were connecting or connected at the same time."""
    return _STATE.max_active


def _adapters() -> list[_Adapter]:
    return [obj for obj in mockobject.objects.values() if isinstance(obj, _Adapter)]


@dbus.service.method(MOCK_IFACE, in_signature="", out_signature="a(oosua{sv})")
def GetRegisteredAdvertisements(self: Any) -> list[Any]:
    """(adapter, advertisement path, client bus name, serial, properties read back by GetAll)
    for every registered advertisement; the serial grows with each registration."""
    return [
        (adapter.path, path, sender, serial, properties)
        for adapter in _adapters()
        for (sender, path), (serial, properties) in sorted(adapter.advertisements.items())
    ]


@dbus.service.method(
    MOCK_IFACE,
    in_signature="",
    out_signature="a(oosa{oa{sv}})",
    async_callbacks=("reply", "error"),
)
def GetRegisteredMonitors(self: Any, reply: Any = None, error: Any = None) -> None:
    """(adapter, application path, client bus name, {monitor path: properties}) per
    registration. The answer waits (up to MONITOR_WAIT_S) for pending read-backs, so that a
    test that sees a registration also sees its monitors; a caller that blocks the client's
    own event loop meanwhile gets what is known when the wait runs out."""
    deadline = time.monotonic() + MONITOR_WAIT_S

    def answer() -> bool:
        pending = any(adapter.monitor_reads for adapter in _adapters())
        if pending and time.monotonic() < deadline:
            return True  # poll again
        reply(
            [
                (adapter.path, app_path, sender, dbus.Dictionary(monitors, signature="oa{sv}"))
                for adapter in _adapters()
                for (sender, app_path), monitors in sorted(adapter.monitor_apps.items())
            ]
        )
        return False

    if answer():
        GLib.timeout_add(MONITOR_READ_INTERVAL_MS, answer)


@dbus.service.method(MOCK_IFACE, in_signature="o", out_signature="asa{sa{sv}}")
def GetDiscoveryState(self: Any, adapter_path: str) -> tuple[Any, Any]:
    """The clients with a discovery session and the discovery filter each one set."""
    adapter = _get(adapter_path, _Adapter)
    return (
        dbus.Array(sorted(adapter.sessions), signature="s"),
        dbus.Dictionary(adapter.filters, signature="sa{sv}"),
    )


@dbus.service.method(MOCK_IFACE, in_signature="ob", out_signature="")
def SetDiscovering(self: Any, adapter_path: str, value: bool) -> None:
    """Flip Discovering behind the clients' backs (their sessions stay, as in bluetoothd when
    the controller stops scanning on its own)."""
    _get(adapter_path, _Adapter).set_discovering(bool(value))
