"""Entry logs and adoption reports for officials: CSV, XLSX, JSON lines.

Officials open these in Excel and send the figures up, so: UTF-8 with a BOM, Vietnamese headers
by default, local time (the unit's time zone) with its offset stated, and no cell that Excel
would run as a formula (OWASP's CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``,
tab or CR gets a leading ``'``), since manual entries hold typed text.

Everything streams: rows go from SQLite to the file in chunks, so memory stays flat however
many entries there are. When the zone has one UTC offset over the whole period (Vietnam has had
+07:00 since 1975), the local times, the labels and the injection guard are computed by SQLite
itself and Python only moves rows (``sqlite3 -csv`` running the same query is the benchmark's
yardstick); otherwise each row is formatted in Python.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

from appliance.core.doorway import adoption_rate
from appliance.errors import UsageError
from appliance.formats.cells import BOM, FORMULA_PREFIXES, csv_safe
from appliance.formats.labels import kind_labels
from appliance.i18n import text
from appliance.models import REPORTED_KINDS as KINDS

CHUNK = 5000

# (key, catalogue entry of the header); the same order in every format.
COLUMNS = (
    ("entry", "exp_entry"),
    ("day", "exp_day"),
    ("entered", "exp_entered"),
    ("left", "exp_left"),
    ("kind", "exp_kind"),
    ("protocol", "exp_protocol"),
    ("tokens", "exp_tokens"),
    ("name", "exp_name"),
    ("organisation", "exp_org"),
    ("phone", "exp_phone"),
    ("purpose", "exp_purpose"),
    ("clock_synced", "exp_clock"),
)


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


# A visit's tokens in the order the phone showed them (first seen first).
_TOKENS_SQL = (
    "(SELECT group_concat(token, ' ') FROM (SELECT t.token FROM entry_tokens t"
    " WHERE t.entry_id = e.id ORDER BY t.first_seen, t.token))"
)


@dataclass(frozen=True)
class Period:
    """Local days first..last inclusive, as UNIX seconds [start, end)."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> float:
        return datetime.combine(self.first, datetime.min.time(), self.zone).timestamp()

    @property
    def end(self) -> float:
        after = self.last + timedelta(days=1)
        return datetime.combine(after, datetime.min.time(), self.zone).timestamp()

    def fixed_offset(self) -> int | None:
        """The zone's UTC offset in seconds if it is the same all through the period."""
        offsets = set()
        day = self.first
        while day <= self.last + timedelta(days=1):
            for hour in (0, 12):
                moment = datetime.combine(day, datetime.min.time(), self.zone).replace(hour=hour)
                offset = moment.utcoffset()
                offsets.add(int(offset.total_seconds()) if offset is not None else 0)
            day += timedelta(days=1)
            if len(offsets) > 1:
                return None
        return offsets.pop()


def period(first: date, last: date, timezone: str) -> Period:
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    if (last - first).days > 3660:
        raise UsageError("an export spans at most ten years")
    return Period(first, last, ZoneInfo(timezone))


def _offset_text(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def headers(lang: str, offset: int | None) -> list[str]:
    shown = f" (UTC{_offset_text(offset)})" if offset is not None else ""
    names = [text(key, lang) for _, key in COLUMNS]
    names[2] += shown
    names[3] += shown
    return names


class Exporter:
    """One visit log, one period, one language: the rows every format writes."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        span: Period,
        *,
        lang: str = "vi",
        kind: str | None = None,
        include_simulated: bool = False,
    ) -> None:
        if kind is not None and kind not in KINDS:
            raise UsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.conn = conn
        self.span = span
        self.lang = lang
        self.kind = kind
        self.origins = ("live", "simulated") if include_simulated else ("live",)
        self.offset = span.fixed_offset()

    # -- what is selected ------------------------------------------------------------------

    def _where(self) -> tuple[str, list[Any]]:
        marks = ", ".join("?" * len(self.origins))
        where = f"e.entered_at >= ? AND e.entered_at < ? AND e.origin IN ({marks})"
        params: list[Any] = [self.span.start, self.span.end, *self.origins]
        if self.kind is not None:
            where += " AND e.kind = ?"
            params.append(self.kind)
        return where, params

    def count(self) -> int:
        where, params = self._where()
        return int(self.conn.execute(f"SELECT count(*) FROM entries e WHERE {where}", params)
                   .fetchone()[0])  # fmt: skip

    def left_out(self) -> int:
        """Entries of the period not exported because they are simulated or replayed."""
        where, params = self._where()
        where = where.replace("e.origin IN", "e.origin NOT IN")
        return int(self.conn.execute(f"SELECT count(*) FROM entries e WHERE {where}", params)
                   .fetchone()[0])  # fmt: skip

    def sql(self) -> tuple[str, list[Any]]:
        """The query of the fast path: every cell computed by SQLite (needs a fixed offset)."""
        assert self.offset is not None
        where, params = self._where()
        suffix = _offset_text(self.offset)
        off = self.offset
        labels = kind_labels(self.lang)
        yes, no = text("yes", self.lang), text("no", self.lang)

        # CAST: whole seconds cut as Python's formatting does; SQLite rounds to the millisecond,
        # which put 23:59:59.9996 on the next day, outside the period.
        def local(column: str) -> str:
            return (f"strftime('%Y-%m-%dT%H:%M:%S', CAST({column} AS INTEGER) + {off},"
                    f" 'unixepoch') || '{suffix}'")  # fmt: skip

        select = f"""
            SELECT e.uuid AS c0,
                   date(CAST(e.entered_at AS INTEGER) + {off}, 'unixepoch') AS c1,
                   {local("e.entered_at")} AS c2,
                   CASE WHEN e.left_at IS NULL THEN '' ELSE {local("e.left_at")} END AS c3,
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
        return select, [labels["app"], labels["no_app"], labels["manual"], yes, no, *params]

    def sql_lines(self) -> tuple[str, list[Any]]:
        """``sql()`` with each row joined into one CSV line by SQLite, quoted exactly as the
        csv module quotes (a field with a comma, a quote, CR or LF is quoted, quotes doubled):
        Python then only moves one string per row."""
        inner, params = self.sql()
        quoted = {7, 8, 9, 10}  # only typed text can hold a comma, a quote or a line break
        cells = [_sql_csv_cell(f"c{i}") if i in quoted else f"c{i}" for i in range(len(COLUMNS))]
        line = " || ',' || ".join(cells)
        return f"SELECT {line} || char(13, 10) FROM ({inner})", params

    def records(self) -> Iterator[dict[str, Any]]:
        """Each entry as plain values (times as UNIX seconds), in time order."""
        where, params = self._where()
        cursor = self.conn.execute(
            "SELECT e.id, e.uuid, e.entered_at, e.left_at, e.kind, e.protocol, e.clock_synced,"
            " e.via_sensor, m.name, m.organisation, m.phone, m.purpose,"
            f" {_TOKENS_SQL}"
            f" FROM entries e LEFT JOIN manual_details m ON m.entry_id = e.id WHERE {where}"
            " ORDER BY e.entered_at, e.id",
            params,
        )
        while rows := cursor.fetchmany(CHUNK):
            for (_id, uuid, entered, left, kind, protocol, synced, sensor, name, org, phone,
                 purpose, tokens) in rows:  # fmt: skip
                yield {
                    "entry": uuid,
                    "entered_at": entered,
                    "left_at": left,
                    "kind": kind,
                    "protocol": protocol,
                    "tokens": tokens.split(" ") if tokens else [],
                    "name": name,
                    "organisation": org,
                    "phone": phone,
                    "purpose": purpose,
                    "clock_synced": bool(synced),
                    "via_sensor": bool(sensor),
                }

    def _local(self, t: float | None) -> datetime | None:
        # Whole seconds, cut (not rounded up to the next second, or day), as the SQL path does.
        return None if t is None else datetime.fromtimestamp(int(t), self.span.zone)

    def text_rows(self) -> Iterator[list[Any]]:
        """Rows of display text in COLUMNS order (the slow path, any zone)."""
        labels = kind_labels(self.lang)
        yes, no = text("yes", self.lang), text("no", self.lang)
        for r in self.records():
            entered = self._local(r["entered_at"])
            left = self._local(r["left_at"])
            assert entered is not None
            yield [
                r["entry"],
                entered.date().isoformat(),
                entered.isoformat(timespec="seconds"),
                left.isoformat(timespec="seconds") if left else "",
                labels.get(r["kind"], r["kind"]),
                r["protocol"] or "",
                " ".join(r["tokens"]),
                csv_safe(r["name"] or ""),
                csv_safe(r["organisation"] or ""),
                csv_safe(r["phone"] or ""),
                csv_safe(r["purpose"] or ""),
                yes if r["clock_synced"] else no,
            ]

    # -- per day ---------------------------------------------------------------------------

    def days(self) -> list[dict[str, Any]]:
        """Per local day: with app, no app, manual, total, adoption rate (every day listed)."""
        where, params = self._where()
        counts: dict[str, dict[str, int]] = {}
        if self.offset is not None:
            rows = self.conn.execute(
                f"SELECT date(CAST(e.entered_at AS INTEGER) + {self.offset}, 'unixepoch') AS day,"
                " e.kind, count(*)"
                f" FROM entries e WHERE {where} GROUP BY day, e.kind",
                params,
            )
            for day, kind, n in rows:
                counts.setdefault(day, dict.fromkeys(KINDS, 0))[kind] = int(n)
        else:
            for r in self.records():
                local = self._local(r["entered_at"])
                assert local is not None
                day = local.date().isoformat()
                counts.setdefault(day, dict.fromkeys(KINDS, 0))[r["kind"]] += 1
        result = []
        day = self.span.first
        while day <= self.span.last:
            c = counts.get(day.isoformat(), dict.fromkeys(KINDS, 0))
            result.append(_day_row(day.isoformat(), c))
            day += timedelta(days=1)
        return result


def _day_row(day: str, c: dict[str, int]) -> dict[str, Any]:
    rate = adoption_rate(c)
    return {
        "day": day,
        "app": c["app"],
        "no_app": c["no_app"],
        "manual": c["manual"],
        "total": c["app"] + c["no_app"] + c["manual"],
        "adoption_rate": None if rate is None else round(rate, 4),
    }


def total_row(days: list[dict[str, Any]]) -> dict[str, Any]:
    sums = {k: sum(d[k] for d in days) for k in KINDS}
    row = _day_row("total", sums)
    del row["day"]
    return row


# -- writers -------------------------------------------------------------------------------------

Progress = Callable[[int], None]
T = TypeVar("T")


def _reported(items: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """``items``, telling ``progress`` how many went by, a chunk at a time and the rest last."""
    count = 0
    for item in items:
        yield item
        count += 1
        if progress and count % CHUNK == 0:
            progress(CHUNK)
    if progress:
        progress(count % CHUNK)


def write_csv(exporter: Exporter, out: IO[str], progress: Progress | None = None) -> int:
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(exporter.lang, exporter.offset))
    count = 0
    if exporter.offset is not None:
        sql, params = exporter.sql_lines()
        cursor = exporter.conn.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            out.write("".join([row[0] for row in rows]))
            count += len(rows)
            if progress:
                progress(len(rows))
    else:
        for row in _reported(exporter.text_rows(), progress):
            writer.writerow(row)
            count += 1
    return count


def write_jsonl(exporter: Exporter, out: IO[str], progress: Progress | None = None) -> int:
    """One JSON object per line: machine keys, UTC ISO 8601 times and local ones."""
    count = 0
    for r in _reported(exporter.records(), progress):
        entered = exporter._local(r["entered_at"])
        left = exporter._local(r["left_at"])
        assert entered is not None
        item = {
            "entry": r["entry"],
            "kind": r["kind"],
            "protocol": r["protocol"],
            "entered_at": datetime.fromtimestamp(r["entered_at"], UTC).isoformat(),
            "left_at": (
                None if r["left_at"] is None
                else datetime.fromtimestamp(r["left_at"], UTC).isoformat()
            ),
            "entered_local": entered.isoformat(timespec="seconds"),
            "left_local": left.isoformat(timespec="seconds") if left else None,
            "tokens": r["tokens"],
            "clock_synced": r["clock_synced"],
            "via_sensor": r["via_sensor"],
        }  # fmt: skip
        if r["kind"] == "manual":
            for key in ("name", "organisation", "phone", "purpose"):
                item[key] = r[key]
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_xlsx(exporter: Exporter, path: Path, progress: Progress | None = None) -> int:
    """Entries, a per-day summary and a native chart of the daily adoption rate."""
    import xlsxwriter

    lang = exporter.lang
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        bold = workbook.add_format({"bold": True})
        when = workbook.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
        day_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
        percent = workbook.add_format({"num_format": "0.0%"})
        sheet = workbook.add_worksheet(text("xlsx_entries", lang)[:31])
        offset = exporter.offset
        zone_note = f"UTC{_offset_text(offset)}" if offset is not None else str(exporter.span.zone)
        names = [text(key, lang) for _, key in COLUMNS]
        names[2] += f" ({zone_note})"
        names[3] += f" ({zone_note})"
        sheet.write_row(0, 0, names, bold)
        widths = [36, 11, 19, 19, 24, 13, 34, 28, 28, 16, 28, 10]
        for column, width in enumerate(widths):
            sheet.set_column(column, column, width)
        labels = kind_labels(lang)
        yes, no = text("yes", lang), text("no", lang)
        row = 0
        for r in _reported(exporter.records(), progress):
            row += 1
            entered = exporter._local(r["entered_at"])
            left = exporter._local(r["left_at"])
            assert entered is not None
            sheet.write_string(row, 0, r["entry"])
            sheet.write_datetime(
                row,
                1,
                entered.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0),
                day_format,
            )
            sheet.write_datetime(row, 2, entered.replace(tzinfo=None, microsecond=0), when)
            if left is not None:
                sheet.write_datetime(row, 3, left.replace(tzinfo=None, microsecond=0), when)
            sheet.write_string(row, 4, labels.get(r["kind"], r["kind"]))
            if r["protocol"]:
                sheet.write_string(row, 5, r["protocol"])
            if r["tokens"]:
                sheet.write_string(row, 6, " ".join(r["tokens"]))
            # write_string: typed text is never a formula in a workbook (no injection here).
            for column, key in ((7, "name"), (8, "organisation"), (9, "phone"), (10, "purpose")):
                if r[key]:
                    sheet.write_string(row, column, r[key])
            sheet.write_string(row, 11, yes if r["clock_synced"] else no)
        sheet.freeze_panes(1, 0)
        if row:
            sheet.autofilter(0, 0, row, len(COLUMNS) - 1)

        days = exporter.days()
        summary = workbook.add_worksheet(text("xlsx_summary", lang)[:31])
        summary.write_row(0, 0, [text(k, lang) for k in (
            "exp_day", "with_app", "no_app", "manual", "exp_total", "adoption")], bold)  # fmt: skip
        summary.set_column(0, 0, 12)
        summary.set_column(1, 5, 16)
        for i, d in enumerate(days, start=1):
            summary.write_datetime(i, 0, datetime.fromisoformat(d["day"]), day_format)
            summary.write_number(i, 1, d["app"])
            summary.write_number(i, 2, d["no_app"])
            summary.write_number(i, 3, d["manual"])
            summary.write_number(i, 4, d["total"])
            if d["adoption_rate"] is not None:
                summary.write_number(i, 5, d["adoption_rate"], percent)
        totals = total_row(days)
        last = len(days) + 1
        summary.write_string(last, 0, text("exp_total", lang), bold)
        for column, key in ((1, "app"), (2, "no_app"), (3, "manual"), (4, "total")):
            summary.write_number(last, column, totals[key], bold)
        if totals["adoption_rate"] is not None:
            summary.write_number(last, 5, totals["adoption_rate"], percent)
        chart = workbook.add_chart({"type": "line"})
        sheet_name = summary.get_name()
        chart.add_series({
            "name": text("adoption", lang),
            "categories": [sheet_name, 1, 0, len(days), 0],
            "values": [sheet_name, 1, 5, len(days), 5],
            "marker": {"type": "circle"},
        })  # fmt: skip
        chart.set_title({"name": text("xlsx_chart", lang)})
        chart.set_y_axis({"min": 0, "max": 1, "num_format": "0%"})
        chart.set_legend({"none": True})
        summary.insert_chart(1, 7, chart, {"x_scale": 1.5, "y_scale": 1.2})
    finally:
        workbook.close()
    return row


# -- the command ---------------------------------------------------------------------------------


def open_text_output(target: str) -> tuple[IO[str], Path | None]:
    """stdout for ``-``; otherwise ``F.part``, renamed to ``F`` when complete."""
    if target == "-":
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="",
                                  write_through=False)  # fmt: skip
        return stream, None
    path = Path(target)
    partial = path.with_name(path.name + ".part")
    return partial.open("w", encoding="utf-8", newline=""), partial


def finish(partial: Path | None, target: str) -> None:
    if partial is not None:
        os.replace(partial, target)
