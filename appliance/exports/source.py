"""What the exports read, as the store provides it (duck-typed: exports never import the
store, and the store never imports exports)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol


class ExportedEntry(Protocol):
    """One entry: times as UNIX seconds, a manual entry's typed details (else None)."""

    @property
    def uuid(self) -> str: ...
    @property
    def entered_at(self) -> float: ...
    @property
    def left_at(self) -> float | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def tokens(self) -> Sequence[str]: ...
    @property
    def name(self) -> str | None: ...
    @property
    def organisation(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def clock_synced(self) -> bool: ...
    @property
    def via_sensor(self) -> bool: ...


class EntrySelection(Protocol):
    """One period's entries of the chosen origins and kind (store.ExportSelection)."""

    def count(self) -> int: ...

    def left_out(self) -> int: ...

    def entries(self, chunk: int) -> Iterator[ExportedEntry]: ...

    def csv_lines(
        self,
        chunk: int,
        *,
        offset_s: int,
        suffix: str,
        kinds: Mapping[str, str],
        yes: str,
        no: str,
    ) -> Iterator[list[str]]: ...

    def day_counts(self, offset_s: int) -> Iterable[tuple[str, str, int]]: ...


class VisitSource(Protocol):
    """Something that selects entries for an export: the visit log (store.VisitLog)."""

    def export_selection(
        self, start: float, end: float, *, kind: str | None, origins: tuple[str, ...]
    ) -> EntrySelection: ...
