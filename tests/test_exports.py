"""``checkpoint export`` and ``checkpoint report``: the files read back as officials get them.

A real visit log on disk, with known entries over three local days in Asia/Ho_Chi_Minh, goes
through the real command; the CSV is read back with the ``csv`` module, the workbook with
openpyxl, JSON lines with ``json``. Local midnight in Vietnam is 17:00 UTC the day before, so
entries at 23:30 and 00:30 local check which day each one belongs to.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from openpyxl.utils.escape import unescape

from appliance.core.doorway import Entry, EntryUpdate
from appliance.exports import Exporter, Period, period, write_csv, write_jsonl, write_xlsx
from appliance.i18n import text
from appliance.store import VisitLog
from tests.builders import on_disk
from tests.conftest import REPO, Result

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
BOM = "\ufeff"
AGENCY = "Sở Thông tin và Truyền thông"

HEADERS_VI = [
    "Mã lượt vào",
    "Ngày",
    "Giờ vào (UTC+07:00)",
    "Giờ ra (UTC+07:00)",
    "Loại",
    "Ứng dụng",
    "Mã ẩn danh (token)",
    "Họ và tên",
    "Cơ quan, đơn vị",
    "Số điện thoại",
    "Mục đích",
    "Đồng hồ đã đồng bộ",
]
HEADERS_EN = [
    "Entry",
    "Day",
    "Entered (UTC+07:00)",
    "Left (UTC+07:00)",
    "Kind",
    "App",
    "Tokens",
    "Name",
    "Organisation",
    "Phone",
    "Purpose",
    "Clock synchronised",
]
KIND_VI = {"app": "Có ứng dụng", "no_app": "Không phát hiện ứng dụng", "manual": "Ghi tay"}
KIND_EN = {"app": "With app", "no_app": "No app detected", "manual": "Manual"}
YES_NO = {"vi": ("có", "không"), "en": ("yes", "no")}

# Each payload Excel would run (OWASP CSV injection), and the cell it must become in a CSV.
INJECTIONS = {
    "=1+1": "'=1+1",
    "+cmd": "'+cmd",
    "-2": "'-2",
    "@SUM(A1)": "'@SUM(A1)",
    "\tX": "'\tX",
    "\rY": "'\rY",
}

NAME_NFC = "Nguyễn Văn Ánh"
ORG_NFC = "Sở Y tế Thừa Thiên Huế"
PURPOSE_NFC = "Họp giao ban, ký hồ sơ"
PHONE_PLUS = "+84 912 345 678"
NAME_NFD = unicodedata.normalize("NFD", "Trần Thị Hương")
ORG_NFD = unicodedata.normalize("NFD", "Công ty Cổ phần Đầu tư Đà Nẵng")
NAME_QUOTED = 'Đỗ "Bé" Tư, kỹ sư; 5\' cao'  # quote, comma, apostrophe inside: left alone


def at(day: int, hour: int, minute: int, second: float = 0.0, zone: ZoneInfo = HCM) -> float:
    """UNIX seconds of a local moment in March 2024."""
    whole = int(second)
    moment = datetime(2024, 3, day, hour, minute, whole, tzinfo=zone)
    return moment.timestamp() + (second - whole)


@dataclass
class Expected:
    uuid: str
    kind: str
    entered: float
    left: float | None = None
    protocol: str | None = None
    tokens: list[str] = field(default_factory=list)
    name: str | None = None
    organisation: str | None = None
    phone: str | None = None
    purpose: str | None = None
    synced: bool = True
    sensor: bool = False
    origin: str = "live"

    def local(self, when: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.entered if when is None else when, HCM)


@dataclass
class Log:
    config: Path
    database: Path
    entries: list[Expected]

    def live(
        self, first: int = 10, last: int = 12, origins: tuple[str, ...] = ("live",)
    ) -> list[Expected]:
        """The entries a period of local days of March 2024 holds, in time order."""
        start, end = at(first, 0, 0), at(last + 1, 0, 0)
        chosen = [e for e in self.entries if start <= e.entered < end and e.origin in origins]
        return sorted(chosen, key=lambda e: e.entered)

    def by_uuid(self, uuid: str) -> Expected:
        return next(e for e in self.entries if e.uuid == uuid)


def write_config(directory: Path, timezone: str = "Asia/Ho_Chi_Minh") -> Path:
    """The shape of tests/test_daemon.py's configuration, with the zone under test."""
    config = directory / "checkpoint.toml"
    config.write_text(
        f'[checkpoint]\nid = "TQ-TEST-01"\nagency = "{AGENCY}"\ntimezone = "{timezone}"\n'
        '[storage]\ndatabase = "data/visits.db"\n[privacy]\nkey_file = "data/province.key"\n'
        '[ble]\nsource = "simulate"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    return config


def token(n: int) -> str:
    return f"{n:02x}" * 16


def build_log(database: Path) -> list[Expected]:
    """The known entries, written through VisitLog as the daemon and the console do."""
    entries: list[Expected] = []
    log = VisitLog(database)
    try:

        def app(uuid: str, when: float, protocol: str, tokens: list[str], **kw: Any) -> None:
            left = kw.pop("left", None)
            synced = kw.pop("synced", True)
            seen = tuple((t, when - 5 + i) for i, t in enumerate(tokens[:1]))
            log.record(Entry(uuid, "app", when, protocol, seen), clock_synced=synced)
            log.flush()
            for i, extra in enumerate(tokens[1:], 1):  # a rotation mid-stay
                log.record(EntryUpdate(uuid, token=(extra, when + 60 * i)))
            if left is not None:
                log.record(EntryUpdate(uuid, left_at=left))
            log.flush()
            entries.append(Expected(uuid, "app", when, left, protocol, tokens, synced=synced))

        def no_app(uuid: str, when: float) -> None:
            log.record(Entry(uuid, "no_app", when, via_sensor=True))
            log.flush()
            entries.append(Expected(uuid, "no_app", when, sensor=True))

        def manual(uuid: str, when: float, name: str, **kw: Any) -> None:
            log.add_manual(name, when=when, entry_uuid=uuid, **kw)
            entries.append(Expected(uuid, "manual", when, name=name, **kw))

        # Outside the period on either side, and exactly at its start (inclusive).
        no_app("before", at(9, 23, 59, 59.5))
        no_app("after", at(13, 0, 0))
        no_app("n0-midnight", at(10, 0, 0))
        # Day 1, 2024-03-10.
        app("a1", at(10, 8, 0, 0.25), "bluezone", [token(1)], left=at(10, 8, 45, 30.75))
        no_app("n1", at(10, 9, 15))
        manual(
            "m1",
            at(10, 10, 0),
            NAME_NFC,
            organisation=ORG_NFC,
            phone=PHONE_PLUS,
            purpose=PURPOSE_NFC,
        )
        # 23:30 local is 16:30 UTC the same date: day 1, open stay, two tokens, clock unsynced.
        app("a2", at(10, 23, 30), "gaen", [token(2), token(3)], synced=False)
        # Day 2, 2024-03-11: 00:30 local is 17:30 UTC on the 10th, but it is the 11th here.
        no_app("n2", at(11, 0, 30))
        manual("m2-nfd", at(11, 9, 0), NAME_NFD, organisation=ORG_NFD, purpose="Giao hàng")
        for i, payload in enumerate(INJECTIONS):
            manual(
                f"inj-{i}",
                at(11, 11, i),
                payload,
                organisation=payload,
                phone=None,
                purpose=payload,
            )
        app("a3", at(11, 14, 0), "bluezone", [token(4)], left=at(11, 14, 20))
        no_app("n3", at(11, 16, 0))
        # Day 3, 2024-03-12.
        app("a4", at(12, 9, 0), "bluezone", [token(5)], left=at(12, 9, 10))
        manual("m3-bare", at(12, 10, 0), "Phạm Thị Ngọc Ánh")
        manual("m4-quoted", at(12, 10, 30), NAME_QUOTED, organisation="Công an phường 5")
    finally:
        log.close()
    # The demo lobby and a replayed capture write into the same file, marked by their origin.
    simulated = VisitLog(database, origin="simulated")
    try:
        simulated.record(Entry("sim-1", "no_app", at(12, 12, 0), via_sensor=True))
        simulated.flush()
    finally:
        simulated.close()
    entries.append(Expected("sim-1", "no_app", at(12, 12, 0), sensor=True, origin="simulated"))
    replay = VisitLog(database, origin="replay")
    try:
        replay.record(Entry("rep-1", "app", at(12, 13, 0), "bluezone", ((token(9), 0.0),)))
        replay.flush()
    finally:
        replay.close()
    entries.append(Expected("rep-1", "app", at(12, 13, 0), None, "bluezone", [token(9)]))
    entries[-1].origin = "replay"
    return entries


@pytest.fixture(scope="module")
def visit_log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    directory = tmp_path_factory.mktemp("exports")
    config = write_config(directory)
    database = directory / "data" / "visits.db"
    return Log(config, database, build_log(database))


@pytest.fixture
def export(cli: Callable[..., Result], visit_log: Log) -> Callable[..., Result]:
    """``checkpoint export --config … ARGS`` in-process (period 10–12 March unless given)."""

    def run(*args: str, command: str = "export") -> Result:
        period_args = [] if "--from" in args else ["--from", "2024-03-10", "--to", "2024-03-12"]
        return cli(command, "--config", str(visit_log.config), *period_args, *args)

    return run


# -- reading back ------------------------------------------------------------------------------


def csv_rows(data: str) -> list[list[str]]:
    assert data.startswith(BOM), repr(data[:10])
    return list(csv.reader(io.StringIO(data[len(BOM) :], newline="")))


def read_csv_file(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return csv_rows(raw.decode("utf-8"))


def local_text(when: float | None, zone: ZoneInfo = HCM) -> str:
    if when is None:
        return ""
    return datetime.fromtimestamp(when, zone).isoformat(timespec="seconds")


def neutral(value: str | None) -> str:
    """The expected CSV cell of typed text, written out independently of the code."""
    if value is None:
        return ""
    return INJECTIONS.get(value, "'" + value if value.startswith("+") else value)


def expected_row(e: Expected, lang: str = "vi") -> list[str]:
    yes, no = YES_NO[lang]
    kinds = KIND_VI if lang == "vi" else KIND_EN
    return [
        e.uuid,
        e.local().date().isoformat(),
        local_text(e.entered),
        local_text(e.left),
        kinds[e.kind],
        e.protocol or "",
        " ".join(e.tokens),
        neutral(e.name),
        neutral(e.organisation),
        neutral(e.phone),
        neutral(e.purpose),
        yes if e.synced else no,
    ]


def sorted_tokens(rows: list[list[str]]) -> list[list[str]]:
    """Rows with the tokens cell in a canonical order (the export does not promise one)."""
    return [[*r[:6], " ".join(sorted(r[6].split(" "))) if r[6] else "", *r[7:]] for r in rows]


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_to_a_file_has_bom_vietnamese_headers_local_times_and_exact_rows(
    export: Callable[..., Result], visit_log: Log, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "entries.csv"
    out.parent.mkdir()
    result = export("-o", str(out))
    assert result.code == 0, result.err
    assert result.out == ""
    assert list(out.parent.iterdir()) == [out]  # renamed from .part: no partial file left
    rows = read_csv_file(out)
    assert rows[0] == HEADERS_VI
    expected = visit_log.live()
    assert sorted_tokens(rows[1:]) == sorted_tokens([expected_row(e) for e in expected])
    # The file's lines are CRLF (Excel's), and quoting keeps the CR inside its cell.
    assert out.read_bytes().count(b"\r\n") == len(expected) + 1
    # Stderr: what was exported, and the simulated and replayed entries left out.
    lines = result.err.strip().splitlines()
    assert lines == [
        f"Đã xuất {len(expected)} lượt vào: {out}",
        text("left_out", "vi").format(n=2),
    ]


def test_csv_day_assignment_follows_local_midnight(
    export: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "e.csv"
    assert export("-o", str(out)).code == 0
    by_uuid = {r[0]: r for r in read_csv_file(out)[1:]}
    # 23:30 local on the 10th (16:30 UTC on the 10th).
    assert by_uuid["a2"][1:4] == ["2024-03-10", "2024-03-10T23:30:00+07:00", ""]
    # 00:30 local on the 11th (17:30 UTC on the 10th).
    assert by_uuid["n2"][1:3] == ["2024-03-11", "2024-03-11T00:30:00+07:00"]
    # Fractions of a second are cut, not rounded, and the stay's end is in local time.
    assert by_uuid["a1"][2:4] == ["2024-03-10T08:00:00+07:00", "2024-03-10T08:45:30+07:00"]
    assert "n0-midnight" in by_uuid and "before" not in by_uuid and "after" not in by_uuid


def test_csv_cells_of_each_kind(export: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "e.csv"
    assert export("-o", str(out)).code == 0
    by_uuid = {r[0]: r for r in read_csv_file(out)[1:]}
    a2 = by_uuid["a2"]
    assert a2[4:6] == ["Có ứng dụng", "gaen"]
    assert sorted(a2[6].split(" ")) == [token(2), token(3)]  # space-separated, nothing else
    assert a2[7:11] == ["", "", "", ""]  # app entries carry only their tokens
    assert a2[11] == "không"  # recorded while the clock was not synchronised
    n1 = by_uuid["n1"]
    assert n1[4:11] == ["Không phát hiện ứng dụng", "", "", "", "", "", ""]
    assert n1[11] == "có"
    m1 = by_uuid["m1"]
    assert m1[4:7] == ["Ghi tay", "", ""]
    assert m1[7:11] == [NAME_NFC, ORG_NFC, "'" + PHONE_PLUS, PURPOSE_NFC]
    # NFD is kept as typed (not normalised), code point for code point.
    m2 = by_uuid["m2-nfd"]
    assert m2[7] == NAME_NFD and m2[7] != unicodedata.normalize("NFC", NAME_NFD)
    assert m2[8] == ORG_NFD and m2[9:11] == ["", "Giao hàng"]
    assert by_uuid["m3-bare"][7:11] == ["Phạm Thị Ngọc Ánh", "", "", ""]
    assert by_uuid["m4-quoted"][7:9] == [NAME_QUOTED, "Công an phường 5"]


@pytest.mark.parametrize("payload", list(INJECTIONS))
def test_csv_neutralises_every_formula_prefix(
    payload: str, export: Callable[..., Result], visit_log: Log, tmp_path: Path
) -> None:
    out = tmp_path / "e.csv"
    assert export("--kind", "manual", "-o", str(out)).code == 0
    rows = {r[0]: r for r in read_csv_file(out)[1:]}
    uuid = f"inj-{list(INJECTIONS).index(payload)}"
    assert visit_log.by_uuid(uuid).name == payload
    row = rows[uuid]
    # A leading apostrophe, and the payload itself unaltered after it.
    assert row[7] == row[8] == row[10] == "'" + payload == INJECTIONS[payload]
    assert row[9] == ""
    # No other cell of the file starts with a prefix Excel would run.
    for cells in rows.values():
        for cell in cells:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cells


def test_csv_to_stdout_in_process_and_english_headers(
    export: Callable[..., Result], visit_log: Log
) -> None:
    result = export("--lang", "en", "-o", "-")
    assert result.code == 0, result.err
    rows = csv_rows(result.out)
    assert rows[0] == HEADERS_EN
    expected = [expected_row(e, "en") for e in visit_log.live()]
    assert sorted_tokens(rows[1:]) == sorted_tokens(expected)
    # Nothing about the export on stdout's side: the note on stderr only.
    assert result.err.strip() == text("left_out", "en").format(n=2)


def test_csv_to_a_real_stdout_is_utf8_with_bom(visit_log: Log) -> None:
    # Bytes, not text: universal newlines would turn the CR kept inside a cell into LF.
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "export", "--config", str(visit_log.config),
         "--from", "2024-03-11", "--to", "2024-03-11", "--kind", "manual"],
        capture_output=True, timeout=60, env={**os.environ, "CHECKPOINT_CONFIG": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"\xef\xbb\xbf") and done.stdout.count(b"\xef\xbb\xbf") == 1
    rows = csv_rows(done.stdout.decode("utf-8"))
    assert rows[0] == HEADERS_VI
    assert [r[0] for r in rows[1:]] == ["m2-nfd", *(f"inj-{i}" for i in range(len(INJECTIONS)))]
    assert rows[1][7].encode("utf-8") == NAME_NFD.encode("utf-8")
    assert rows[-1][7] == "'\rY"
    assert done.stderr == b""  # nothing simulated that day: no note


def test_kind_filter(export: Callable[..., Result], visit_log: Log, tmp_path: Path) -> None:
    for kind in ("app", "no_app", "manual"):
        out = tmp_path / f"{kind}.csv"
        assert export("--kind", kind, "-o", str(out)).code == 0
        uuids = [r[0] for r in read_csv_file(out)[1:]]
        assert uuids == [e.uuid for e in visit_log.live() if e.kind == kind]


def test_period_bounds_are_inclusive_local_days(
    export: Callable[..., Result], visit_log: Log
) -> None:
    result = export("--from", "2024-03-11", "--to", "2024-03-11")
    assert result.code == 0
    uuids = [r[0] for r in csv_rows(result.out)[1:]]
    assert uuids == [e.uuid for e in visit_log.live(11, 11)]
    assert uuids[0] == "n2" and "a2" not in uuids  # 00:30 local in, 23:30 the day before out
    result = export("--from", "2024-03-09", "--to", "2024-03-13")
    uuids = [r[0] for r in csv_rows(result.out)[1:]]
    assert uuids[0] == "before" and uuids[-1] == "after"
    assert len(uuids) == len(visit_log.live(9, 13))


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2024-13-01", "2024-03-12"),
        ("2024-02-30", "2024-03-12"),
        ("2024/03/10", "2024-03-12"),
        ("2024-03-10", "12-03-2024"),
        ("2024-03-12", "2024-03-10"),  # --to before --from
    ],
)
@pytest.mark.parametrize("command", ["export", "report"])
def test_bad_dates_exit_2_with_one_line(
    command: str, first: str, last: str, export: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "never.csv"
    extra = ["-o", str(out)] if command == "export" else []
    result = export("--from", first, "--to", last, *extra, command=command)
    assert result.code == 2
    assert result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("checkpoint: ")
    assert "Traceback" not in result.err
    assert not out.exists() and not out.with_name("never.csv.part").exists()


@pytest.mark.parametrize("where", ["missing/e.csv", "."])
def test_an_output_that_cannot_be_written_is_one_line(
    where: str, export: Callable[..., Result], tmp_path: Path
) -> None:
    for fmt in ("csv", "xlsx", "json"):
        result = export("--format", fmt, "-o", str(tmp_path / where))
        assert result.code == 2, result.err
        assert result.err.count("\n") == 1 and result.err.startswith("checkpoint: -o ")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no F.part anywhere
    assert not (tmp_path.parent / f"{tmp_path.name}.part").exists()


# -- the file itself: private, made new, never through a link -------------------------------------


def read_back(path: Path, fmt: str) -> list[Any]:
    """The export's first row (CSV, workbook) or object (JSON lines), as read by its reader."""
    if fmt == "csv":
        return read_csv_file(path)[0]
    if fmt == "json":
        return [json.loads(path.read_text(encoding="utf-8").splitlines()[0])["entry"]]
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    return [cell.value for cell in next(sheet.iter_rows(max_row=1))]


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_an_export_of_names_and_phones_is_made_0640_whatever_the_umask(
    fmt: str, export: Callable[..., Result], tmp_path: Path
) -> None:
    """A plain open() made it 0644 under the usual umask 022: readable by every user."""
    out = tmp_path / f"entries.{fmt}"
    umask = os.umask(0o022)
    try:
        result = export("--format", fmt, "-o", str(out))
    finally:
        os.umask(umask)
    assert result.code == 0, result.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert read_back(out, fmt)  # a whole file, renamed into place
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_a_link_planted_at_the_partial_name_is_replaced_never_written_through(
    fmt: str, export: Callable[..., Result], tmp_path: Path
) -> None:
    """In a folder others can write, F.part linked to a file of the exporting user's (or of
    root's) would have been overwritten with the export, or a file created where it points."""
    victim = tmp_path / "victim.conf"
    victim.write_text("the victim's own content\n")
    victim.chmod(0o600)
    nowhere = tmp_path / "made-through-a-link"
    for target, link in ((victim, "entries"), (nowhere, "dangling")):
        out = tmp_path / f"{link}.{fmt}"
        Path(f"{out}.part").symlink_to(target)
        result = export("--format", fmt, "-o", str(out))
        assert result.code == 0, result.err
        assert not Path(f"{out}.part").is_symlink() and not Path(f"{out}.part").exists()
        assert not out.is_symlink() and stat.S_IMODE(out.stat().st_mode) == 0o640
        assert read_back(out, fmt)
    assert victim.read_text() == "the victim's own content\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not nowhere.exists()


def test_a_partial_file_left_by_an_interrupted_export_is_replaced(
    export: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "entries.csv"
    Path(f"{out}.part").write_text("half an export, world-readable")
    Path(f"{out}.part").chmod(0o666)
    assert export("-o", str(out)).code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and read_back(out, "csv") == HEADERS_VI
    Path(f"{out}.part").mkdir()  # a name it cannot take: one line, nothing written
    Path(f"{out}.part", "inside").write_text("kept")
    result = export("-o", str(tmp_path / "entries.csv"))
    assert result.code == 1 and result.err.count("\n") == 1
    assert result.err.startswith(f"checkpoint: export failed: cannot replace {out}.part: ")


def test_an_empty_period_writes_only_the_header(
    export: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "empty.csv"
    result = export("--from", "2024-04-01", "--to", "2024-04-30", "-o", str(out))
    assert result.code == 0
    assert read_csv_file(out) == [HEADERS_VI]
    assert result.err.strip() == f"Đã xuất 0 lượt vào: {out}"


def test_include_simulated_adds_simulated_never_replay(
    export: Callable[..., Result], visit_log: Log, tmp_path: Path
) -> None:
    out = tmp_path / "demo.csv"
    result = export("--include-simulated", "--lang", "en", "-o", str(out))
    assert result.code == 0
    uuids = [r[0] for r in read_csv_file(out)[1:]]
    assert uuids == [e.uuid for e in visit_log.live(origins=("live", "simulated"))]
    assert "sim-1" in uuids and "rep-1" not in uuids
    assert result.err.strip().splitlines()[-1].startswith("1 simulated or replayed")


# -- JSON lines --------------------------------------------------------------------------------


def test_json_lines(export: Callable[..., Result], visit_log: Log, tmp_path: Path) -> None:
    out = tmp_path / "e.jsonl"
    assert export("--format", "json", "-o", str(out)).code == 0
    text = out.read_text(encoding="utf-8")
    assert not text.startswith(BOM) and text.endswith("\n")
    items = [json.loads(line) for line in text.splitlines()]
    expected = visit_log.live()
    assert [i["entry"] for i in items] == [e.uuid for e in expected]
    common = {"entry", "kind", "protocol", "entered_at", "left_at", "entered_local",
              "left_local", "tokens", "clock_synced", "via_sensor"}  # fmt: skip
    personal = {"name", "organisation", "phone", "purpose"}
    for item, e in zip(items, expected, strict=True):
        assert set(item) == (common | personal if e.kind == "manual" else common)
        assert item["kind"] == e.kind and item["protocol"] == e.protocol
        assert item["entered_at"].endswith("+00:00")
        assert datetime.fromisoformat(item["entered_at"]).timestamp() == pytest.approx(e.entered)
        assert item["entered_local"] == local_text(e.entered)
        assert item["entered_local"].endswith("+07:00")
        if e.left is None:
            assert item["left_at"] is None and item["left_local"] is None
        else:
            assert datetime.fromisoformat(item["left_at"]).timestamp() == pytest.approx(e.left)
            assert item["left_local"] == local_text(e.left)
        assert sorted(item["tokens"]) == sorted(e.tokens)
        assert item["clock_synced"] is e.synced and item["via_sensor"] is e.sensor
        if e.kind == "manual":
            # Machines get the typed text as typed: no apostrophe, NFD kept.
            assert [item[k] for k in ("name", "organisation", "phone", "purpose")] == [
                e.name, e.organisation, e.phone, e.purpose]  # fmt: skip
    # The 23:30 / 00:30 pair: the UTC date and the local date differ for the second.
    by_uuid = {i["entry"]: i for i in items}
    assert by_uuid["a2"]["entered_at"].startswith("2024-03-10T16:30:00")
    assert by_uuid["n2"]["entered_at"].startswith("2024-03-10T17:30:00")
    assert by_uuid["n2"]["entered_local"] == "2024-03-11T00:30:00+07:00"
    assert by_uuid["inj-4"]["name"] == "\tX" and by_uuid["inj-5"]["purpose"] == "\rY"
    assert by_uuid["m1"]["phone"] == PHONE_PLUS


# -- XLSX --------------------------------------------------------------------------------------


def ooxml(value: Any) -> Any:
    """A string cell as Excel shows it: openpyxl leaves OOXML's ``_x000D_`` escapes of control
    characters in inline strings (xlsxwriter writes CR that way, as Excel does)."""
    return unescape(value) if isinstance(value, str) else value


def naive_local(when: float | None) -> datetime | None:
    if when is None:
        return None
    return datetime.fromtimestamp(int(when), HCM).replace(tzinfo=None)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_xlsx_sheets_values_summary_and_chart(
    lang: str, export: Callable[..., Result], visit_log: Log, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "entries.xlsx"
    out.parent.mkdir()
    result = export("--format", "xlsx", "--lang", lang, "-o", str(out))
    assert result.code == 0, result.err
    assert list(out.parent.iterdir()) == [out]
    book = openpyxl.load_workbook(out)
    names = {"vi": ["Lượt vào", "Tổng hợp theo ngày"], "en": ["Entries", "Per day"]}[lang]
    assert book.sheetnames == names
    entries, summary = book[names[0]], book[names[1]]

    rows = [tuple(ooxml(v) for v in row) for row in entries.iter_rows(values_only=True)]
    header = HEADERS_VI if lang == "vi" else HEADERS_EN
    assert list(rows[0]) == header  # the offset stated in the time columns' headers
    expected = visit_log.live()
    assert len(rows) == len(expected) + 1
    yes, no = YES_NO[lang]
    kinds = KIND_VI if lang == "vi" else KIND_EN
    for row, e in zip(rows[1:], expected, strict=True):
        local = e.local()
        assert row[0] == e.uuid
        assert row[1] == datetime(local.year, local.month, local.day)
        assert row[2] == naive_local(e.entered)
        assert row[3] == naive_local(e.left)  # None while the stay is open
        assert row[4] == kinds[e.kind]
        assert (row[5] or None) == e.protocol  # an empty string cell where there is none
        assert sorted((row[6] or "").split()) == sorted(e.tokens)
        # Typed text exactly as typed: no apostrophe in a workbook, NFD kept.
        assert list(row[7:11]) == [e.name, e.organisation, e.phone, e.purpose]
        assert row[11] == (yes if e.synced else no)
    # Typed text is stored as strings, never as formulas.
    for r in range(2, len(rows) + 1):
        for c in range(8, 12):
            cell = entries.cell(r, c)
            if cell.value is not None:
                assert cell.data_type == "s", (cell.coordinate, cell.value)
    by_uuid = {row[0]: row for row in rows[1:]}
    assert by_uuid["inj-0"][7] == "=1+1" and by_uuid["inj-5"][10] == "\rY"
    assert by_uuid["m1"][9] == PHONE_PLUS
    assert by_uuid["a2"][2] == datetime(2024, 3, 10, 23, 30)
    assert by_uuid["n2"][1] == datetime(2024, 3, 11)

    srows = list(summary.iter_rows(values_only=True))
    if lang == "vi":
        head = ["Ngày", "Có ứng dụng", "Không phát hiện ứng dụng", "Ghi tay", "Tổng",
                "Tỷ lệ cài đặt"]  # fmt: skip
    else:
        head = ["Day", "With app", "No app detected", "Manual", "Total", "Adoption"]
    assert list(srows[0][:6]) == head
    assert [list(r[:6]) for r in srows[1:]] == [
        [datetime(2024, 3, 10), 2, 2, 1, 5, 0.5],
        [datetime(2024, 3, 11), 1, 2, 7, 10, pytest.approx(1 / 3, abs=1e-4)],
        [datetime(2024, 3, 12), 1, 0, 2, 3, 1.0],
        ["Tổng" if lang == "vi" else "Total", 4, 4, 10, 18, 0.5],
    ]
    charts = summary._charts
    assert len(charts) == 1
    chart = charts[0]
    assert isinstance(chart, openpyxl.chart.LineChart)
    (series,) = chart.series
    sheet_ref = f"'{names[1]}'" if " " in names[1] else names[1]
    assert series.val.numRef.f == f"{sheet_ref}!$F$2:$F$4"  # the rates, not the total row
    category = series.cat.numRef or series.cat.strRef
    assert category.f == f"{sheet_ref}!$A$2:$A$4"
    assert entries._charts == []


def test_xlsx_day_with_no_sensed_entry_leaves_the_rate_empty(
    export: Callable[..., Result], tmp_path: Path
) -> None:
    out = tmp_path / "e.xlsx"
    assert export("--format", "xlsx", "--from", "2024-03-20", "--to", "2024-03-21",
                  "-o", str(out)).code == 0  # fmt: skip
    book = openpyxl.load_workbook(out)
    entries, summary = book.worksheets
    assert entries.max_row == 1
    srows = list(summary.iter_rows(values_only=True))
    assert [list(r[:6]) for r in srows[1:]] == [
        [datetime(2024, 3, 20), 0, 0, 0, 0, None],
        [datetime(2024, 3, 21), 0, 0, 0, 0, None],
        ["Tổng", 0, 0, 0, 0, None],
    ]


# -- report ------------------------------------------------------------------------------------

DAYS = [
    {"day": "2024-03-10", "app": 2, "no_app": 2, "manual": 1, "total": 5, "adoption_rate": 0.5},
    {"day": "2024-03-11", "app": 1, "no_app": 2, "manual": 7, "total": 10,
     "adoption_rate": 0.3333},
    {"day": "2024-03-12", "app": 1, "no_app": 0, "manual": 2, "total": 3, "adoption_rate": 1.0},
]  # fmt: skip
TOTAL = {"app": 4, "no_app": 4, "manual": 10, "total": 18, "adoption_rate": 0.5}


def test_report_json(export: Callable[..., Result]) -> None:
    result = export("--format", "json", command="report")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["days"] == DAYS
    assert report["total"] == TOTAL
    assert report["agency"] == AGENCY and report["timezone"] == "Asia/Ho_Chi_Minh"
    assert (report["from"], report["to"]) == ("2024-03-10", "2024-03-12")


def test_report_json_lists_zero_days_and_no_rate_without_sensed_entries(
    export: Callable[..., Result],
) -> None:
    report = json.loads(export("--from", "2024-03-08", "--to", "2024-03-10", "--format",
                               "json", command="report").out)  # fmt: skip
    assert [d["day"] for d in report["days"]] == ["2024-03-08", "2024-03-09", "2024-03-10"]
    assert report["days"][0] == {"day": "2024-03-08", "app": 0, "no_app": 0, "manual": 0,
                                 "total": 0, "adoption_rate": None}  # fmt: skip
    assert report["days"][1]["no_app"] == 1  # 23:59:59.5 local on the 9th
    report = json.loads(export("--from", "2024-03-20", "--to", "2024-03-22", "--format",
                               "json", command="report").out)  # fmt: skip
    assert len(report["days"]) == 3
    assert report["total"] == {"app": 0, "no_app": 0, "manual": 0, "total": 0,
                               "adoption_rate": None}  # fmt: skip


def test_report_include_simulated(export: Callable[..., Result]) -> None:
    report = json.loads(export("--include-simulated", "--format", "json", command="report").out)
    assert report["days"][2]["no_app"] == 1 and report["days"][2]["adoption_rate"] == 0.5
    assert report["total"]["no_app"] == 5 and report["total"]["app"] == 4  # never the replay


def test_report_csv(export: Callable[..., Result]) -> None:
    result = export("--format", "csv", command="report")
    assert result.code == 0
    rows = csv_rows(result.out)
    assert rows == [
        ["Ngày", "Có ứng dụng", "Không phát hiện ứng dụng", "Ghi tay", "Tổng", "Tỷ lệ cài đặt"],
        ["2024-03-10", "2", "2", "1", "5", "50.0%"],
        ["2024-03-11", "1", "2", "7", "10", "33.3%"],
        ["2024-03-12", "1", "0", "2", "3", "100.0%"],
        ["Tổng", "4", "4", "10", "18", "50.0%"],
    ]
    rows = csv_rows(export("--format", "csv", "--lang", "en", "--from", "2024-03-20", "--to",
                           "2024-03-20", command="report").out)  # fmt: skip
    assert rows == [
        ["Day", "With app", "No app detected", "Manual", "Total", "Adoption"],
        ["2024-03-20", "0", "0", "0", "0", "-"],
        ["Total", "0", "0", "0", "0", "-"],
    ]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_report_table(
    lang: str, export: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    result = export("--lang", lang, command="report")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    title = "Báo cáo lượt vào" if lang == "vi" else "Entries at"
    assert any(title in line and AGENCY in line for line in lines)
    for day, rate in (("2024-03-10", "50.0%"), ("2024-03-11", "33.3%"),
                      ("2024-03-12", "100.0%")):  # fmt: skip
        (line,) = [line for line in lines if day in line and "│" in line]  # not the title
        assert rate in line
    total = "Tổng" if lang == "vi" else "Total"
    (line,) = [line for line in lines if total in line and "│" in line]  # the footer
    assert [cell.strip() for cell in line.split("│")[1:-1]] == [total, "4", "4", "10", "18",
                                                                "50.0%"]  # fmt: skip


def test_xlsx_to_a_pipe(visit_log: Log) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "export", "--config", str(visit_log.config),
         "--from", "2024-03-10", "--to", "2024-03-12", "--format", "xlsx", "-o", "-"],
        capture_output=True, timeout=60, env={**os.environ, "CHECKPOINT_CONFIG": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"PK")
    book = openpyxl.load_workbook(io.BytesIO(done.stdout))
    assert book.worksheets[0].max_row == len(visit_log.live()) + 1


# -- the two paths: SQLite formatting (one UTC offset) and Python (any zone) -------------------


@contextmanager
def open_exporter(database: Path, first: date, last: date, zone: str = "Asia/Ho_Chi_Minh",
                  **options: Any) -> Iterator[Exporter]:  # fmt: skip
    """An exporter over the log read-only, as `checkpoint export` opens it."""
    log = VisitLog(database, readonly=True, check=False)
    try:
        yield Exporter(log, period(first, last, zone), **options)
    finally:
        log.close()


def test_exports_and_the_store_never_import_each_other() -> None:
    """The command hands the visit log to the exporter; neither package loads the other."""
    probe = (
        "import sys, importlib; importlib.import_module(sys.argv[1]);"
        " print(sorted(m for m in sys.modules if m.startswith(sys.argv[2])))"
    )
    for package, other in (("appliance.exports", "appliance.store"),
                           ("appliance.store", "appliance.exports")):  # fmt: skip
        done = subprocess.run([sys.executable, "-c", probe, package, other], cwd=REPO,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]", (package, done.stdout)


def test_fixed_offset() -> None:
    march = (date(2024, 3, 30), date(2024, 4, 1))
    assert period(*march, "Asia/Ho_Chi_Minh").fixed_offset() == 7 * 3600
    assert Period(*march, BERLIN).fixed_offset() is None
    assert Period(date(2024, 10, 26), date(2024, 10, 28), BERLIN).fixed_offset() is None
    assert Period(date(2024, 1, 1), date(2024, 1, 31), BERLIN).fixed_offset() == 3600
    assert Period(date(2024, 7, 1), date(2024, 7, 31), BERLIN).fixed_offset() == 7200
    assert Period(date(2024, 1, 1), date(2024, 12, 31), HCM).fixed_offset() == 25200


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("kind", [None, "manual", "app"])
def test_both_paths_write_the_same_rows(lang: str, kind: str | None, visit_log: Log) -> None:
    span = (date(2024, 3, 9), date(2024, 3, 13))
    outputs = []
    for fast in (True, False):
        with open_exporter(visit_log.database, *span, lang=lang, kind=kind) as exporter:
            if not fast:
                exporter.offset = None  # what a zone with DST over the period gets
            out = io.StringIO(newline="")
            count = write_csv(exporter, out)
            rows = csv_rows(out.getvalue())
            assert count == len(rows) - 1
            outputs.append((rows, exporter.days(), out.getvalue()))
    (fast_rows, fast_days, fast_text), (slow_rows, slow_days, slow_text) = outputs
    assert fast_rows[0][2].endswith("(UTC+07:00)") and "UTC" not in slow_rows[0][2]
    assert fast_rows[1:] == slow_rows[1:]
    # Byte for byte: SQLite's quoting is the csv module's (commas, quotes, CR and LF).
    assert fast_text.split("\r\n", 1)[1] == slow_text.split("\r\n", 1)[1]
    assert fast_days == slow_days


@pytest.fixture(scope="module")
def edge_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Entries a fraction of a millisecond before a second, and before local midnight."""
    directory = tmp_path_factory.mktemp("edges")
    config = write_config(directory)
    log = VisitLog(directory / "data" / "visits.db")
    try:
        log.record(Entry("late", "no_app", at(10, 23, 59, 59.9996), via_sensor=True))
        log.record(Entry("second", "no_app", at(10, 8, 0, 0.9997), via_sensor=True))
        log.flush()
    finally:
        log.close()
    return config


def test_a_split_second_before_midnight_stays_on_its_day(
    cli: Callable[..., Result], edge_log: Path
) -> None:
    base = ["--config", str(edge_log), "--from", "2024-03-10", "--to", "2024-03-10"]
    rows = {r[0]: r for r in csv_rows(cli("export", *base).out)[1:]}
    lines = cli("export", *base, "--format", "json").out.splitlines()
    items = {i["entry"]: i for i in map(json.loads, lines)}
    # Cut to the second, as every other format and the period's bounds do; never rounded up
    # into the next second, or into the next day outside the period.
    assert rows["late"][1:3] == ["2024-03-10", "2024-03-10T23:59:59+07:00"]
    assert rows["second"][2] == "2024-03-10T08:00:00+07:00"
    assert items["late"]["entered_local"] == rows["late"][2]
    assert items["second"]["entered_local"] == rows["second"][2]
    report = json.loads(cli("report", *base, "--format", "json").out)
    assert report["days"] == [{"day": "2024-03-10", "app": 0, "no_app": 2, "manual": 0,
                               "total": 2, "adoption_rate": 0.0}]  # fmt: skip


# -- a time zone with summer time: each row its own offset --------------------------------------


def utc(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def berlin_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("berlin")
    config = write_config(directory, "Europe/Berlin")
    log = VisitLog(directory / "data" / "visits.db")
    try:
        moments = {
            "mar30-noon": utc(2024, 3, 30, 11, 0),  # 12:00 +01:00
            "mar30-2330": utc(2024, 3, 30, 22, 30),  # 23:30 +01:00
            "mar31-0030": utc(2024, 3, 30, 23, 30),  # 00:30 +01:00 on the 31st
            "mar31-0300": utc(2024, 3, 31, 1, 0),  # 03:00 +02:00, the first summer second
            "mar31-2330": utc(2024, 3, 31, 21, 30),  # 23:30 +02:00
            "apr01-0030": utc(2024, 3, 31, 22, 30),  # 00:30 +02:00 on 1 April
            "oct27-0230a": utc(2024, 10, 27, 0, 30),  # 02:30 +02:00
            "oct27-0230b": utc(2024, 10, 27, 1, 30),  # 02:30 +01:00, the same wall clock
        }
        for uuid, when in moments.items():
            log.record(Entry(uuid, "no_app", when, via_sensor=True))
        # A stay across the change: in at 01:50 +01:00, out at 03:10 +02:00.
        log.record(Entry("stay", "app", utc(2024, 3, 31, 0, 50), "bluezone",
                         ((token(7), utc(2024, 3, 31, 0, 50)),)))  # fmt: skip
        log.record(EntryUpdate("stay", left_at=utc(2024, 3, 31, 1, 10)))
        log.flush()
        log.add_manual("Lê Thị Thu", organisation="Đại sứ quán", when=utc(2024, 3, 31, 8, 0),
                       entry_uuid="manual")  # fmt: skip
    finally:
        log.close()
    return config


def test_summer_time_rows_carry_their_own_offset(
    cli: Callable[..., Result], berlin_log: Path
) -> None:
    result = cli("export", "--config", str(berlin_log), "--from", "2024-03-30", "--to",
                 "2024-04-01", "--lang", "en")  # fmt: skip
    assert result.code == 0, result.err
    rows = csv_rows(result.out)
    assert rows[0][2:4] == ["Entered", "Left"]  # no single offset to state: each row has its own
    got = {r[0]: r[1:4] for r in rows[1:]}
    assert got == {
        "mar30-noon": ["2024-03-30", "2024-03-30T12:00:00+01:00", ""],
        "mar30-2330": ["2024-03-30", "2024-03-30T23:30:00+01:00", ""],
        "mar31-0030": ["2024-03-31", "2024-03-31T00:30:00+01:00", ""],
        "stay": ["2024-03-31", "2024-03-31T01:50:00+01:00", "2024-03-31T03:10:00+02:00"],
        "mar31-0300": ["2024-03-31", "2024-03-31T03:00:00+02:00", ""],
        "manual": ["2024-03-31", "2024-03-31T10:00:00+02:00", ""],
        "mar31-2330": ["2024-03-31", "2024-03-31T23:30:00+02:00", ""],
        "apr01-0030": ["2024-04-01", "2024-04-01T00:30:00+02:00", ""],
    }
    assert [r[0] for r in rows[1:]][:3] == ["mar30-noon", "mar30-2330", "mar31-0030"]
    report = json.loads(cli("report", "--config", str(berlin_log), "--from", "2024-03-30",
                            "--to", "2024-04-01", "--format", "json").out)  # fmt: skip
    assert [(d["day"], d["app"], d["no_app"], d["manual"]) for d in report["days"]] == [
        ("2024-03-30", 0, 2, 0),
        ("2024-03-31", 1, 3, 1),
        ("2024-04-01", 0, 1, 0),
    ]
    assert report["total"]["total"] == 8
    assert report["total"]["adoption_rate"] == 0.1429  # 1 / (1 + 6)


def test_autumn_repeated_hour_is_told_apart_by_the_offset(
    cli: Callable[..., Result], berlin_log: Path, tmp_path: Path
) -> None:
    base = ["--config", str(berlin_log), "--from", "2024-10-27", "--to", "2024-10-27"]
    rows = csv_rows(cli("export", *base).out)
    assert [r[2] for r in rows[1:]] == ["2024-10-27T02:30:00+02:00", "2024-10-27T02:30:00+01:00"]
    items = [json.loads(x) for x in cli("export", *base, "--format", "json").out.splitlines()]
    assert [i["entered_at"][:19] for i in items] == ["2024-10-27T00:30:00", "2024-10-27T01:30:00"]
    out = tmp_path / "oct.xlsx"
    assert cli("export", *base, "--format", "xlsx", "-o", str(out)).code == 0
    sheet = openpyxl.load_workbook(out).worksheets[0]
    assert sheet.cell(1, 3).value == "Giờ vào (Europe/Berlin)"
    # A workbook's times have no offset: the zone is named in the header instead.
    assert [sheet.cell(r, 3).value for r in (2, 3)] == [datetime(2024, 10, 27, 2, 30)] * 2


# -- progress and memory -----------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("writer", ["csv", "json", "xlsx"])
def test_progress_adds_up_to_the_rows(
    fast: bool, writer: str, visit_log: Log, tmp_path: Path
) -> None:
    with open_exporter(visit_log.database, date(2024, 3, 9), date(2024, 3, 13)) as exporter:
        if not fast:
            exporter.offset = None
        steps: list[int] = []
        if writer == "xlsx":
            count = write_xlsx(exporter, tmp_path / "p.xlsx", steps.append)
        else:
            function = write_csv if writer == "csv" else write_jsonl
            count = function(exporter, io.StringIO(), steps.append)
        assert count == exporter.count() == len(visit_log.live(9, 13)) == sum(steps)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal")
def test_the_progress_bar_goes_to_the_terminal_never_into_stdout(
    visit_log: Log, tmp_path: Path
) -> None:
    import pty

    leader, follower = pty.openpty()
    with (tmp_path / "stdout").open("wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "appliance", "export", "--config", str(visit_log.config),
             "--from", "2024-03-10", "--to", "2024-03-12", "-o", str(tmp_path / "e.csv")],
            stdout=stdout, stderr=follower, timeout=60,
            env={**os.environ, "CHECKPOINT_CONFIG": "", "TERM": "xterm"},
        )  # fmt: skip
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: nothing more
            break
        if not chunk:
            break
        terminal += chunk
    os.close(leader)
    assert done.returncode == 0
    assert (tmp_path / "stdout").read_bytes() == b""
    rows = len(visit_log.live())
    assert f"{rows}/{rows}".encode() in terminal  # the bar, drawn on stderr's terminal
    assert f"{rows} lượt vào".encode() in terminal


def fill(database: Path, n: int, days: int) -> None:
    """``n`` entries evenly over ``days`` local days from 1 March 2024, a third of each kind,
    generated by SQLite itself (fast) after VisitLog has made the schema."""
    VisitLog(database).close()
    start = at(1, 0, 0)
    conn = sqlite3.connect(database)
    with conn:
        conn.execute(
            "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < :n)"
            " INSERT INTO entries (uuid, kind, protocol, entered_at, left_at, clock_synced,"
            " via_sensor, created_at)"
            " SELECT printf('gen-%07d', i),"
            " CASE i % 3 WHEN 0 THEN 'app' WHEN 1 THEN 'no_app' ELSE 'manual' END,"
            " CASE WHEN i % 3 = 0 THEN 'bluezone' END, :start + i * :step + 0.25,"
            " CASE WHEN i % 3 = 0 THEN :start + i * :step + 300.25 END, 1, i % 3 = 1, :start"
            " FROM c",
            {"n": n, "start": start, "step": days * 86400 / n},
        )
        conn.execute(
            "INSERT INTO entry_tokens (entry_id, token, first_seen)"
            " SELECT id, printf('%032x', id), entered_at FROM entries WHERE kind = 'app'"
        )
        conn.execute(
            "INSERT INTO manual_details (entry_id, name, organisation, phone, purpose)"
            " SELECT id, 'Nguyễn Thị Hồng ' || id, 'Sở Y tế', '+84 912 345 678', '=HYPERLINK(1)'"
            " FROM entries WHERE kind = 'manual'"
        )
    conn.close()
    small_page_cache(database)


def small_page_cache(database: Path, kib: int = 256) -> None:
    """SQLite's page cache (2 MiB) out of the way of the memory measure: the size is kept in
    the file's header (``PRAGMA default_cache_size``, in pages), so the visit log the export
    opens takes it without anyone touching the store's connection."""
    [(page_size,)] = on_disk(database, "PRAGMA page_size")
    pages = kib * 1024 // page_size
    on_disk(database, f"PRAGMA default_cache_size = {pages}")
    # Every new connection reads it; a SQLite built without deprecated pragmas would not.
    assert on_disk(database, "PRAGMA cache_size") == [(pages,)]


# The export in a process of its own, which reports how much its peak resident memory grew
# while writing (SQLite's own allocations included, which tracemalloc does not see; and
# tracemalloc would make these runs 5-10 times slower). A smaller CHUNK than the default
# lets a few thousand rows be many chunks: memory is O(CHUNK), never O(rows).
MEMORY_CHILD = """
import json, re, resource, sys
from datetime import date, timedelta
from pathlib import Path
import xlsxwriter  # imported before measuring, like the rest
import appliance.exports as exports
from appliance.store import VisitLog

database, days, fmt, path, out = sys.argv[1:6]
log = VisitLog(database, readonly=True, check=False)
# fill() made the file's page cache 256 KiB (SQLite's 2 MiB out of the way)
first = date(2024, 3, 1)
span = exports.period(first, first + timedelta(days=int(days) - 1), "Asia/Ho_Chi_Minh")
exporter = exports.Exporter(log, span, chunk=int(sys.argv[6]))
if path == "slow":
    exporter.offset = None


def status(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\\s+(\\d+)", f.read()).group(1))


try:  # Linux: reset the high-water mark to what is resident now
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS")
except OSError:  # elsewhere: the process's peak so far (imports included)
    before = None
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if fmt == "xlsx":
    rows = exports.write_xlsx(exporter, Path(out))
else:
    writer = exports.write_csv if fmt == "csv" else exports.write_jsonl
    with open(out, "w", encoding="utf-8", newline="") as f:
        rows = writer(exporter, f)
if before is not None:
    growth = status("VmHWM") - before
else:
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start
    growth = growth // 1024 if sys.platform == "darwin" else growth
print(json.dumps({"rows": rows, "growth_kib": growth}))
"""

# (format, path): (database, days of the small run, days of the large run)
MEMORY_RUNS = {
    ("csv", "fast"): ("big", 1, 10),  # 20,000 and 200,000 rows
    ("csv", "slow"): ("small", 1, 6),  # 2,000 and 12,000
    ("json", "fast"): ("small", 1, 6),
    ("xlsx", "fast"): ("small", 1, 6),  # xlsxwriter takes ~0.1 ms a row
}
ROWS_PER_DAY = {"big": 20_000, "small": 2_000}
MEMORY_CHUNK = 1000


@pytest.fixture(scope="module")
def memory_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """Every export of the memory tests, in child processes side by side."""
    directory = tmp_path_factory.mktemp("memory")
    children: dict[tuple[str, str, int], tuple[Path, subprocess.Popen[str]]] = {}

    def start(name: str) -> None:
        for (fmt, path), (db, *sizes) in MEMORY_RUNS.items():
            if db != name:
                continue
            for days in sizes:
                out = directory / f"{fmt}-{path}-{days}.{fmt}"
                command = [sys.executable, "-c", MEMORY_CHILD, str(directory / f"{db}.db"),
                           str(days), fmt, path, str(out), str(MEMORY_CHUNK)]  # fmt: skip
                child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, cwd=REPO)  # fmt: skip
                children[fmt, path, days] = (out, child)

    fill(directory / "big.db", 200_000, 10)
    start("big")  # the longest first; the rest run beside it
    fill(directory / "small.db", 12_000, 6)
    start("small")
    results: dict[tuple[str, str], Any] = {}
    for (fmt, path, _days), (out, child) in sorted(children.items()):
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        results.setdefault((fmt, path), []).append((json.loads(stdout), out))
    return results


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "path"), list(MEMORY_RUNS))
def test_memory_stays_flat_however_many_rows(
    fmt: str, path: str, memory_runs: dict[tuple[str, str], Any]
) -> None:
    db, small_days, large_days = MEMORY_RUNS[fmt, path]
    (small, _), (large, out) = memory_runs[fmt, path]
    assert small["rows"] == small_days * ROWS_PER_DAY[db]
    assert large["rows"] == large_days * ROWS_PER_DAY[db]
    # Holding every row costs hundreds of bytes each (CHUNK = 10**9, i.e. fetchall, grows
    # 15 MiB -> 145 MiB for CSV, 1 -> 6 MiB for the XLSX); streamed, it stays ~1.5 MiB.
    assert large["growth_kib"] < 2 * small["growth_kib"] + 1024, (small, large)
    # And the large file is whole.
    if fmt == "xlsx":
        sheet = openpyxl.load_workbook(out, read_only=True).worksheets[0]
        assert sheet.max_row == large["rows"] + 1
    else:
        with out.open(encoding="utf-8", newline="") as f:
            lines = sum(1 for _ in (csv.reader(f) if fmt == "csv" else f))
        assert lines == large["rows"] + (fmt == "csv")
