"""The visit log on disk (SQLite through sqlite-utils): the only sqlite-utils importer, and
the only place that writes SQL."""

from appliance.store.rows import EntryRow, ExportEntry
from appliance.store.visits import VisitLog, WaitForSpace

__all__ = ["EntryRow", "ExportEntry", "VisitLog", "WaitForSpace"]
