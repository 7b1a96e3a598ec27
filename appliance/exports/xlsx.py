"""The entry log as an Excel workbook: the entries, a per-day summary and a native chart of
the daily adoption rate. XlsxWriter in constant-memory mode: rows stream to the file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import IO, Any

from appliance.exports.cells import Progress, reported
from appliance.exports.exporter import Exporter, total_row
from appliance.exports.period import header_names, offset_text
from appliance.formats.labels import ENTRY_COLUMNS as COLUMNS
from appliance.i18n import text

WIDTHS = (36, 11, 19, 19, 24, 13, 34, 28, 28, 16, 28, 10)  # characters, per column
_TYPED = ((7, "name"), (8, "organisation"), (9, "phone"), (10, "purpose"))
_COUNTS = ((1, "app"), (2, "no_app"), (3, "manual"), (4, "total"))
SHEET_NAME_MAX = 31  # Excel's limit


def write_xlsx(
    exporter: Exporter, target: Path | IO[bytes], progress: Progress | None = None
) -> int:
    """Write the workbook to ``target``, a path or a seekable binary file (left open); returns
    how many entry rows."""
    import xlsxwriter

    into = str(target) if isinstance(target, Path) else target
    workbook = xlsxwriter.Workbook(into, {"constant_memory": True})
    try:
        formats = {
            "bold": workbook.add_format({"bold": True}),
            "when": workbook.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"}),
            "day": workbook.add_format({"num_format": "dd/mm/yyyy"}),
            "percent": workbook.add_format({"num_format": "0.0%"}),
        }
        rows = _entries_sheet(workbook, exporter, formats, progress)
        _summary_sheet(workbook, exporter, formats)
    finally:
        workbook.close()
    return rows


def _entries_sheet(
    workbook: Any, exporter: Exporter, formats: dict[str, Any], progress: Progress | None
) -> int:
    lang = exporter.lang
    sheet = workbook.add_worksheet(text("xlsx_entries", lang)[:SHEET_NAME_MAX])
    offset = exporter.offset
    # A workbook's times have no offset: the zone is named in the header instead.
    zone_note = f"UTC{offset_text(offset)}" if offset is not None else str(exporter.span.zone)
    sheet.write_row(0, 0, header_names(lang, f" ({zone_note})"), formats["bold"])
    for column, width in enumerate(WIDTHS):
        sheet.set_column(column, column, width)
    labels = exporter.labels
    when, day_format = formats["when"], formats["day"]
    row = 0
    for r in reported(exporter.records(), progress, exporter.chunk):
        row += 1
        entered = exporter.local(r.entered_at)
        left = exporter.local(r.left_at)
        assert entered is not None
        sheet.write_string(row, 0, r.uuid)
        midnight = entered.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        sheet.write_datetime(row, 1, midnight, day_format)
        sheet.write_datetime(row, 2, entered.replace(tzinfo=None, microsecond=0), when)
        if left is not None:
            sheet.write_datetime(row, 3, left.replace(tzinfo=None, microsecond=0), when)
        sheet.write_string(row, 4, labels.kind(r.kind))
        if r.protocol:
            sheet.write_string(row, 5, r.protocol)
        if r.tokens:
            sheet.write_string(row, 6, " ".join(r.tokens))
        # write_string: typed text is never a formula in a workbook (no injection here).
        for column, key in _TYPED:
            value = getattr(r, key)
            if value:
                sheet.write_string(row, column, value)
        sheet.write_string(row, 11, labels.clock(r.clock_synced))
    sheet.freeze_panes(1, 0)
    if row:
        sheet.autofilter(0, 0, row, len(COLUMNS) - 1)
    return row


def _summary_sheet(workbook: Any, exporter: Exporter, formats: dict[str, Any]) -> None:
    lang = exporter.lang
    bold, percent = formats["bold"], formats["percent"]
    days = exporter.days()
    summary = workbook.add_worksheet(text("xlsx_summary", lang)[:SHEET_NAME_MAX])
    summary.write_row(0, 0, [text(k, lang) for k in (
        "exp_day", "with_app", "no_app", "manual", "exp_total", "adoption")], bold)  # fmt: skip
    summary.set_column(0, 0, 12)
    summary.set_column(1, 5, 16)
    for i, d in enumerate(days, start=1):
        summary.write_datetime(i, 0, datetime.fromisoformat(d["day"]), formats["day"])
        for column, key in _COUNTS:
            summary.write_number(i, column, d[key])
        if d["adoption_rate"] is not None:
            summary.write_number(i, 5, d["adoption_rate"], percent)
    totals = total_row(days)
    last = len(days) + 1
    summary.write_string(last, 0, text("exp_total", lang), bold)
    for column, key in _COUNTS:
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
