"""The inventory officials fill in Excel: one row per door unit (agency, door, hostname, and
optionally its checkpoint ID and notes). Read whole and checked whole, so that every bad row is
reported, with its line number, before the collector is asked for a single code."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.errors import InventoryError, InventoryProblem, UsageError

if TYPE_CHECKING:
    import _csv  # csv.reader's type, which has line_num

# Column names, compared after NFC, case folding and turning "_" and "-" into spaces; the
# Vietnamese ones are what a spreadsheet made in a Vietnamese office is likely to say.
COLUMNS: dict[str, tuple[str, ...]] = {
    "agency": ("agency", "cơ quan", "đơn vị"),
    "door": ("door", "cửa", "vị trí"),
    "hostname": ("hostname", "host", "host name", "tên máy"),
    "checkpoint_id": ("checkpoint id", "checkpoint", "id", "mã điểm kiểm soát", "điểm kiểm soát"),
    "notes": ("notes", "note", "ghi chú"),
}
REQUIRED = ("agency", "door", "hostname")
DELIMITERS = (",", ";", "\t")  # Excel writes ";" where the list separator is one
MAX_TEXT = 200  # the collector's limit for an agency or a door
MAX_ID = 64  # the collector's limit for a checkpoint ID
MAX_HOSTNAME = 253  # RFC 1123 / RFC 1035
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Device:
    line: int
    hostname: str
    agency: str
    door: str
    checkpoint_id: str | None
    notes: str


def hostname_problem(name: str) -> str | None:
    """Why ``name`` is not an RFC 1123 host name, or None."""
    if not name:
        return "no hostname"
    if len(name) > MAX_HOSTNAME:
        return f"hostname is {len(name)} characters; at most {MAX_HOSTNAME}"
    for label in name.split("."):
        if not _LABEL.fullmatch(label):
            return (
                f"hostname {name!r} is not a valid host name (RFC 1123: letters a-z, digits"
                " and inner hyphens, 1 to 63 per dot-separated part)"
            )
    if name.replace(".", "").isdigit():
        return f"hostname {name!r} is all digits (it would read as an address)"
    return None


def _key(header: str) -> str:
    text = unicodedata.normalize("NFC", header).strip().casefold()
    return re.sub(r"[\s_-]+", " ", text)


_ALIASES = {_key(alias): column for column, names in COLUMNS.items() for alias in names}


def _text(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the inventory {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start}): in Excel, save it as"
            " 'CSV UTF-8 (Comma delimited)'"
        ) from None


def _delimiter(text: str) -> str:
    """The delimiter under which the first line names the most known columns."""
    first = next((line for line in text.splitlines() if line.strip()), "")

    def known(delimiter: str) -> int:
        row = next(csv.reader([first], delimiter=delimiter), [])
        return sum(_key(cell) in _ALIASES for cell in row)

    return max(DELIMITERS, key=known)


def read_inventory(path: Path) -> list[Device]:
    """Every device of the inventory, or an InventoryError listing every problem."""
    text = _decode(path)
    try:
        return _devices(path, text)
    except csv.Error as exc:  # e.g. a quote opened and never closed
        raise InventoryError(path, [InventoryProblem(None, f"not CSV: {exc}")]) from None


def _devices(path: Path, text: str) -> list[Device]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header, header_line = _header(path, reader)
    problems: list[InventoryProblem] = []
    columns = _columns(path, header, header_line, problems)
    seen = _Seen()
    devices: list[Device] = []
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # Excel leaves rows of empty cells behind
        device, found = _device(row, start, len(header), columns, seen)
        problems.extend(InventoryProblem(start, message) for message in found)
        if device is not None:
            devices.append(device)
    if not devices and not problems:
        problems.append(InventoryProblem(None, "no devices: only a header"))
    if problems:
        raise InventoryError(path, problems)
    return devices


def _header(path: Path, reader: _csv.Reader) -> tuple[list[str], int]:
    """The first line with anything in it, and its line number."""
    for row in reader:
        if any(cell.strip() for cell in row):
            return row, reader.line_num
    raise InventoryError(path, [InventoryProblem(None, "empty: no header line")])


def _columns(
    path: Path, header: list[str], header_line: int, problems: list[InventoryProblem]
) -> dict[str, int]:
    """Each known column's index (the first, if named twice: a problem too). Without every
    required column the rows cannot be read at all, so that ends the reading here."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = _ALIASES.get(_key(cell))
        if column is None:
            continue
        if column in columns:
            problems.append(InventoryProblem(header_line, f"two columns for {column}: {cell!r}"))
        columns.setdefault(column, index)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        problems.append(
            InventoryProblem(
                header_line,
                f"no {', '.join(missing)} column (the header needs agency, door, hostname;"
                f" it has {', '.join(repr(c) for c in header)})",
            )
        )
        raise InventoryError(path, problems)
    return columns


class _Seen:
    """Host names and checkpoint IDs taken so far, by the line that took them."""

    def __init__(self) -> None:
        self.hostnames: dict[str, int] = {}
        self.ids: dict[str, int] = {}

    def hostname(self, hostname: str, line: int) -> str | None:
        problem = hostname_problem(hostname)
        if problem:
            return problem
        if hostname in self.hostnames:
            return f"hostname {hostname} is also on line {self.hostnames[hostname]}"
        self.hostnames[hostname] = line
        return None

    def checkpoint_id(self, checkpoint_id: str, line: int) -> str | None:
        if len(checkpoint_id) > MAX_ID or not checkpoint_id.isprintable():
            return (
                f"checkpoint ID {checkpoint_id!r} is not usable (1 to {MAX_ID}"
                " printable characters)"
            )
        if checkpoint_id in self.ids:
            return f"checkpoint ID {checkpoint_id} is also on line {self.ids[checkpoint_id]}"
        self.ids[checkpoint_id] = line
        return None


def _device(
    row: list[str], line: int, width: int, columns: dict[str, int], seen: _Seen
) -> tuple[Device | None, list[str]]:
    """One row as a device, or None and every problem it has."""

    def value_of(column: str) -> str:
        index = columns.get(column)
        return _text(row[index]) if index is not None and index < len(row) else ""

    found: list[str] = []
    extra = [c for c in row[width:] if c.strip()]
    if extra:
        found.append(
            f"{width + len(extra)} cells where the header has {width}"
            " (a comma inside a value must be quoted)"
        )
    agency, door, hostname = value_of("agency"), value_of("door"), value_of("hostname").lower()
    checkpoint_id = value_of("checkpoint_id") or None
    found += [p for p in (_text_problem("agency", agency), _text_problem("door", door)) if p]
    # Both are checked, and taken when usable, even on a row with other problems: a second row
    # with the same name is then reported against the first.
    problem = seen.hostname(hostname, line)
    if problem:
        found.append(problem)
    problem = seen.checkpoint_id(checkpoint_id, line) if checkpoint_id is not None else None
    if problem:
        found.append(problem)
    if found:
        return None, found
    return Device(line, hostname, agency, door, checkpoint_id, value_of("notes")), []


def _text_problem(name: str, value: str) -> str | None:
    if not value:
        return f"no {name}"
    if len(value) > MAX_TEXT:
        return f"{name} is {len(value)} characters; at most {MAX_TEXT}"
    if not value.isprintable():
        return f"{name} has control characters"
    return None
