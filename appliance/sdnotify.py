"""systemd's notification protocol (sd_notify), with the standard library only.

``Type=notify`` units learn that the daemon is ready (``READY=1``: visits can be recorded),
what it is doing (``STATUS=``), and that its event loop is alive (``WATCHDOG=1``, at half of
``WatchdogSec=``); ``STOPPING=1`` on the way out. Outside systemd (no ``NOTIFY_SOCKET``) every
call does nothing. A notification that cannot be sent is logged once and never raises: the
door must not stop because the service manager is busy.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # the abstract namespace
            address = "\0" + address[1:]
        self.address = address or None
        self._socket: socket.socket | None = None
        self._failed = False
        self.watchdog_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1_000_000
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines; True if systemd got them."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(fields).encode("utf-8"), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %r: %s", self.address, exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        fields = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            fields.append(f"STATUS={status}")
        return self.send(*fields)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self, now: float | None = None) -> bool:
        """Ping if half the watchdog interval has passed; call it from the healthy loop only."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.watchdog_s / 2:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
