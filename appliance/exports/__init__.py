"""Entry logs and adoption reports for officials: CSV, XLSX, JSON lines.

Officials open these in Excel and send the figures up, so: UTF-8 with a BOM, Vietnamese headers
by default, local time (the unit's time zone) with its offset stated, and no cell that Excel
would run as a formula (OWASP's CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``,
tab or CR gets a leading ``'``), since manual entries hold typed text.

Everything streams: rows come from the visit log's export selection in chunks (the store does
the SQL; this package only formats), so memory stays flat however many entries there are.
"""

from appliance.exports.cells import CHUNK
from appliance.exports.csv import write_csv
from appliance.exports.exporter import Exporter, day_row, total_row
from appliance.exports.jsonl import write_jsonl
from appliance.exports.output import check_target, finish, open_text_output, write_export
from appliance.exports.period import Period, headers, period
from appliance.exports.source import EntrySelection, ExportedEntry, VisitSource
from appliance.exports.xlsx import write_xlsx
from appliance.formats.labels import ENTRY_COLUMNS as COLUMNS

__all__ = [
    "CHUNK",
    "COLUMNS",
    "EntrySelection",
    "ExportedEntry",
    "Exporter",
    "Period",
    "VisitSource",
    "check_target",
    "day_row",
    "finish",
    "headers",
    "open_text_output",
    "period",
    "total_row",
    "write_csv",
    "write_export",
    "write_jsonl",
    "write_xlsx",
]
