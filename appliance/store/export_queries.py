"""The export's reads: one period's entries, counted, streamed as rows, or as CSV lines that
SQLite itself builds.

When the unit's zone has one UTC offset over the period, the local times, the labels, the
formula guard and the CSV quoting are computed by SQLite and Python only moves one string per
row (``sqlite3 -csv`` running the same query is the benchmark's yardstick). That is raw SQL on
purpose: no query builder writes these expressions, and going through Python per cell is what
the fast path exists to avoid. Everything streams through ``fetchmany``: memory stays flat
however many entries there are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import sqlite_utils

from appliance.formats.cells import FORMULA_PREFIXES
from appliance.formats.labels import ENTRY_COLUMNS
from appliance.store.rows import ExportEntry

# A visit's tokens in the order the phone showed them (first seen first).
_TOKENS_SQL = (
    "(SELECT group_concat(token, ' ') FROM (SELECT t.token FROM entry_tokens t"
    " WHERE t.entry_id = e.id ORDER BY t.first_seen, t.token))"
)
CELL_COUNT = len(ENTRY_COLUMNS)  # the export's columns, in the order every format writes them
_TYPED = {7, 8, 9, 10}  # only typed text can hold a comma, a quote or a line break


def _sql_char(c: str) -> str:
    return f"'{c}'" if c.isprintable() and c != "'" else f"char({ord(c)})"


def _sql_safe(column: str) -> str:
    """``csv_safe`` as SQL (built from the same prefixes), so the fast path leaves nothing to
    Python."""
    prefixes = ", ".join(_sql_char(c) for c in FORMULA_PREFIXES)
    quote = "'" * 4  # a SQL string holding one '
    return (
        f"CASE WHEN substr({column}, 1, 1) IN ({prefixes})"
        f" THEN {quote} || {column} ELSE {column} END"
    )


def _sql_csv_cell(column: str) -> str:
    """A cell as the csv module writes it (QUOTE_MINIMAL), computed by SQLite."""
    needs = " OR ".join(
        f"instr({column}, {c}) > 0" for c in ("','", "'\"'", "char(13)", "char(10)")
    )
    return (
        f"CASE WHEN {needs} THEN '\"' || replace({column}, '\"', '\"\"') || '\"' ELSE {column} END"
    )


def _local_sql(column: str, offset_s: int, suffix: str) -> str:
    # CAST: whole seconds cut as Python's formatting does; SQLite rounds to the millisecond,
    # which put 23:59:59.9996 on the next day, outside the period.
    return (f"strftime('%Y-%m-%dT%H:%M:%S', CAST({column} AS INTEGER) + {int(offset_s)},"
            f" 'unixepoch') || '{suffix}'")  # fmt: skip


class ExportSelection:
    """The entries of ``start <= entered_at < end`` of some origins (and one kind)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        start: float,
        end: float,
        *,
        kind: str | None,
        origins: tuple[str, ...],
    ) -> None:
        self._db = db
        self.start = start
        self.end = end
        self.kind = kind
        self.origins = origins

    def _where(self, *, left_out: bool = False) -> tuple[str, list[Any]]:
        marks = ", ".join("?" * len(self.origins))
        among = "NOT IN" if left_out else "IN"
        where = f"e.entered_at >= ? AND e.entered_at < ? AND e.origin {among} ({marks})"
        params: list[Any] = [self.start, self.end, *self.origins]
        if self.kind is not None:
            where += " AND e.kind = ?"
            params.append(self.kind)
        return where, params

    def count(self) -> int:
        where, params = self._where()
        return int(self._db.execute(f"SELECT count(*) FROM entries e WHERE {where}", params)
                   .fetchone()[0])  # fmt: skip

    def left_out(self) -> int:
        """Entries of the period not selected because of their origin (simulated, replayed)."""
        where, params = self._where(left_out=True)
        return int(self._db.execute(f"SELECT count(*) FROM entries e WHERE {where}", params)
                   .fetchone()[0])  # fmt: skip

    def entries(self, chunk: int) -> Iterator[ExportEntry]:
        """Each entry as plain values (times as UNIX seconds), in time order."""
        where, params = self._where()
        cursor = self._db.execute(
            "SELECT e.uuid, e.entered_at, e.left_at, e.kind, e.protocol, e.clock_synced,"
            " e.via_sensor, m.name, m.organisation, m.phone, m.purpose,"
            f" {_TOKENS_SQL}"
            f" FROM entries e LEFT JOIN manual_details m ON m.entry_id = e.id WHERE {where}"
            " ORDER BY e.entered_at, e.id",
            params,
        )
        while rows := cursor.fetchmany(chunk):
            for (uuid, entered, left, kind, protocol, synced, sensor, name, org, phone,
                 purpose, tokens) in rows:  # fmt: skip
                yield ExportEntry(uuid, entered, left, kind, protocol,
                                  tuple(tokens.split(" ")) if tokens else (), name, org, phone,
                                  purpose, bool(synced), bool(sensor))  # fmt: skip

    def cells_sql(
        self, *, offset_s: int, suffix: str, kinds: Mapping[str, str], yes: str, no: str
    ) -> tuple[str, list[Any]]:
        """The fast path's query: every cell of a row as display text, computed by SQLite.

        ``offset_s`` is the zone's one UTC offset over the period, ``suffix`` its text
        (``+07:00``), ``kinds`` the label of each kind, ``yes``/``no`` the clock column's.
        """
        where, params = self._where()
        select = f"""
            SELECT e.uuid AS c0,
                   date(CAST(e.entered_at AS INTEGER) + {int(offset_s)}, 'unixepoch') AS c1,
                   {_local_sql("e.entered_at", offset_s, suffix)} AS c2,
                   CASE WHEN e.left_at IS NULL THEN ''
                        ELSE {_local_sql("e.left_at", offset_s, suffix)} END AS c3,
                   CASE e.kind WHEN 'app' THEN ? WHEN 'no_app' THEN ? ELSE ? END AS c4,
                   coalesce(e.protocol, '') AS c5,
                   coalesce({_TOKENS_SQL}, '') AS c6,
                   coalesce({_sql_safe("m.name")}, '') AS c7,
                   coalesce({_sql_safe("m.organisation")}, '') AS c8,
                   coalesce({_sql_safe("m.phone")}, '') AS c9,
                   coalesce({_sql_safe("m.purpose")}, '') AS c10,
                   CASE WHEN e.clock_synced THEN ? ELSE ? END AS c11
            FROM entries e LEFT JOIN manual_details m ON m.entry_id = e.id
            WHERE {where}
            ORDER BY e.entered_at, e.id"""
        return select, [kinds["app"], kinds["no_app"], kinds["manual"], yes, no, *params]

    def csv_lines(
        self,
        chunk: int,
        *,
        offset_s: int,
        suffix: str,
        kinds: Mapping[str, str],
        yes: str,
        no: str,
    ) -> Iterator[list[str]]:
        """``cells_sql()``'s rows as CSV lines (CRLF-terminated), ``chunk`` lines at a time,
        quoted exactly as the csv module quotes (a field with a comma, a quote, CR or LF is
        quoted, quotes doubled)."""
        inner, params = self.cells_sql(offset_s=offset_s, suffix=suffix, kinds=kinds, yes=yes,
                                       no=no)  # fmt: skip
        cells = [_sql_csv_cell(f"c{i}") if i in _TYPED else f"c{i}" for i in range(CELL_COUNT)]
        line = " || ',' || ".join(cells)
        cursor = self._db.execute(f"SELECT {line} || char(13, 10) FROM ({inner})", params)
        while rows := cursor.fetchmany(chunk):
            yield [row[0] for row in rows]

    def day_counts(self, offset_s: int) -> Iterator[tuple[str, str, int]]:
        """(local day, kind, entries) for a zone of one UTC offset over the period."""
        where, params = self._where()
        rows = self._db.execute(
            f"SELECT date(CAST(e.entered_at AS INTEGER) + {int(offset_s)}, 'unixepoch') AS day,"
            f" e.kind, count(*) FROM entries e WHERE {where} GROUP BY day, e.kind",
            params,
        )
        for day, kind, n in rows:
            yield day, kind, int(n)
