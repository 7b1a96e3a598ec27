"""The btsnoop capture reader: real Android logs, round trips, and damaged files."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.ble.btsnoop import (
    AdvertisingReport,
    CaptureReader,
    read_reports,
    write_capture,
)
from appliance.errors import CaptureError
from tests.conftest import real_capture

FILE_HEADER = 16
RECORD_HEADER = 24


def legacy(n: int, rssi: int | None = -60) -> AdvertisingReport:
    return AdvertisingReport(
        time=1_600_000_000.123456 + n,
        address=f"C0:FF:EE:00:{n:02X}:0{n % 10}",
        address_type=1,
        event_type=n % 5,
        rssi=rssi,
        data=bytes([2, 0x01, 0x06, 3, 0x03, 0x6F, 0xFD]) + bytes([n]),
        extended=False,
    )


def extended(n: int, rssi: int | None = -71) -> AdvertisingReport:
    return AdvertisingReport(
        time=1_700_000_000.000001 + n,
        address=f"5A:0B:1C:2D:3E:{n:02X}",
        address_type=0,
        event_type=0x0013,  # connectable, scannable, legacy PDU
        rssi=rssi,
        data=bytes([len(b"Phone") + 1, 0x09]) + b"Phone" + bytes(150),
        extended=True,
    )


SAMPLE = [legacy(1), extended(2), legacy(3, rssi=None), extended(4, rssi=None), legacy(5, rssi=8)]


def record_offsets(path: Path) -> list[int]:
    """Byte offsets of each record header in a capture we wrote."""
    data = path.read_bytes()
    offsets = []
    pos = FILE_HEADER
    while pos < len(data):
        offsets.append(pos)
        (included,) = struct.unpack_from(">I", data, pos + 4)
        pos += RECORD_HEADER + included
    return offsets


def report_offsets(path: Path) -> list[int]:
    """Byte offsets of the H4 records carrying an LE Meta event (the reports we wrote)."""
    data = path.read_bytes()
    return [
        pos for pos in record_offsets(path) if data[pos + RECORD_HEADER : pos + 26] == b"\x04\x3e"
    ]


# --- real captures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "records", "reports", "year"),
    [
        ("android-lock-2019.btsnoop", 690, 26, 2019),
        ("android-bench-2019.btsnoop", 29_317, 382, 2019),
        ("android-gatt-2021.btsnoop", 149, 0, 2021),
    ],
)
def test_real_android_captures_read_the_counts_wireshark_found(
    name: str, records: int, reports: int, year: int
) -> None:
    path = real_capture(name)
    found, stats = read_reports(path)
    assert stats.datalink == 1002
    assert stats.records == records
    assert stats.reports == len(found) == reports
    assert stats.extended_reports == 0
    assert stats.bad_events == 0
    assert stats.skipped_records == records - reports  # one report per event in these logs
    for report in found:
        assert datetime.fromtimestamp(report.time, UTC).year == year
        assert len(report.address) == 17
        assert report.rssi is not None and -127 <= report.rssi <= 20


def test_real_capture_reports_are_in_time_order_with_known_beacon() -> None:
    path = real_capture("android-lock-2019.btsnoop")
    found, _ = read_reports(path)
    times = [report.time for report in found]
    assert times == sorted(times)
    # The first report is an iBeacon: Apple company ID, type 0x02, length 0x15.
    assert found[0].address == "E6:45:9D:5A:2E:EE"
    assert b"\xff\x4c\x00\x02\x15" in found[0].data


# --- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("datalink", [1001, 1002, 2001])
@pytest.mark.parametrize("noise", [True, False])
def test_written_capture_reads_back_exactly(tmp_path: Path, datalink: int, noise: bool) -> None:
    path = tmp_path / "round.btsnoop"
    write_capture(path, SAMPLE, datalink=datalink, extra_noise=noise)
    found, stats = read_reports(path)
    assert found == SAMPLE
    assert stats.datalink == datalink
    assert stats.reports == 5
    assert stats.extended_reports == 2
    assert stats.bad_events == 0
    noise_records = (3 * len(SAMPLE) + (datalink == 2001)) if noise else 0
    assert stats.records == len(SAMPLE) + noise_records
    assert stats.skipped_records == noise_records


def test_noise_records_are_commands_acl_and_command_complete_events(tmp_path: Path) -> None:
    path = tmp_path / "noise.btsnoop"
    write_capture(path, [legacy(1)], datalink=1002)
    data = path.read_bytes()
    kinds = [data[pos + RECORD_HEADER] for pos in record_offsets(path)]
    assert kinds == [0x01, 0x04, 0x02, 0x04]  # command, Command Complete, ACL, the report
    _, stats = read_reports(path)
    assert stats.events == 2


def test_unavailable_rssi_is_none_and_extended_flag_survives(tmp_path: Path) -> None:
    path = tmp_path / "rssi.btsnoop"
    write_capture(path, [extended(1, rssi=None), legacy(2, rssi=-127)])
    found, _ = read_reports(path)
    assert [(r.rssi, r.extended) for r in found] == [(None, True), (-127, False)]


def test_addresses_are_written_least_significant_byte_first(tmp_path: Path) -> None:
    path = tmp_path / "address.btsnoop"
    write_capture(path, [legacy(1)], extra_noise=False)
    assert bytes.fromhex("010100EEFFC0") in path.read_bytes()


def test_reports_stream_from_a_generator(tmp_path: Path) -> None:
    path = tmp_path / "stream.btsnoop"
    write_capture(path, [legacy(n) for n in range(50)])
    reader = CaptureReader(path)
    stream = reader.reports()
    assert next(stream) == legacy(0)
    assert reader.stats.reports == 1
    del stream  # closing the generator closes the file


# --- damaged files -------------------------------------------------------------------------------


def read_until_error(path: Path) -> tuple[list[AdvertisingReport], CaptureError]:
    found: list[AdvertisingReport] = []
    with pytest.raises(CaptureError) as caught:
        found.extend(CaptureReader(path).reports())
    return found, caught.value


def test_file_cut_in_a_record_header_raises_after_the_earlier_reports(tmp_path: Path) -> None:
    path = tmp_path / "cut.btsnoop"
    write_capture(path, SAMPLE)
    cut = report_offsets(path)[3]
    path.write_bytes(path.read_bytes()[: cut + 10])
    found, error = read_until_error(path)
    assert found == SAMPLE[:3]
    assert error.offset == cut
    assert f"byte {cut}" in str(error)
    assert "record 16 header" in str(error)  # three noise records before each report


def test_file_cut_in_a_record_body_raises_after_the_earlier_reports(tmp_path: Path) -> None:
    path = tmp_path / "cut.btsnoop"
    write_capture(path, SAMPLE, datalink=2001)
    cut = record_offsets(path)[-1]  # the fifth report
    path.write_bytes(path.read_bytes()[: cut + RECORD_HEADER + 5])
    found, error = read_until_error(path)
    assert found == SAMPLE[:4]
    assert error.offset == cut
    assert f"byte {cut}" in str(error)
    assert "record 21 body" in str(error)


def test_bad_magic_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "bad.btsnoop"
    path.write_bytes(b"PK\x03\x04" + bytes(40))
    found, error = read_until_error(path)
    assert found == []
    assert "not a btsnoop capture" in str(error)
    assert error.offset == 0


def test_unsupported_datalink_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bcsp.btsnoop"
    path.write_bytes(b"btsnoop\0" + struct.pack(">II", 1, 1003))
    _, error = read_until_error(path)
    assert "unsupported datalink 1003" in str(error)
    assert error.offset == 12


def test_data_length_running_past_the_event_skips_only_that_event(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.btsnoop"
    write_capture(path, SAMPLE, extra_noise=False)
    data = bytearray(path.read_bytes())
    # Record 1 body: H4 type, 0x3E, length, subevent, count, event type, address type, address,
    # then the data length, which we make run far past the event.
    data_length_at = report_offsets(path)[0] + RECORD_HEADER + 1 + 2 + 1 + 1 + 1 + 1 + 6
    assert data[data_length_at] == len(SAMPLE[0].data)
    data[data_length_at] = 200
    path.write_bytes(bytes(data))
    found, stats = read_reports(path)
    assert found == SAMPLE[1:]
    assert stats.bad_events == 1
    assert stats.records == 5


def test_event_length_running_past_the_record_is_a_bad_event(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.btsnoop"
    write_capture(path, SAMPLE, extra_noise=False)
    data = bytearray(path.read_bytes())
    data[report_offsets(path)[1] + RECORD_HEADER + 2] = 255  # the HCI event parameter length
    path.write_bytes(bytes(data))
    found, stats = read_reports(path)
    assert found == [SAMPLE[0], *SAMPLE[2:]]
    assert stats.bad_events == 1


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.btsnoop"
    path.write_bytes(b"")
    _, error = read_until_error(path)
    assert "empty" in str(error)
    assert error.offset == 0


def test_file_cut_in_the_file_header_says_truncated(tmp_path: Path) -> None:
    path = tmp_path / "short.btsnoop"
    path.write_bytes(b"btsnoop\0\0\0")
    _, error = read_until_error(path)
    assert "truncated" in str(error)
    assert error.offset == 0


def test_header_only_file_has_no_reports(tmp_path: Path) -> None:
    path = tmp_path / "header.btsnoop"
    write_capture(path, [], datalink=2001)
    assert path.stat().st_size == FILE_HEADER
    found, stats = read_reports(path)
    assert found == []
    assert stats.datalink == 2001
    assert stats.records == 0


def test_missing_file_is_a_capture_error(tmp_path: Path) -> None:
    _, error = read_until_error(tmp_path / "nowhere.btsnoop")
    assert "cannot open capture" in str(error)
