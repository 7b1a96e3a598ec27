"""The rows the visit log hands out: immutable, so nothing past the store holds a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class EntryRow:
    id: int
    uuid: str
    kind: str
    protocol: str | None
    entered_at: float
    left_at: float | None
    clock_synced: bool
    via_sensor: bool
    synced_at: float | None


ENTRY_COLUMNS: Final = ("id", "uuid", "kind", "protocol", "entered_at", "left_at",
                        "clock_synced", "via_sensor", "synced_at")  # fmt: skip
ROW_COLUMNS: Final = ", ".join(ENTRY_COLUMNS)
ROW_COLUMNS_E: Final = ", ".join(f"e.{c}" for c in ENTRY_COLUMNS)  # in a join on entries e


def entry_row(values: Any) -> EntryRow:
    """An EntryRow from the first len(ENTRY_COLUMNS) values of a row in that order."""
    return EntryRow(
        values[0], values[1], values[2], values[3], values[4], values[5], bool(values[6]),
        bool(values[7]), values[8],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportEntry:
    """One entry as an export writes it: times as UNIX seconds, a manual entry's details."""

    uuid: str
    entered_at: float
    left_at: float | None
    kind: str
    protocol: str | None
    tokens: tuple[str, ...]  # in the order the phone showed them
    name: str | None
    organisation: str | None
    phone: str | None
    purpose: str | None
    clock_synced: bool
    via_sensor: bool
