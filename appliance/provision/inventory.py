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

from appliance.errors import InventoryError, InventoryProblem, UsageError

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
    problems: list[InventoryProblem] = []
    header: list[str] = []
    header_line = 0
    for row in reader:
        if any(cell.strip() for cell in row):
            header, header_line = row, reader.line_num
            break
    if not header:
        raise InventoryError(path, [InventoryProblem(None, "empty: no header line")])
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

    devices: list[Device] = []
    hostnames: dict[str, int] = {}
    ids: dict[str, int] = {}
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # Excel leaves rows of empty cells behind

        def value_of(column: str, row: list[str] = row) -> str:
            index = columns.get(column)
            return _text(row[index]) if index is not None and index < len(row) else ""

        found: list[str] = []
        extra = [c for c in row[len(header) :] if c.strip()]
        if extra:
            found.append(
                f"{len(header) + len(extra)} cells where the header has {len(header)}"
                " (a comma inside a value must be quoted)"
            )
        agency, door, hostname = value_of("agency"), value_of("door"), value_of("hostname").lower()
        checkpoint_id = value_of("checkpoint_id") or None
        for name, value in (("agency", agency), ("door", door)):
            if not value:
                found.append(f"no {name}")
            elif len(value) > MAX_TEXT:
                found.append(f"{name} is {len(value)} characters; at most {MAX_TEXT}")
            elif not value.isprintable():
                found.append(f"{name} has control characters")
        problem = hostname_problem(hostname)
        if problem:
            found.append(problem)
        elif hostname in hostnames:
            found.append(f"hostname {hostname} is also on line {hostnames[hostname]}")
        else:
            hostnames[hostname] = start
        if checkpoint_id is not None:
            if len(checkpoint_id) > MAX_ID or not checkpoint_id.isprintable():
                found.append(f"checkpoint ID {checkpoint_id!r} is not usable (1 to {MAX_ID}"
                             " printable characters)")  # fmt: skip
            elif checkpoint_id in ids:
                found.append(f"checkpoint ID {checkpoint_id} is also on line {ids[checkpoint_id]}")
            else:
                ids[checkpoint_id] = start
        if found:
            problems.extend(InventoryProblem(start, message) for message in found)
            continue
        devices.append(Device(start, hostname, agency, door, checkpoint_id, value_of("notes")))
    if not devices and not problems:
        problems.append(InventoryProblem(None, "no devices: only a header"))
    if problems:
        raise InventoryError(path, problems)
    return devices
