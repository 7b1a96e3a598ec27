"""Capture replay and the exposure check, end to end through the `checkpoint` command.

The tests write their own btsnoop captures with phones whose IDs come from known keys, replay
them into a visit log on disk, then ask whether the "confirmed case" passed through.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from appliance.ble.btsnoop import AdvertisingReport, write_capture
from appliance.protocols import bluezone_keys, frames, gaen_keys
from tests.conftest import real_capture, run_checkpoint

CASE_DAILY_KEY = bytes(range(32))
OTHER_DAILY_KEY = bytes(range(100, 132))
CASE_TEK = bytes(range(16))
DAY = date(2020, 8, 20)
T0 = datetime(2020, 8, 20, 2, 10, tzinfo=UTC).timestamp()  # 09:10 in Hanoi, slot 8 UTC


def bluezone_visit(
    key: bytes, start: float, seconds: float, mac: str, rssi: int = -60
) -> list[AdvertisingReport]:
    """A phone near the door for ``seconds``, rotating its ID at quarter-hours as the app does."""
    ids = bluezone_keys.day_ids(key)
    reports = []
    t = start
    while t < start + seconds:
        slot = bluezone_keys.slot_of(datetime.fromtimestamp(t, UTC))
        reports.append(
            AdvertisingReport(t, mac, 1, 0, rssi, frames.bluezone_android(ids[slot]), False)
        )
        t += 0.7
    return reports


def gaen_visit(tek: bytes, start: float, seconds: float, mac: str) -> list[AdvertisingReport]:
    reports = []
    t = start
    while t < start + seconds:
        interval = int(t // 600)
        rpi = gaen_keys.rpis(tek, interval, 1)[0]
        reports.append(AdvertisingReport(t, mac, 1, 3, -62, frames.gaen(rpi), True))
        t += 0.3
    return reports


def replay(capture: Path, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`checkpoint replay` into the test's visit log (the one `exposure check` reads)."""
    database = str(config.parent / "visits.db")
    return run_checkpoint(["replay", str(capture), "--config", str(config), "--database", database,
                           *extra])  # fmt: skip


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    key = tmp_path / "province.key"
    key.write_bytes(bytes(range(50, 82)))
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[storage]\ndatabase = "visits.db"\n[privacy]\nkey_file = "province.key"\n'
        '[gpio]\nenabled = false\n[ble]\nsource = "none"\n'
    )
    capture = tmp_path / "door.btsnoop"
    reports = (
        bluezone_visit(CASE_DAILY_KEY, T0, 25 * 60, "4A:00:00:00:00:01")  # across 2 boundaries
        + bluezone_visit(OTHER_DAILY_KEY, T0 + 600, 10 * 60, "4A:00:00:00:00:02", rssi=-64)
        + gaen_visit(CASE_TEK, T0 + 3600, 5 * 60, "5B:00:00:00:00:03")
        + bluezone_visit(OTHER_DAILY_KEY, T0 + 7200, 60, "4A:00:00:00:00:04", rssi=-95)  # outside
        + [
            AdvertisingReport(
                T0 + 5, "6C:00:00:00:00:05", 1, 0, -50, frames.apple_nearby_info(), False
            )
        ]
    )
    reports.sort(key=lambda r: r.time)
    write_capture(capture, reports, datalink=2001)
    return config, capture


def test_replay_uses_the_capture_timestamps_and_counts_app_phones(setup) -> None:  # type: ignore[no-untyped-def]
    config, capture = setup
    proc = replay(capture, config, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["app_phones"] == 4  # heard, including the weak one outside…
    assert summary["entries"] == {"app": 3}  # …which never came near the door
    assert summary["first"].startswith("2020-08-20T02:10:00")
    sent = len(gaen_visit(CASE_TEK, T0 + 3600, 5 * 60, "5B:00:00:00:00:03"))
    assert summary["app_reports_by_protocol"]["gaen"] == sent
    assert summary["error"] is None


def test_exposure_check_finds_the_bluezone_case_across_rotations(setup) -> None:  # type: ignore[no-untyped-def]
    config, capture = setup
    assert replay(capture, config).returncode == 0
    proc = run_checkpoint([
        "exposure", "check", "--config", str(config), "--protocol", "bluezone",
        "--daily-key", CASE_DAILY_KEY.hex(), "--date", DAY.isoformat(), "--json",
    ])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    matches = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(matches) == 1
    match = matches[0]
    assert match["entered_at"].startswith("2020-08-20T02:10:0")
    assert match["left_at"].startswith("2020-08-20T02:34:5")
    assert match["entered_local"].startswith("2020-08-20T09:10:0")
    assert match["matched_tokens"] == 3  # slots 8, 9 and 10 were all seen
    assert match["overlapping_app_entries"] == 1  # the other Bluezone phone, not the GAEN one


def test_exposure_check_finds_the_gaen_case(setup) -> None:  # type: ignore[no-untyped-def]
    config, capture = setup
    replay(capture, config)
    first_interval = int((T0 + 3600) // 600) // 144 * 144  # the TEK's rolling start
    proc = run_checkpoint([
        "exposure", "check", "--config", str(config), "--protocol", "gaen",
        "--tek", CASE_TEK.hex(), "--interval", str(first_interval), "--json",
    ])  # fmt: skip
    matches = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [m["protocol"] for m in matches] == ["gaen"]
    assert matches[0]["entered_at"].startswith("2020-08-20T03:10:0")


def test_exposure_check_of_someone_who_never_came_finds_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    config, capture = setup
    replay(capture, config)
    proc = run_checkpoint([
        "exposure", "check", "--config", str(config), "--protocol", "bluezone",
        "--daily-key", bytes(range(200, 232)).hex(), "--date", DAY.isoformat(),
    ])  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == ""
    assert "0 matching visit(s)" in proc.stderr


def test_exposure_check_with_the_wrong_province_key_finds_nothing(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, capture = setup
    replay(capture, config)
    (tmp_path / "province.key").write_bytes(bytes(32))
    proc = run_checkpoint([
        "exposure", "check", "--config", str(config), "--protocol", "bluezone",
        "--daily-key", CASE_DAILY_KEY.hex(), "--date", DAY.isoformat(), "--json",
    ])  # fmt: skip
    assert proc.stdout == ""


def test_truncated_capture_reports_where_and_keeps_what_was_read(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, capture = setup
    data = capture.read_bytes()
    cut = tmp_path / "cut.btsnoop"
    cut.write_bytes(data[: len(data) // 2 + 7])
    proc = replay(cut, config, "--json")
    assert proc.returncode == 1
    assert "truncated" in proc.stderr and "byte" in proc.stderr
    assert proc.stderr.count("\n") == 1
    summary = json.loads(proc.stdout)
    assert summary["advertising_reports"] > 1000
    assert summary["entries"]["app"] >= 1  # the first visits were replayed and stored


def test_not_a_capture_is_a_one_line_error(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    config, _ = setup
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello\n" * 10)
    proc = run_checkpoint(["replay", str(bogus), "--config", str(config)])
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "btsnoop" in proc.stderr


CAPTURES = {
    "android-lock-2019.btsnoop": 26,
    "android-bench-2019.btsnoop": 382,
    "android-gatt-2021.btsnoop": 0,
}


@pytest.mark.parametrize(("name", "reports"), CAPTURES.items())
def test_real_captures_replay_with_their_report_counts_and_no_app_phone(
    setup,
    name: str,
    reports: int,  # type: ignore[no-untyped-def]
) -> None:
    path = real_capture(name)
    config, _ = setup
    proc = run_checkpoint(["replay", str(path), "--config", str(config), "--json"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["advertising_reports"] == reports
    assert summary["app_reports"] == 0 and summary["app_phones"] == 0
    assert summary["entries"] == {}


def test_replay_never_writes_into_the_live_visit_log(setup) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    config, capture = setup
    proc = run_checkpoint(["replay", str(capture), "--config", str(config)])
    assert proc.returncode == 0, proc.stderr
    assert not (config.parent / "visits.db").exists()  # the configured, live log
    scratch = config.parent / "replay.db"
    assert f"visit log:           {scratch}" in proc.stdout
    conn = sqlite3.connect(scratch)
    assert conn.execute("SELECT DISTINCT origin FROM entries").fetchall() == [("replay",)]
    conn.close()


def test_replay_counts_phones_that_never_came_near(tmp_path: Path, setup) -> None:  # type: ignore[no-untyped-def]
    config, _ = setup
    capture = tmp_path / "weak.btsnoop"
    write_capture(capture, bluezone_visit(OTHER_DAILY_KEY, T0, 60, "4A:00:00:00:00:09", rssi=-80))
    proc = run_checkpoint(["replay", str(capture), "--config", str(config), "--json"])
    summary = json.loads(proc.stdout)
    assert summary["app_phones"] == 1 and summary["entries"] == {}
