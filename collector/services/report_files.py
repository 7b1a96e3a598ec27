"""The adoption report and the entry export as files officials open: JSON, JSON lines, and CSV
for Excel (byte-order mark, formula-safe cells). The API and the admin commands write the same
bytes through these functions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from appliance.formats.cells import BOM, csv_safe
from appliance.formats.labels import kind_labels
from appliance.i18n import text
from appliance.records import SENT_KINDS
from collector.services.reports import EXPORT_COLUMNS, AdoptionRow

ADOPTION_HEADERS: Final = ("day", "agency", "app", "no_app", "manual", "total", "adoption_rate")
# What officials read in Excel: Vietnamese by default, English on request (lang=en). The
# Vietnamese headers come from the device's catalogue where it has the same words; the short
# "Cơ quan" (the catalogue's is "Cơ quan, đơn vị"), "Điểm kiểm soát", "Cửa" and "Qua cảm biến"
# are the collector's own.
CSV_HEADERS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "adoption": {
        "en": ADOPTION_HEADERS,
        "vi": (text("exp_day", "vi"), "Cơ quan", *kind_labels("vi").values(),
               text("exp_total", "vi"), text("adoption", "vi")),
    },
    "entries": {
        "en": EXPORT_COLUMNS,
        "vi": (text("exp_entry", "vi"), "Điểm kiểm soát", "Cơ quan", "Cửa", text("exp_kind", "vi"),
               text("exp_protocol", "vi"), text("exp_entered", "vi"), text("exp_left", "vi"),
               text("exp_clock", "vi"), "Qua cảm biến"),
    },
}  # fmt: skip
# The entry kind as the CSV writes it: the catalogue's label in Vietnamese; in English the
# kind's own name, as in the JSON export (what a script reading the English CSV matches on).
KIND_LABELS: Final = {"en": {kind: kind for kind in SENT_KINDS}, "vi": kind_labels("vi")}


def adoption_json(rows: list[AdoptionRow], first: date, last: date) -> dict[str, Any]:
    app = sum(r.app for r in rows)
    no_app = sum(r.no_app for r in rows)
    manual = sum(r.manual for r in rows)
    total = AdoptionRow("total", "", app, no_app, manual).as_json()
    del total["day"], total["agency"]
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "rows": [r.as_json() for r in rows],
        "total": total,
    }


def adoption_csv(rows: list[AdoptionRow], lang: str = "vi") -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS["adoption"][lang])
    for row in rows:
        data = row.as_json()
        writer.writerow([csv_safe(data[h]) for h in ADOPTION_HEADERS])
    return out.getvalue()


def _local(t: float | None, zone: ZoneInfo) -> str:
    return "" if t is None else datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def export_csv(rows: Iterator[tuple[Any, ...]], zone: ZoneInfo, lang: str = "vi") -> Iterator[str]:
    """The export as CSV text, yielded every thousand rows (the export is streamed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    yield BOM
    writer.writerow(CSV_HEADERS["entries"][lang])
    kinds = KIND_LABELS[lang]
    for n, row in enumerate(rows, 1):
        writer.writerow(
            [
                *(csv_safe(v) for v in row[:4]),
                kinds.get(row[4], row[4]),
                csv_safe(row[5]),
                _local(row[6], zone),
                _local(row[7], zone),
                int(row[8]),
                int(row[9]),
            ]
        )
        if n % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def export_jsonl(rows: Iterator[tuple[Any, ...]], zone: ZoneInfo) -> Iterator[str]:
    for row in rows:
        item = dict(zip(EXPORT_COLUMNS, row, strict=True))
        item["entered_at"] = datetime.fromtimestamp(row[6], UTC).isoformat()
        item["left_at"] = (
            None if row[7] is None else datetime.fromtimestamp(row[7], UTC).isoformat()
        )
        item["entered_local"] = _local(row[6], zone)
        item["clock_synced"] = bool(row[8])
        item["via_sensor"] = bool(row[9])
        yield json.dumps(item, ensure_ascii=False) + "\n"
