"""The live screen renders from a snapshot, in Vietnamese by default and in English."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from appliance.console.live import Snapshot, render
from appliance.store.visits import EntryRow

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2020, 8, 20, 9, 30, tzinfo=HANOI).timestamp()


def screen(snap: Snapshot, lang: str, width: int = 80) -> str:
    console = Console(record=True, width=width, color_system="standard", force_terminal=True)
    console.print(render(snap, lang))
    return console.export_text()


def running_status(**extra: object) -> dict[str, object]:
    status: dict[str, object] = {
        "running": True, "state": "running", "now": NOW, "present": 2, "simulated": False,
        "health": {"scanner": {"state": "ok"}, "store": {"state": "ok"},
                   "clock": {"synchronized": True}, "disk": {"state": "ok"},
                   "sync": {"state": "off"}, "gpio": {"state": "off"},
                   "something-new": {"state": "ok"}},
    }  # fmt: skip
    status.update(extra)
    return status


def row(i: int, kind: str, minutes: int, protocol: str | None = None) -> EntryRow:
    return EntryRow(i, f"u{i}", kind, protocol, NOW - minutes * 60, None, True, True, None)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_empty_morning(lang: str) -> None:
    snap = Snapshot(
        NOW,
        "Asia/Ho_Chi_Minh",
        "Sở Thông tin và Truyền thông",
        "Cửa chính",
        running_status(),
        {},
        [],
    )
    text = screen(snap, lang)
    assert "20/08/2020 09:30:00" in text
    assert "Sở Thông tin và Truyền thông" in text
    assert ("Chưa có lượt vào nào hôm nay" if lang == "vi" else "No entries yet today") in text


def test_busy_hour_shows_counts_rate_and_feed_in_local_time() -> None:
    recent = [row(1, "app", 1, "bluezone"), row(2, "no_app", 3), row(3, "manual", 5)]
    snap = Snapshot(
        NOW,
        "Asia/Ho_Chi_Minh",
        "Sở TT&TT",
        "Cửa chính",
        running_status(),
        {"app": 30, "no_app": 10, "manual": 2},
        recent,
    )
    text = screen(snap, "vi")
    assert "Có ứng dụng: 30" in text and "Không phát hiện ứng dụng: 10" in text
    assert "Tỷ lệ cài đặt: 75%" in text
    assert "09:29:00" in text and "bluezone" in text


def test_daemon_not_running_is_shown_plainly() -> None:
    snap = Snapshot(NOW, "Asia/Ho_Chi_Minh", "A", "B", {"running": False}, {}, [])
    assert "DỊCH VỤ KHÔNG CHẠY" in screen(snap, "vi")
    assert "DAEMON NOT RUNNING" in screen(snap, "en")


def test_faults_and_current_signal() -> None:
    status = running_status(last_signal={"intent": "prompt", "at": NOW - 1})
    status["health"]["store"] = {"state": "error"}  # type: ignore[index]
    status["health"]["clock"] = {"synchronized": False}  # type: ignore[index]
    text = screen(Snapshot(NOW, "Asia/Ho_Chi_Minh", "A", "B", status, {}, []), "en")
    assert "Database: error" in text and "Clock: not synchronised" in text
    assert "Asking a visitor to install Bluezone" in text
