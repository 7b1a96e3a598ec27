"""Is the system clock trustworthy? A Pi before the Pi 5 has no real-time clock.

Asks the kernel (``adjtimex``), which knows whether NTP has synchronised it: the same answer
``timedatectl`` gives, without D-Bus.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

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


def is_synchronized() -> bool:
    """True when the kernel says NTP has synchronised the clock (unknown: True)."""
    function = _adjtimex()
    if function is None:
        return True
    timex = _Timex()
    timex.modes = 0  # read only
    state = function(ctypes.byref(timex))
    return bool(state != TIME_ERROR)
