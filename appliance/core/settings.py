"""The pure checks of one configuration value: its type, what a path may hold, and where a unit's
own path lands when its root file system is mounted elsewhere (``checkpoint provision apply
--root``). No file is looked at, so a bad value is refused the moment the file is read."""

from __future__ import annotations

import math
import os
import unicodedata
from pathlib import Path
from typing import Any, Final

PATH_MAX_BYTES: Final = 4095  # Linux's PATH_MAX (4096) less the terminating NUL
NAME_MAX_BYTES: Final = 255  # one name between slashes, on every file system a Pi card has
SHOWN_CHARS: Final = 60  # of a bad value in a message: a value can be a megabyte of arrays
_KIND_NAMES: dict[Any, str] = {
    str: "a string", int: "an integer", float: "a number", bool: "true or false",
    Path: "a path (string)",
}  # fmt: skip


def kind_name(kind: Any) -> str:
    """How a message names a key's type."""
    return _KIND_NAMES.get(kind, str(kind))


def typed(kind: Any, value: Any) -> tuple[bool, Any]:
    """Whether ``value`` is of ``kind`` (str, Path, int, float, bool; an integer counts as a
    number, a boolean as nothing else), and it as that kind."""
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:  # nan and inf pass every range check (each comparison is false)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    return isinstance(value, str), value  # str and Path


def shown(value: Any) -> str:
    """``value`` as a message quotes it, cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def control_character(text: str) -> str | None:
    """The first control character of ``text`` (NUL, a newline, a tab...) as ``U+XXXX``, or
    None: no setting needs one, and one in a path or a name breaks the one-line messages."""
    for char in text:
        if unicodedata.category(char) == "Cc":
            return f"U+{ord(char):04X}" + (" (NUL)" if char == "\0" else "")
    return None


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot name a file, or None. The kernel refuses a NUL, an over-long path and
    an over-long name only when the file is opened, far from the setting that named it."""
    if not text.strip():
        return "is empty"
    bad = control_character(text)
    if bad is not None:
        return f"holds a control character, {bad}, which a path cannot hold"
    encoded = os.fsencode(text)
    if len(encoded) > PATH_MAX_BYTES:
        return f"is {len(encoded)} bytes long; a path holds at most {PATH_MAX_BYTES}"
    longest = max(len(name) for name in encoded.split(b"/"))
    if longest > NAME_MAX_BYTES:
        return f"has a name of {longest} bytes; a name holds at most {NAME_MAX_BYTES}"
    return None


def rerooted(root: Path, path: Path) -> Path:
    """``path`` as the unit names it (``/etc/checkpoint/province.key``), found under ``root``,
    where the unit's ``/`` is mounted; a relative path is left as it is."""
    return root / path.relative_to(path.anchor) if path.is_absolute() else path
