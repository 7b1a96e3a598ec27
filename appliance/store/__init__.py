"""The visit log on disk (SQLite through sqlite-utils): the only sqlite-utils importer."""

from appliance.store.visits import VisitLog

__all__ = ["VisitLog"]
