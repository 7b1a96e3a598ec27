"""The checkpoint's own beacon (bluezero): phones with the app record the door in their contact
history, and the province can recognise it.

It advertises in Android Bluezone's format (service 0x4E56, company 0x22B5 with a 12-byte ID)
with an ID derived exactly as the app derives its own, from a base key made at enrollment,
changing at every UTC quarter-hour; or, by configuration, a plain iBeacon. BlueZ reads an
advertisement's properties when it is registered, so a new ID means registering again; so does
bluetoothd restarting. Run as its own process (``checkpoint beacon``) so that a beacon failure
never stops scanning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.protocols import bluezone_keys, frames
from appliance.protocols.apple import APPLE_COMPANY_ID

log = logging.getLogger("checkpoint.beacon")

BLUEZONE_SERVICE_UUID = "00004e56-0000-1000-8000-00805f9b34fb"
BLUEZONE_COMPANY_ID = 0x22B5
ADVERT_ID = 7  # bluezero's object path /ukBaz/bluezero/advertisement0007
REFRESH_S = 5  # how often the slot is checked: the ID changes within seconds of :00/:15/…


@dataclass(frozen=True)
class BeaconKey:
    """The checkpoint's own Bluezone base key and the UTC day it was made."""

    base_key: bytes
    base_day: date

    def id_at(self, when: datetime) -> bytes:
        return bluezone_keys.id_at(self.base_key, self.base_day, when)


def create_beacon_key(path: Path, today: date | None = None) -> BeaconKey:
    """Make a new base key (mode 0600), as enrollment does; refuses to overwrite one."""
    key = BeaconKey(os.urandom(32), today or datetime.now(UTC).date())
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"base_key": key.base_key.hex(), "base_day": key.base_day.isoformat()}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"beacon key {path} already exists; not replacing it") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return key


def load_beacon_key(path: Path) -> BeaconKey:
    try:
        data = json.loads(path.read_text())
        key = BeaconKey(bytes.fromhex(data["base_key"]), date.fromisoformat(data["base_day"]))
    except FileNotFoundError:
        raise ConfigError(
            f"beacon key not found: {path}",
            advice="it is made at enrollment; `checkpoint beacon --new-key` makes one by hand",
        ) from None
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        # RecursionError: json recurses once per level of nesting (a file of 100,000 "[").
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ConfigError(f"beacon key {path} is unreadable: {reason}") from None
    if len(key.base_key) != bluezone_keys.KEY_LENGTH:
        raise ConfigError(
            f"beacon key {path} holds a {len(key.base_key)}-byte base key; it must be exactly"
            f" {bluezone_keys.KEY_LENGTH}",
            advice="move it aside and make one with `checkpoint beacon --new-key`",
        )
    return key


@dataclass(frozen=True)
class BeaconContent:
    """What goes on the air: service UUIDs and manufacturer data."""

    service_uuids: tuple[str, ...]
    manufacturer: tuple[int, bytes]


def content_at(
    key: BeaconKey | None,
    when: datetime,
    fmt: str = "bluezone",
    ibeacon: tuple[str, int, int, int] = ("", 0, 0, -59),
) -> BeaconContent:
    """The advertisement at ``when``: pure, so the rotation is tested with time injected."""
    if fmt == "ibeacon":
        return BeaconContent((), (APPLE_COMPANY_ID, frames.ibeacon_payload(*ibeacon)))
    if key is None:
        raise ConfigError("the Bluezone-format beacon needs its key")
    return BeaconContent((BLUEZONE_SERVICE_UUID,), (BLUEZONE_COMPANY_ID, key.id_at(when)))


class CheckpointBeacon:
    """Registers the advertisement with BlueZ and keeps it current (bluezero, GLib loop)."""

    def __init__(
        self,
        adapter: str,
        content: Callable[[datetime], BeaconContent],
        clock: Callable[[], float] = time.time,
        on_state: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.adapter = adapter
        self.content = content
        self.clock = clock
        self.on_state = on_state  # told after every refresh (the console shows it)
        self.last_error: str | None = None
        self.registered: BeaconContent | None = None
        self.registrations = 0
        self._advert: Any = None
        self._manager: Any = None

    def _adapter_address(self) -> str:
        from bluezero import adapter as bz_adapter

        for found in bz_adapter.Adapter.available():
            if self.adapter in (found.address, found.path.rsplit("/", 1)[-1]):
                return str(found.address)
        raise ConfigError(f"no Bluetooth adapter {self.adapter!r} to advertise on")

    def register(self) -> None:
        """(Re-)register the advertisement with the current content."""
        from bluezero import advertisement

        current = self.content(datetime.fromtimestamp(self.clock(), UTC))
        self.registered = None  # until this registration has gone through
        self.unregister()
        if self._advert is None:
            self._advert = advertisement.Advertisement(ADVERT_ID, "broadcast")
        if current.service_uuids:
            self._advert.service_UUIDs = list(current.service_uuids)
        company, payload = current.manufacturer
        self._advert.manufacturer_data(company, list(payload))
        self._manager = advertisement.AdvertisingManager(self._adapter_address())
        # Our own reply handlers (bluezero's only print): a refusal must lead to a retry.
        self._manager.advert_mngr_methods.RegisterAdvertisement(
            self._advert.path, {},
            reply_handler=lambda: log.info("beacon accepted by BlueZ"),
            error_handler=self._registration_failed,
        )  # fmt: skip
        self.registered = current
        self.registrations += 1
        log.info("beacon registered (registration %d)", self.registrations)

    def unregister(self) -> None:
        if self._manager is not None and self._advert is not None:
            try:
                self._manager.unregister_advertisement(self._advert)
            except Exception as exc:  # BlueZ may already have forgotten it (restart)
                log.info("unregistering the beacon: %s", exc)
        self._manager = None

    def refresh(self) -> bool:
        """Register again if the content changed (a new quarter-hour) or the last try failed;
        a GLib timer callback, so it never raises (PyGObject would drop the timer)."""
        try:
            current = self.content(datetime.fromtimestamp(self.clock(), UTC))
            if current != self.registered:
                self.register()
            self.last_error = None
        except Exception as exc:
            self.last_error = str(exc)
            log.exception("beacon registration failed; retrying")
        self._report()
        return True  # keep the GLib timer

    def _report(self) -> None:
        if self.on_state is None:
            return
        try:
            self.on_state(
                {
                    "state": (
                        "ok" if self.registered is not None and not self.last_error else "error"
                    ),
                    "message": self.last_error,
                    "registrations": self.registrations,
                    "updated_at": time.time(),
                }
            )
        except Exception as exc:  # a full disk must not stop the beacon
            log.warning("cannot report the beacon's state: %s", exc)

    def _registration_failed(self, error: Exception) -> None:
        log.error("BlueZ refused the beacon: %s; retrying", error)
        self.registered = None  # the next refresh registers again
        self.last_error = str(error)
        self._report()

    def on_bluez_owner_changed(self, name: str, old: str, new: str) -> None:
        """bluetoothd came back (a new owner of org.bluez): it forgot every advertisement."""
        if name == "org.bluez" and new:
            log.info("bluetoothd is back: registering the beacon again")
            self._manager = None  # the old registration died with the old bluetoothd
            self.registered = None
            self.refresh()

    def close(self) -> None:
        """Unregister and drop the exported object; safe to call twice."""
        self.unregister()
        if self._advert is not None:
            try:
                self._advert.remove_from_connection()
            except Exception as exc:
                log.info("removing the beacon object: %s", exc)
            self._advert = None
        self.registered = None

    def run(self) -> int:
        """Advertise until SIGTERM/SIGINT, re-registering at each quarter-hour and whenever
        bluetoothd comes back."""
        import dbus
        from dbus.mainloop.glib import DBusGMainLoop
        from gi.repository import GLib

        DBusGMainLoop(set_as_default=True)
        loop = GLib.MainLoop()

        dbus.SystemBus().add_signal_receiver(
            self.on_bluez_owner_changed, signal_name="NameOwnerChanged",
            dbus_interface="org.freedesktop.DBus", arg0="org.bluez",
        )  # fmt: skip
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, lambda: loop.quit() or False)
        self.refresh()  # never raises: a first failure is retried by the timer
        GLib.timeout_add_seconds(REFRESH_S, self.refresh)
        try:
            loop.run()
        finally:
            self.close()
            if self.on_state is not None:
                with contextlib.suppress(Exception):
                    self.on_state({"state": "stopped", "updated_at": time.time()})
        return 0
