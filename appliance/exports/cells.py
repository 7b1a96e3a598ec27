"""Cell-level helpers every writer shares: the labels of one language, local times, progress.

The guards themselves (csv_safe, the BOM) and the kind labels are pure and shared with the
collector: they live in ``appliance.formats`` and are re-exported here for the writers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from appliance.formats.cells import BOM, csv_safe
from appliance.formats.labels import kind_labels
from appliance.i18n import text

__all__ = ["BOM", "CHUNK", "Labels", "Progress", "csv_safe", "local", "reported"]

CHUNK: Final = 5000  # rows fetched (and progress reported) at a time
Progress = Callable[[int], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Labels:
    """What officials read in ``lang`` for the kind and clock columns."""

    kinds: dict[str, str]
    yes: str
    no: str

    @classmethod
    def of(cls, lang: str) -> Labels:
        return cls(kind_labels(lang), text("yes", lang), text("no", lang))

    def kind(self, kind: str) -> str:
        return self.kinds.get(kind, kind)

    def clock(self, synced: bool) -> str:
        return self.yes if synced else self.no


def local(t: float | None, zone: ZoneInfo) -> datetime | None:
    """``t`` in ``zone``, whole seconds cut (never rounded up to the next second, or day), as
    the SQL path does."""
    return None if t is None else datetime.fromtimestamp(int(t), zone)


def reported(items: Iterable[T], progress: Progress | None, chunk: int = CHUNK) -> Iterator[T]:
    """``items``, telling ``progress`` how many went by, a chunk at a time and the rest last."""
    count = 0
    for item in items:
        yield item
        count += 1
        if progress and count % chunk == 0:
            progress(chunk)
    if progress:
        progress(count % chunk)
