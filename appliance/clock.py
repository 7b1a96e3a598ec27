"""Is the system clock trustworthy? A Pi before the Pi 5 has no real-time clock.

Asks the kernel (``adjtimex``), which knows whether NTP has synchronised it: the same answer
``timedatectl`` gives, without D-Bus; and reads the boot-relative clock that lets records taken
before sync be corrected afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import time
from dataclasses import dataclass

TIME_ERROR = 5  # adjtimex's return value while the clock is not synchronised


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: we only read the return value, but the kernel writes the
    # whole structure, so it must be at least as large as the real one.
    _fields_ = [("modes", ctypes.c_uint), ("_rest", ctypes.c_byte * 256)]


@functools.cache
def _adjtimex() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        function = ctypes.CDLL(name, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.POINTER(_Timex)]
    function.restype = ctypes.c_int
    return function


# systemd-timesyncd touches this file each time it synchronises the clock.
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"


def is_synchronized() -> bool:
    """True when the kernel says NTP has synchronised the clock.

    When the kernel cannot be asked (a seccomp filter or ``ProtectClock=`` refusing adjtimex,
    a libc without it), systemd-timesyncd's flag file answers; with neither, the clock is not
    trusted: a wrong "synchronised" would stamp records with a wrong time and no flag.
    """
    function = _adjtimex()
    if function is not None:
        timex = _Timex()
        timex.modes = 0  # read only
        state = function(ctypes.byref(timex))
        if state >= 0:
            return bool(state != TIME_ERROR)
    return os.path.exists(TIMESYNC_FLAG)


# -- boot-relative time ------------------------------------------------------------------------
# Until NTP synchronises it, the wall clock of a Pi without a real-time clock is wrong by an
# unknown amount, but CLOCK_BOOTTIME (seconds since this boot, counting suspend) is right. A
# record taken before sync keeps its boot-relative time and the boot's ID, so once the clock
# is synchronised its true wall time is ``now_wall - (now_boot - recorded_boot)``. Another
# boot's count started again from zero: its records cannot be corrected, only flagged.

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True, slots=True)
class BootReading:
    """The wall clock and the boot clock read together, in one boot."""

    boot_id: str
    wall: float  # time.time(), UNIX seconds (wrong by an unknown amount when unsynchronised)
    boot_s: float  # CLOCK_BOOTTIME, seconds since this boot

    def boot_time_of(self, wall: float) -> float:
        """The boot-relative time of ``wall``, a wall time read with the same clock offset."""
        return self.boot_s - (self.wall - wall)


def boottime() -> float:
    """Seconds since this boot, suspend included (never set by NTP or anyone)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@functools.cache
def boot_id() -> str | None:
    """The kernel's random ID of this boot (None where there is no /proc: not Linux)."""
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as file:
            return file.read().strip() or None
    except (OSError, ValueError):
        return None


def read_boot() -> BootReading | None:
    """Now, on both clocks; None where the boot cannot be identified."""
    current = boot_id()
    if current is None:
        return None
    return BootReading(current, time.time(), boottime())


# -- the daemon's session clock ----------------------------------------------------------------
# The door compares times (a presence's silence, a crossing's window, Bluezone's quarter-hours):
# a wall clock that NTP steps by days at sync would end every presence at once and count the
# phones at the desk again. The daemon's door runs on CLOCK_BOOTTIME plus the wall clock's
# offset when it started, which never steps; the visit log turns such a time into wall time
# when it records it, with the offset of that moment (true once the clock is synchronised).


@dataclass(frozen=True, slots=True)
class SessionClock:
    """CLOCK_BOOTTIME, shifted to read the wall time at the daemon's start; never steps."""

    boot_id: str
    anchor: float  # wall - boot when the daemon started

    @classmethod
    def start(cls, reading: BootReading | None = None) -> SessionClock | None:
        """Anchored now; None where the boot cannot be identified (then use the wall clock)."""
        reading = reading or read_boot()
        if reading is None:
            return None
        return cls(reading.boot_id, reading.wall - reading.boot_s)

    def now(self) -> float:
        return boottime() + self.anchor

    def wall_shift(self, reading: BootReading) -> float:
        """What to add to a session time for the wall time with ``reading``'s clock offset: 0
        until the wall clock is set, the whole step after."""
        return reading.wall - reading.boot_s - self.anchor

    def to_wall(self, t: float, reading: BootReading | None = None) -> float:
        """Session time ``t`` as wall time, with the offset the wall clock has now."""
        reading = reading or read_boot()
        return t if reading is None else t + self.wall_shift(reading)
