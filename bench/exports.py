"""Exports for officials: 1,000,000 entries to CSV against `sqlite3 -csv` running the same query
on the same database in the same run, and 100,000 entries to XLSX; peak memory of both.

The ratio is what matters (the machines are shared and noisy): both sides run alternately,
three times each, and the medians are compared. Peak memory is tracemalloc's peak during a
separate run (tracing slows the run, so it is not timed).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import tracemalloc
import uuid as uuidlib
from datetime import date
from pathlib import Path

from appliance.exports import Exporter, period, write_csv, write_xlsx
from appliance.exports.period import offset_text
from appliance.store import VisitLog
from bench.results import Figure

CSV_ROWS = 1_000_000
XLSX_ROWS = 100_000
FIRST = date(2026, 1, 1)
ZONE = "Asia/Ho_Chi_Minh"
TARGET_RATIO = 2.0
TARGET_XLSX_S = 30.0


def build(path: Path, n: int, seed: int = 1) -> tuple[date, date]:
    """n entries over about 100 days: 60 % app (two tokens), 35 % no app, 5 % manual."""
    VisitLog(path).close()  # the real schema
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    t = period(FIRST, FIRST, ZONE).start + 7 * 3600
    step = 100 * 86400 / n
    entries: Rows = []
    tokens: Rows = []
    manual: Rows = []
    for i in range(1, n + 1):
        t += step
        roll = rng.random()
        kind = "app" if roll < 0.6 else "no_app" if roll < 0.95 else "manual"
        uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        left = t + rng.uniform(60, 3600) if kind == "app" else None
        protocol = rng.choice(("bluezone", "gaen")) if kind == "app" else None
        entries.append((i, uuid, kind, protocol, t, left, 1, int(kind != "manual"), t, "live"))
        if kind == "app":
            tokens.append((i, f"{rng.getrandbits(128):032x}", t))
            tokens.append((i, f"{rng.getrandbits(128):032x}", t + 900))
        elif kind == "manual":
            manual.append((i, f"Nguyễn Văn Khách {i}", "Sở Y tế", "0912 345 678", "Nộp hồ sơ"))
        if len(entries) >= 50_000:
            _flush(conn, entries, tokens, manual)
    _flush(conn, entries, tokens, manual)
    conn.close()
    last = date.fromordinal(FIRST.toordinal() + 101)
    return FIRST, last


Rows = list[tuple[object, ...]]


def _flush(conn: sqlite3.Connection, entries: Rows, tokens: Rows, manual: Rows) -> None:
    with conn:
        conn.executemany(
            "INSERT INTO entries (id, uuid, kind, protocol, entered_at, left_at, clock_synced,"
            " via_sensor, created_at, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            entries,
        )
        conn.executemany(
            "INSERT INTO entry_tokens (entry_id, token, first_seen) VALUES (?, ?, ?)", tokens
        )
        conn.executemany(
            "INSERT INTO manual_details (entry_id, name, organisation, phone, purpose)"
            " VALUES (?, ?, ?, ?, ?)",
            manual,
        )
    entries.clear()
    tokens.clear()
    manual.clear()


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def _inline(sql: str, params: list[object]) -> str:
    """The query with its parameters written in, for the sqlite3 command line."""
    parts = sql.split("?")
    assert len(parts) == len(params) + 1
    return "".join(p + (_literal(params[i]) if i < len(params) else "") for i, p in
                   enumerate(parts))  # fmt: skip


def _exporter(log: VisitLog, first: date, last: date) -> Exporter:
    return Exporter(log, period(first, last, ZONE))


def _ours(db: Path, first: date, last: date, out: Path) -> int:
    log = VisitLog(db, readonly=True, check=False)
    try:
        with out.open("w", encoding="utf-8", newline="") as f:
            return write_csv(_exporter(log, first, last), f)
    finally:
        log.close()


def _fast_path_query(db: Path, first: date, last: date) -> str:
    """The query our CSV's cells come from, parameters written in, for `sqlite3 -csv`."""
    log = VisitLog(db, readonly=True, check=False)
    try:
        exporter = _exporter(log, first, last)
        span, labels, offset = exporter.span, exporter.labels, exporter.offset
        assert offset is not None
        selection = log.export_selection(span.start, span.end, kind=None, origins=("live",))
        sql, params = selection.cells_sql(
            offset_s=offset,
            suffix=offset_text(offset),
            kinds=labels.kinds,
            yes=labels.yes,
            no=labels.no,
        )
    finally:
        log.close()
    return _inline(sql, params)


def _csv_figures(workdir: Path) -> list[Figure]:
    db = workdir / "million.db"
    first, last = build(db, CSV_ROWS)
    query = _fast_path_query(db, first, last)
    sqlite3_bin = shutil.which("sqlite3")
    if sqlite3_bin is None:
        raise RuntimeError("the sqlite3 command is missing (provisioning/system-deps.sh)")
    ours, theirs = [], []
    for _ in range(3):
        start = time.perf_counter()
        rows = _ours(db, first, last, workdir / "ours.csv")
        ours.append(time.perf_counter() - start)
        if rows != CSV_ROWS:
            raise RuntimeError(f"exported {rows} rows, expected {CSV_ROWS}")
        start = time.perf_counter()
        with (workdir / "sqlite3.csv").open("wb") as out:
            subprocess.run([sqlite3_bin, "-readonly", "-csv", str(db), query], stdout=out,
                           check=True)  # fmt: skip
        theirs.append(time.perf_counter() - start)
    lines = sum(1 for _ in (workdir / "sqlite3.csv").open("rb"))
    if lines != CSV_ROWS:
        raise RuntimeError(f"sqlite3 wrote {lines} lines, expected {CSV_ROWS}")
    tracemalloc.start()
    _ours(db, first, last, workdir / "ours.csv")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ratio = statistics.median(ours) / statistics.median(theirs)
    size = (workdir / "ours.csv").stat().st_size
    return [
        Figure("export_csv_1m", statistics.median(ours), "s", None, "lower",
               f"{CSV_ROWS:,} entries, {size / 2**20:.0f} MiB of CSV"),
        Figure("export_csv_sqlite3_1m", statistics.median(theirs), "s", None, "lower",
               "sqlite3 -csv running the same query on the same file"),
        Figure("export_csv_ratio", ratio, "× sqlite3", TARGET_RATIO, "lower",
               "medians of 3 runs each, alternated"),
        Figure("export_csv_peak_memory", peak / 2**20, "MiB", None, "lower",
               "tracemalloc peak while writing the million rows"),
    ]  # fmt: skip


def _xlsx_figures(workdir: Path) -> list[Figure]:
    db = workdir / "hundred-k.db"
    first, last = build(db, XLSX_ROWS, seed=2)
    times = []
    for run in range(3):
        log = VisitLog(db, readonly=True, check=False)
        try:
            exporter = _exporter(log, first, last)
            traced = run == 2
            if traced:
                tracemalloc.start()
            start = time.perf_counter()
            rows = write_xlsx(exporter, workdir / f"export-{run}.xlsx")
            elapsed = time.perf_counter() - start
            if traced:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            else:
                times.append(elapsed)
        finally:
            log.close()
        if rows != XLSX_ROWS:
            raise RuntimeError(f"wrote {rows} rows to XLSX, expected {XLSX_ROWS}")
    size = (workdir / "export-0.xlsx").stat().st_size
    return [
        Figure("export_xlsx_100k", statistics.median(times), "s", TARGET_XLSX_S, "lower",
               f"{XLSX_ROWS:,} entries + per-day sheet + chart, {size / 2**20:.1f} MiB"),
        Figure("export_xlsx_peak_memory", peak / 2**20, "MiB", None, "lower",
               "tracemalloc peak (XlsxWriter's constant_memory mode)"),
    ]  # fmt: skip


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        workdir = Path(tmp)
        return _csv_figures(workdir) + _xlsx_figures(workdir)


__all__ = ["build", "run"]
