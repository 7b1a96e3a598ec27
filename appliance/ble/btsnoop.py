"""Read btsnoop captures (``btmon -w``, Android HCI snoop logs) and pull out LE advertising reports.

Also writes small valid captures, so tests can replay exactly the advertisements they need.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from appliance.errors import CaptureError

MAGIC = b"btsnoop\0"
VERSION = 1

DATALINK_H1 = 1001  # un-encapsulated HCI: the record flags say what the packet is
DATALINK_H4 = 1002  # HCI UART: the first byte says what the packet is
DATALINK_MONITOR = 2001  # Linux monitor (btmon): the record flags carry the opcode
DATALINKS = (DATALINK_H1, DATALINK_H4, DATALINK_MONITOR)

# Microseconds from midnight 1 Jan year 0 (AD) to the UNIX epoch, as the btsnoop format defines.
EPOCH_OFFSET_US = 0x00DCDDB30F2F8000

H4_COMMAND = 0x01
H4_ACL = 0x02
H4_EVENT = 0x04

H1_RECEIVED = 0x01
H1_COMMAND_OR_EVENT = 0x02

MONITOR_NEW_INDEX = 0
MONITOR_COMMAND = 2
MONITOR_EVENT = 3
MONITOR_ACL_TX = 4

EVENT_COMMAND_COMPLETE = 0x0E
EVENT_LE_META = 0x3E
SUBEVENT_ADVERTISING_REPORT = 0x02
SUBEVENT_EXTENDED_ADVERTISING_REPORT = 0x0D

RSSI_NOT_AVAILABLE = 127

_FILE_HEADER = struct.Struct(">8sII")
_RECORD_HEADER = struct.Struct(">IIIIq")
# Extended report, from event_type up to and including data_length (before the data): event type,
# address type, address, primary PHY, secondary PHY, SID, TX power, RSSI, periodic advertising
# interval, direct address type, direct address, data length. Reading skips the fields we ignore.
_EXTENDED_FIXED = struct.Struct("<HB6sBBBbbHB6sB")
_EXTENDED_READ = struct.Struct("<HB6s4xb2x7xB")
# A record body bigger than this is checked against the file size before it is read, so a
# corrupt length cannot make us allocate gigabytes. Real HCI packets are at most ~64 KiB.
_LARGE_RECORD = 1 << 20


@dataclass(frozen=True, slots=True)
class AdvertisingReport:
    """One advertising report as the controller handed it to the host."""

    time: float  # UNIX seconds from the capture's timestamp
    address: str  # "AA:BB:CC:DD:EE:FF", most significant byte first
    address_type: int
    event_type: int  # legacy: 0 ADV_IND … 4 SCAN_RSP; extended: the 16-bit properties
    rssi: int | None  # dBm; None when the controller says it is not available (127)
    data: bytes  # the AD structures
    extended: bool


@dataclass
class CaptureStats:
    """What a read found.

    ``skipped_records`` are records that are not advertising report events; corrupt advertising
    report events are counted in ``bad_events`` instead.
    """

    datalink: int = 0
    records: int = 0
    events: int = 0
    reports: int = 0  # advertising reports (legacy + extended)
    extended_reports: int = 0
    bad_events: int = 0
    skipped_records: int = 0


class _BadEvent(Exception):
    """An advertising report event whose lengths do not fit inside it."""


def _address(raw: bytes) -> str:
    # HCI carries addresses least significant byte first; people write them the other way round.
    return ":".join(f"{b:02X}" for b in reversed(raw))


def _rssi(value: int) -> int | None:
    return None if value == RSSI_NOT_AVAILABLE else value


def _signed(value: int) -> int:
    return value - 256 if value > 127 else value


def _legacy_reports(params: bytes, time: float) -> list[AdvertisingReport]:
    """Parse LE Advertising Report parameters (after the subevent byte), report after report.

    The specification lays the fields out as arrays, but BlueZ and every controller in practice
    (which sends one report per event) treat them as sequential records; we do what BlueZ does.
    """
    if not params:
        raise _BadEvent("no report count")
    count = params[0]
    pos = 1
    end = len(params)
    found = []
    for _ in range(count):
        if pos + 9 > end:
            raise _BadEvent("report header runs past the event")
        event_type = params[pos]
        address_type = params[pos + 1]
        address = _address(params[pos + 2 : pos + 8])
        length = params[pos + 8]
        data_start = pos + 9
        pos = data_start + length
        if pos + 1 > end:  # the data and the RSSI byte after it must both fit
            raise _BadEvent("data length runs past the event")
        found.append(
            AdvertisingReport(
                time=time,
                address=address,
                address_type=address_type,
                event_type=event_type,
                rssi=_rssi(_signed(params[pos])),
                data=params[data_start:pos],
                extended=False,
            )
        )
        pos += 1
    return found


def _extended_reports(params: bytes, time: float) -> list[AdvertisingReport]:
    """Parse LE Extended Advertising Report parameters (after the subevent byte)."""
    if not params:
        raise _BadEvent("no report count")
    count = params[0]
    pos = 1
    end = len(params)
    found = []
    for _ in range(count):
        if pos + _EXTENDED_READ.size > end:
            raise _BadEvent("report header runs past the event")
        event_type, address_type, raw_address, rssi, length = _EXTENDED_READ.unpack_from(
            params, pos
        )
        data_start = pos + _EXTENDED_READ.size
        pos = data_start + length
        if pos > end:
            raise _BadEvent("data length runs past the event")
        found.append(
            AdvertisingReport(
                time=time,
                address=_address(raw_address),
                address_type=address_type,
                event_type=event_type,
                rssi=_rssi(rssi),
                data=params[data_start:pos],
                extended=True,
            )
        )
    return found


class CaptureReader:
    """Stream the advertising reports out of one btsnoop file, counting what it skips."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.stats = CaptureStats()

    def reports(self) -> Iterator[AdvertisingReport]:
        """Yield every LE advertising report in file order.

        Damage to the file (truncation, bad magic, unknown datalink) raises ``CaptureError``
        only when reached, so every report before it has already been yielded.
        """
        self.stats = stats = CaptureStats()
        with self._open() as handle:
            stats.datalink = datalink = self._read_file_header(handle)
            offset = _FILE_HEADER.size
            while True:
                record_number = stats.records + 1
                header = handle.read(_RECORD_HEADER.size)
                if not header:
                    return
                if len(header) < _RECORD_HEADER.size:
                    raise self._cut_short(
                        f"record {record_number} header", offset, len(header), _RECORD_HEADER.size
                    )
                _original, included, flags, _drops, timestamp = _RECORD_HEADER.unpack(header)
                if included > _LARGE_RECORD:
                    available = os.fstat(handle.fileno()).st_size - offset - _RECORD_HEADER.size
                    if available < included:
                        raise self._cut_short(
                            f"record {record_number} body", offset, available, included
                        )
                body = handle.read(included)
                if len(body) < included:
                    raise self._cut_short(
                        f"record {record_number} body", offset, len(body), included
                    )
                stats.records += 1
                offset += _RECORD_HEADER.size + included

                event = self._event(datalink, flags, body)
                if event is None:
                    stats.skipped_records += 1
                    continue
                stats.events += 1
                time = (timestamp - EPOCH_OFFSET_US) / 1_000_000
                try:
                    found = self._event_reports(event, time)
                except _BadEvent:
                    stats.bad_events += 1
                    continue
                if found is None:
                    stats.skipped_records += 1
                    continue
                stats.reports += len(found)
                if found and found[0].extended:
                    stats.extended_reports += len(found)
                yield from found

    def _open(self) -> BinaryIO:
        # O_NONBLOCK: a FIFO (or a device) named as the capture must not hang the open; only a
        # plain file is a capture, and for one the flag changes nothing.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise CaptureError(f"cannot open capture {self.path}: {exc.strerror}") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CaptureError(f"{self.path} is not a plain file, not a btsnoop capture", offset=0)
        return os.fdopen(fd, "rb")

    def _read_file_header(self, handle: BinaryIO) -> int:
        header = handle.read(_FILE_HEADER.size)
        if not header:
            raise CaptureError(f"{self.path} is empty, not a btsnoop capture", offset=0)
        if len(header) < _FILE_HEADER.size and MAGIC.startswith(header[:8]):
            raise CaptureError(
                f"{self.path} is truncated: file header has {len(header)} of 16 bytes", offset=0
            )
        if len(header) < _FILE_HEADER.size or header[:8] != MAGIC:
            raise CaptureError(
                f"{self.path} is not a btsnoop capture (no 'btsnoop' magic at byte 0)", offset=0
            )
        _magic, version, datalink = _FILE_HEADER.unpack(header)
        if version != VERSION:
            raise CaptureError(
                f"{self.path}: unsupported btsnoop version {version} at byte 8", offset=8
            )
        if datalink not in DATALINKS:
            raise CaptureError(
                f"{self.path}: unsupported datalink {datalink} at byte 12 "
                f"(can read 1001 HCI, 1002 HCI UART, 2001 Linux monitor)",
                offset=12,
            )
        return int(datalink)

    def _cut_short(self, what: str, offset: int, got: int, wanted: int) -> CaptureError:
        return CaptureError(
            f"{self.path} is truncated: {what} at byte {offset} has {got} of {wanted} bytes",
            offset=offset,
        )

    @staticmethod
    def _event(datalink: int, flags: int, body: bytes) -> bytes | None:
        """The HCI event (code, length, parameters) in a record, or None if it is not one."""
        if datalink == DATALINK_H4:
            return body[1:] if body[:1] == b"\x04" else None
        if datalink == DATALINK_H1:
            wanted = H1_RECEIVED | H1_COMMAND_OR_EVENT
            return body if flags & wanted == wanted else None
        return body if flags & 0xFFFF == MONITOR_EVENT else None

    @staticmethod
    def _event_reports(event: bytes, time: float) -> list[AdvertisingReport] | None:
        """The reports in an HCI event; None if it is not an advertising report event."""
        if len(event) < 2:
            raise _BadEvent("event header cut short")
        if event[0] != EVENT_LE_META or len(event) < 3:
            return None
        subevent = event[2]
        if subevent not in (SUBEVENT_ADVERTISING_REPORT, SUBEVENT_EXTENDED_ADVERTISING_REPORT):
            return None
        # The parameter length byte is itself a length: the record may hold fewer bytes.
        end = 2 + event[1]
        if end > len(event):
            raise _BadEvent("parameter length runs past the record")
        params = event[3:end]
        if subevent == SUBEVENT_ADVERTISING_REPORT:
            return _legacy_reports(params, time)
        return _extended_reports(params, time)


def read_reports(path: str | os.PathLike[str]) -> tuple[list[AdvertisingReport], CaptureStats]:
    """Read a whole capture; ``CaptureError`` propagates (the reports read so far are lost)."""
    reader = CaptureReader(path)
    found = list(reader.reports())
    return found, reader.stats


# --- writing, for tests -------------------------------------------------------------------------


def _raw_address(address: str) -> bytes:
    raw = bytes.fromhex(address.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a Bluetooth address: {address!r}")
    return raw[::-1]


def _report_event(report: AdvertisingReport) -> bytes:
    """An LE Meta event carrying one (legacy or extended) advertising report."""
    rssi = RSSI_NOT_AVAILABLE if report.rssi is None else report.rssi
    address = _raw_address(report.address)
    if report.extended:
        # Primary PHY 1M, no secondary PHY, no SID (0xFF), TX power not available (127).
        fields = (1, 0, 0xFF, 127, rssi, 0, 0, bytes(6), len(report.data))
        fixed = _EXTENDED_FIXED.pack(report.event_type, report.address_type, address, *fields)
        params = bytes([SUBEVENT_EXTENDED_ADVERTISING_REPORT, 1]) + fixed + report.data
    else:
        params = (
            bytes([SUBEVENT_ADVERTISING_REPORT, 1, report.event_type, report.address_type])
            + address
            + bytes([len(report.data)])
            + report.data
            + struct.pack("b", rssi)
        )
    if len(params) > 255:
        raise ValueError(f"advertising data too long for one event: {len(report.data)} bytes")
    return bytes([EVENT_LE_META, len(params)]) + params


# Unrelated traffic a real capture is full of: LE Set Scan Enable, an ACL fragment, and the
# Command Complete for the command.
_NOISE_COMMAND = bytes.fromhex("0c20020100")
_NOISE_ACL = bytes.fromhex("01200700030004000a0300")
_NOISE_COMMAND_COMPLETE = bytes([EVENT_COMMAND_COMPLETE, 4, 1]) + bytes.fromhex("0c2000")
# Monitor "new index": type (primary), bus (UART), address, 8-byte name.
_NOISE_NEW_INDEX = bytes([0, 3]) + bytes.fromhex("112233445566") + b"hci0\0\0\0\0"


def _record(datalink: int, kind: str, packet: bytes) -> tuple[int, bytes]:
    """(flags, body) for one packet of ``kind`` ("command", "event", "acl") in ``datalink``."""
    if datalink == DATALINK_MONITOR:
        opcode = {"command": MONITOR_COMMAND, "event": MONITOR_EVENT, "acl": MONITOR_ACL_TX}
        return opcode[kind], packet
    # Direction and command/event flags, as both H1 and Android's H4 logs set them.
    flags = {"command": H1_COMMAND_OR_EVENT, "event": 0x03, "acl": 0x00}[kind]
    if datalink == DATALINK_H1:
        return flags, packet
    h4 = {"command": H4_COMMAND, "event": H4_EVENT, "acl": H4_ACL}[kind]
    return flags, bytes([h4]) + packet


def write_capture(
    path: str | os.PathLike[str],
    reports: Iterable[AdvertisingReport],
    datalink: int = DATALINK_H4,
    extra_noise: bool = True,
) -> None:
    """Write a valid btsnoop file: one event per report, with unrelated records between them."""
    if datalink not in DATALINKS:
        raise ValueError(f"unsupported datalink {datalink}")

    def record(flags: int, body: bytes, time: float) -> bytes:
        timestamp = round(time * 1_000_000) + EPOCH_OFFSET_US
        return _RECORD_HEADER.pack(len(body), len(body), flags, 0, timestamp) + body

    with open(path, "wb") as out:
        out.write(_FILE_HEADER.pack(MAGIC, VERSION, datalink))
        first = True
        for report in reports:
            if extra_noise:
                if first and datalink == DATALINK_MONITOR:
                    out.write(record(MONITOR_NEW_INDEX, _NOISE_NEW_INDEX, report.time))
                for kind, packet in (
                    ("command", _NOISE_COMMAND),
                    ("event", _NOISE_COMMAND_COMPLETE),
                    ("acl", _NOISE_ACL),
                ):
                    out.write(record(*_record(datalink, kind, packet), report.time))
            first = False
            out.write(record(*_record(datalink, "event", _report_event(report)), report.time))
