"""The entry log as CSV for Excel: UTF-8 with a BOM, CRLF lines, no cell Excel would run.

(A module named ``csv`` inside the package: ``import csv`` below is the standard library's,
imports being absolute.)
"""

from __future__ import annotations

import csv
from typing import IO

from appliance.exports.cells import BOM, Progress, reported
from appliance.exports.exporter import Exporter
from appliance.exports.period import headers


def write_csv(exporter: Exporter, out: IO[str], progress: Progress | None = None) -> int:
    """Write the header and every row to ``out``; returns how many rows."""
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(exporter.lang, exporter.offset))
    count = 0
    if exporter.offset is not None:
        for lines in exporter.csv_lines():
            out.write("".join(lines))
            count += len(lines)
            if progress:
                progress(len(lines))
    else:
        for row in reported(exporter.text_rows(), progress, exporter.chunk):
            writer.writerow(row)
            count += 1
    return count
