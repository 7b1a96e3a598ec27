"""The live screen: pure renders on a recorded console, in both languages, at 80×25 and
120×40, for an empty morning, a busy hour, faults and an exposure alert; the visitor form; and
a snapshot read from a real visit log without ever taking a write lock."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
import string
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.cells import cell_len
from rich.console import Console

from appliance.console import screen as screen_module
from appliance.console.form import ask_visitor
from appliance.console.screen import HEALTH_PARTS, MAX_ALERT_LINES, SHORT_TOKEN, render
from appliance.console.snapshot import FEED_MAX, FeedRow, Snapshot
from appliance.daemon.readout import read_snapshot
from appliance.errors import StoreError
from appliance.i18n import MESSAGES, text

REPO = Path(__file__).resolve().parent.parent
ZONE = "Asia/Ho_Chi_Minh"
HANOI = ZoneInfo(ZONE)
AGENCY = "Sở Thông tin và Truyền thông"
DOOR = "Cửa chính"
LANGS = ("vi", "en")
SIZES = ((80, 25), (120, 40))
# 09:30 in Hanoi is 02:30 UTC; 06:15 on the 21st is still the 20th in UTC: a screen in UTC
# would show the wrong date as well as the wrong time.
NOW = datetime(2020, 8, 20, 9, 30, tzinfo=HANOI).timestamp()
MORNING = datetime(2020, 8, 21, 6, 15, tzinfo=HANOI).timestamp()


# -- helpers -----------------------------------------------------------------------------------


def screen(snap: Snapshot, lang: str, width: int = 80, height: int = 25) -> list[str]:
    console = Console(
        record=True, width=width, height=height, color_system="standard", force_terminal=True
    )
    console.print(render(snap, lang, width, height))
    return console.export_text().splitlines()


def flat(lines: list[str]) -> str:
    """The screen as one line of words: a message wrapped at the edge still matches."""
    return " ".join(" ".join(lines).split())


def words(message: str) -> str:
    return " ".join(message.split())


def shows(lines: list[str], message: str) -> bool:
    return words(message) in flat(lines)


def health(**parts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base: dict[str, dict[str, Any]] = {
        "scanner": {"state": "ok", "source": "bluez"},
        "store": {"state": "ok", "message": None, "pending": 0},
        "clock": {"synchronized": True},
        "disk": {"state": "ok", "free_bytes": 10**10},
        "sync": {"state": "ok", "backlog": 0},
        "gpio": {"state": "ok"},
    }
    base.update(parts)
    return base


def running(now: float = NOW, **extra: Any) -> dict[str, Any]:
    """A status as ``read_status`` returns it for a live daemon."""
    status: dict[str, Any] = {
        "state": "running",
        "running": True,
        "updated_at": now,
        "now": now,
        "present": 2,
        "simulated": False,
        "health": health(),
        "last_signal": None,
        "door": {"muted_until": None, "quiet_hours": False},
    }
    status.update(extra)
    return status


def snap_of(status: dict[str, Any] | None, now: float = NOW, **fields: Any) -> Snapshot:
    fields.setdefault("beacon", {"state": "ok"})
    return Snapshot(now, ZONE, AGENCY, DOOR, status, **fields)


def token_of(i: int) -> str:
    return hashlib.sha256(f"token {i}".encode()).hexdigest()[:32]


KINDS = ("app", "no_app", "app", "manual", "app", "no_app")
PROTOCOLS = ("bluezone", "bluezone-ios", "gaen", "bluezone-legacy", "bluetrace")


def feed_row(entered_at: float, kind: str = "no_app", **fields: Any) -> FeedRow:
    fields.setdefault("uuid", f"uuid-{entered_at}")
    fields.setdefault("protocol", None)
    fields.setdefault("clock_synced", True)
    return FeedRow(kind=kind, entered_at=entered_at, **fields)


def busy_feed(n: int = 60) -> list[FeedRow]:
    """``n`` entries, newest first, 37 s apart, the newest 5 s ago."""
    feed: list[FeedRow] = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        protocol = PROTOCOLS[i % len(PROTOCOLS)] if kind == "app" else None
        token = token_of(i) if kind == "app" else None
        entered = NOW - 5 - 37 * i
        feed.append(feed_row(entered, kind, uuid=f"uuid-{i:04d}", protocol=protocol, token=token))
    return feed


STORE_MESSAGE = "disk full writing /var/lib/checkpoint/visits.db: free space on the SD card"
ALL_FAULTS = running(
    health=health(
        scanner={"state": "error", "message": "the advertisement source stopped"},
        store={"state": "error", "message": STORE_MESSAGE},
        disk={"state": "low", "free_bytes": 10**6},
        clock={"synchronized": False, "awaiting_correction": 3},
        gpio={"state": "error"},
        sync={"state": "unauthorised", "backlog": 12},
    )
)


def fault_actions(lang: str) -> list[str]:
    """The action line of each fault in ALL_FAULTS (and the stopped beacon)."""
    return [
        text("fault_scanner", lang).format(state=text("error", lang)),
        text("fault_store", lang).format(message=STORE_MESSAGE),
        text("fault_disk", lang),
        text("fault_clock_waiting", lang).format(n=3),
        text("fault_gpio", lang),
        text("fault_sync_auth", lang),
        text("fault_beacon", lang),
    ]


EXPOSURE = {
    "id": "2f1c6f9e-7f59-4c53-9a39-0d1f0d7c1a11",
    "kind": "exposure",
    "created_at": "2020-08-20T02:10:00Z",
    # 01:15 UTC is 08:15 in Hanoi: the collector speaks UTC, the receptionist local time.
    "details": {"visits": [{"entered_at": "2020-08-19T01:15:00Z", "left_at": None}]},
}


def empty_morning() -> Snapshot:
    return snap_of(running(MORNING, present=0), MORNING, today={"app": 0, "no_app": 0, "manual": 0})


def busy_hour() -> Snapshot:
    status = running(present=5, last_signal={"intent": "greet", "at": NOW - 2})
    return snap_of(status, today={"app": 132, "no_app": 44, "manual": 7}, feed=busy_feed())


def faults() -> Snapshot:
    return snap_of(ALL_FAULTS, beacon={"state": "stopped"})


def exposure() -> Snapshot:
    status = running(health=health(clock={"synchronized": False}))
    return snap_of(
        status, today={"app": 3, "no_app": 1, "manual": 0}, feed=busy_feed(4), alerts=[EXPOSURE]
    )


SCENARIOS: dict[str, Callable[[], Snapshot]] = {
    "empty-morning": empty_morning,
    "busy-hour": busy_hour,
    "faults": faults,
    "exposure": exposure,
}


def check_frame(lines: list[str], lang: str, width: int, height: int, when: str) -> None:
    """What every screen has, whatever is happening."""
    assert len(lines) == height, "\n".join(lines)
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, too_wide
    assert when in lines[0]  # local date and time, top right
    assert AGENCY in lines[1] and DOOR in lines[1]  # diacritics kept
    assert words(text("keys", lang)) == words(lines[-1])  # the keys, on the last line
    for part in HEALTH_PARTS:
        assert f"{text(part, lang)}:" in flat(lines), part
    assert text("title", lang) in lines[0]


def feed_rows(lines: list[str]) -> tuple[int, int, list[str]]:
    """(top border, bottom border, the feed's rows under its header)."""
    top = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("╰"))
    return top, bottom, lines[top + 2 : bottom]


ROW = re.compile(r"^│\s+(\d\d:\d\d:\d\d)\s")


# -- the four screens, both languages, both sizes ----------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
def test_every_screen_fits_exactly_and_has_its_frame(
    scenario: str, size: tuple[int, int], lang: str
) -> None:
    width, height = size
    snap = SCENARIOS[scenario]()
    lines = screen(snap, lang, width, height)
    when = "21/08/2020 06:15:00" if scenario == "empty-morning" else "20/08/2020 09:30:00"
    check_frame(lines, lang, width, height, when)
    assert text("running", lang) in lines[1]
    top, bottom, _ = feed_rows(lines)
    assert bottom == height - 3  # then the notice line, then the keys
    assert text("feed", lang) in lines[top]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
def test_empty_morning(size: tuple[int, int], lang: str) -> None:
    width, height = size
    lines = screen(empty_morning(), lang, width, height)
    assert shows(lines, text("empty", lang))
    assert f"{text('with_app', lang)}: 0" in flat(lines)
    assert f"{text('adoption', lang)}: -" in flat(lines)  # no rate without sensed entries
    assert f"{text('idle', lang)}" in flat(lines)
    assert not any(ROW.match(line) for line in lines)
    assert not shows(lines, text("fault_daemon", lang))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
def test_busy_hour(size: tuple[int, int], lang: str) -> None:
    width, height = size
    feed = busy_feed()
    lines = screen(busy_hour(), lang, width, height)
    # Each count whole on one line, never a number wrapped away from its label.
    for key, n in (("with_app", 132), ("no_app", 44), ("manual", 7)):
        assert any(f"{text(key, lang)}: {n}" in line for line in lines), key
    assert any(f"{text('adoption', lang)}: 75%" in line for line in lines)
    assert shows(lines, text("greet", lang))

    top, bottom, rows = feed_rows(lines)
    assert text("time", lang) in lines[top + 1] and text("token", lang) in lines[top + 1]
    times = [m.group(1) for m in map(ROW.match, rows) if m]
    assert len(times) == len(rows)  # the feed fills its panel: no blank row
    assert len(rows) == bottom - top - 2
    assert len(rows) >= (12 if height == 25 else 27)
    # Local time, newest first, in the order of the feed.
    expected = [datetime.fromtimestamp(e.entered_at, HANOI).strftime("%H:%M:%S") for e in feed]
    assert times == expected[: len(times)]
    assert times[0] == "09:29:55"
    assert times == sorted(times, reverse=True)
    # A short token, enough to tell entries apart: never the whole token.
    shown = "\n".join(rows)
    for i, entry in enumerate(feed):
        token = entry.token
        if token is None:
            continue
        assert token[SHORT_TOKEN + 1 :] not in "\n".join(lines)
        assert token[: SHORT_TOKEN + 1] not in "\n".join(lines)
        if i < len(rows):
            assert token[:SHORT_TOKEN] in rows[i]
            assert entry.protocol is not None and entry.protocol in rows[i]
    assert "uuid-" not in shown  # nor an entry's UUID


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
def test_faults_show_their_action_and_collapse(size: tuple[int, int], lang: str) -> None:
    width, height = size
    lines = screen(faults(), lang, width, height)
    actions = fault_actions(lang)
    shown = [a for a in actions if shows(lines, a)]
    assert len(shown) == MAX_ALERT_LINES - 1
    assert shows(lines, actions[0])  # the scanner first: no entries without it
    hidden = len(actions) - (MAX_ALERT_LINES - 1)
    assert shows(lines, text("more_alerts", lang).format(n=hidden))
    # The health line names each broken part in the reader's language.
    for label, state in (
        ("scanner", "error"),
        ("disk", "low"),
        ("clock", "unsynchronised"),
        ("sync", "unauthorised"),
        ("beacon", "stopped"),
    ):
        assert f"{text(label, lang)}: {text(state, lang)}" in flat(lines), label


BROKEN: dict[str, dict[str, dict[str, Any]]] = {
    "scanner": {"scanner": {"state": "error"}},
    "store": {"store": {"state": "error", "message": STORE_MESSAGE}},
    "disk": {"disk": {"state": "low"}},
    "clock": {"clock": {"synchronized": False, "awaiting_correction": 3}},
    "gpio": {"gpio": {"state": "error"}},
    "sync": {"sync": {"state": "unauthorised"}},
    "beacon": {},  # the beacon is its own process: Snapshot.beacon
}


@pytest.mark.parametrize("fault", list(BROKEN))
@pytest.mark.parametrize("lang", LANGS)
def test_each_fault_alone_shows_its_action(fault: str, lang: str) -> None:
    broken = BROKEN[fault]
    beacon = {"state": "stopped"} if fault == "beacon" else {"state": "ok"}
    snap = snap_of(running(health=health(**broken)), beacon=beacon)
    action = dict(zip(BROKEN, fault_actions(lang), strict=True))[fault]
    for width, height in SIZES:
        lines = screen(snap, lang, width, height)
        check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
        assert shows(lines, action)
        others = [a for a in fault_actions(lang) if a != action]
        assert not any(shows(lines, a) for a in others)


@pytest.mark.parametrize("lang", LANGS)
def test_a_store_fault_without_a_message_and_sync_offline_and_tls(lang: str) -> None:
    status = running(
        health=health(store={"state": "error", "message": None}, sync={"state": "tls"})
    )
    lines = screen(snap_of(status), lang)
    assert shows(lines, text("fault_store", lang).format(message=text("error", lang)))
    assert shows(lines, text("fault_sync_tls", lang))
    offline = running(health=health(sync={"state": "offline", "backlog": 37}))
    assert shows(screen(snap_of(offline), lang), text("fault_sync_offline", lang).format(n=37))
    # Offline with nothing waiting is no fault: the health line says it.
    quiet = running(health=health(sync={"state": "offline", "backlog": 0}))
    lines = screen(snap_of(quiet), lang)
    assert not shows(lines, text("fault_sync_offline", lang).format(n=0))
    assert f"{text('sync', lang)}: {text('offline', lang)}" in flat(lines)


DISK_FULL = {
    "vi": "Thẻ nhớ đã đầy: 12 mục đang được giữ tạm trong bộ nhớ, sẽ tự ghi khi có chỗ trống."
    " Báo bộ phận CNTT.",
    "en": "The SD card is full: 12 records are held in memory and will be written once there"
    " is room. Call IT.",
}
DISK_FULL_DROPPED = {
    "vi": "Thẻ nhớ đã đầy và bộ nhớ tạm cũng đã đầy: 3 mục đã bị mất, 20000 mục đang được giữ.",
    "en": "The SD card is full and so is the memory holding records: 3 lost, 20000 held.",
}


@pytest.mark.parametrize("lang", LANGS)
def test_a_full_card_says_so_and_counts_what_is_held_and_dropped(lang: str) -> None:
    full = {"state": "full", "message": "disk full writing /var/lib/checkpoint/checkpoint.db",
            "pending": 12, "dropped": 0}  # fmt: skip
    status = running(health=health(store=full, disk={"state": "full", "free_bytes": 0}))
    lines = screen(snap_of(status), lang)
    assert shows(lines, DISK_FULL[lang])
    assert f"{text('disk', lang)}: {text('full', lang)}" in flat(lines)
    # Not also "nearly full", nor a database error with SQLite's words.
    assert not shows(lines, text("fault_disk", lang))
    assert "checkpoint.db" not in flat(lines)
    dropped = running(health=health(store={**full, "pending": 20000, "dropped": 3},
                                    disk={"state": "full", "free_bytes": 0}))  # fmt: skip
    assert shows(screen(snap_of(dropped), lang), DISK_FULL_DROPPED[lang])


CLOCK_WAITING = {
    "vi": "Đồng hồ chưa đồng bộ: kiểm tra mạng. Giờ của 12 lượt vào chưa chắc đúng, sẽ được"
    " chỉnh khi có mạng.",
    "en": "The clock is not synchronised: check the network. 12 entries have uncertain times,"
    " corrected once it is.",
}


@pytest.mark.parametrize("lang", LANGS)
def test_unsynchronised_clock_says_how_many_entries_wait_for_correction(lang: str) -> None:
    waiting = running(health=health(clock={"synchronized": False, "awaiting_correction": 12}))
    for width, height in SIZES:
        lines = screen(snap_of(waiting), lang, width, height)
        check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
        assert shows(lines, CLOCK_WAITING[lang])
        assert f"{text('clock', lang)}: {text('unsynchronised', lang)}" in flat(lines)
    # Nothing waiting (or a daemon too old to say): the plain warning, still with its action.
    for clock in ({"synchronized": False, "awaiting_correction": 0}, {"synchronized": False}):
        lines = screen(snap_of(running(health=health(clock=clock))), lang)
        assert shows(lines, text("fault_clock", lang))
        assert not shows(lines, CLOCK_WAITING[lang])
    # Synchronised: no clock line at all, even with a correction still to run.
    synced = running(health=health(clock={"synchronized": True, "awaiting_correction": 12}))
    lines = screen(snap_of(synced), lang)
    assert not shows(lines, text("fault_clock", lang)) and not shows(lines, CLOCK_WAITING[lang])


def test_an_uncorrected_time_in_the_feed_is_shown_in_yellow() -> None:
    feed = busy_feed(2)
    flagged = dataclasses.replace(feed[1], clock_synced=False)
    snap = snap_of(running(), feed=[feed[0], flagged])
    console = Console(record=True, width=80, height=25, color_system="standard",
                      force_terminal=True)  # fmt: skip
    console.print(render(snap, "vi", 80, 25))
    styled = console.export_text(styles=True)
    shown = [datetime.fromtimestamp(row.entered_at, HANOI).strftime("%H:%M:%S")
             for row in feed]  # fmt: skip
    assert f"\x1b[33m{shown[1]}" in styled  # yellow
    assert f"\x1b[33m{shown[0]}" not in styled and shown[0] in styled


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
def test_exposure_alert_in_local_time_before_faults(size: tuple[int, int], lang: str) -> None:
    width, height = size
    lines = screen(exposure(), lang, width, height)
    alert = words(text("alert_exposure", lang).format(when="08:15 19/08"))
    clock = words(text("fault_clock", lang))
    assert alert in flat(lines)
    assert flat(lines).index(alert) < flat(lines).index(clock)
    # Shown before faults even when faults overflow.
    crowded = snap_of(ALL_FAULTS, beacon={"state": "stopped"}, alerts=[EXPOSURE])
    lines = screen(crowded, lang, width, height)
    check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
    assert flat(lines).index(alert) < flat(lines).index(words(fault_actions(lang)[0]))
    hidden = len(fault_actions(lang)) + 1 - (MAX_ALERT_LINES - 1)
    assert shows(lines, text("more_alerts", lang).format(n=hidden))


def test_other_alerts_and_several_exposure_times() -> None:
    several = {
        **EXPOSURE,
        "details": {
            "visits": [
                {"entered_at": "2020-08-19T01:15:00Z"},
                {"entered_at": "2020-08-19T08:40:00Z"},
            ]
        },
    }
    notice = {"id": "n1", "kind": "re-enroll", "created_at": "2020-08-20T01:00:00Z"}
    lines = screen(snap_of(running(), alerts=[several, notice]), "en")
    assert shows(lines, text("alert_exposure", "en").format(when="08:15 19/08, 15:40 19/08"))
    assert shows(lines, text("alert_other", "en").format(kind="re-enroll"))


# -- the daemon, the activity line, the notice -------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_daemon_not_running_or_stale(lang: str, tmp_path: Path) -> None:
    from appliance.status import read_status, write_status

    path = tmp_path / "status.json"
    greeting = {"intent": "greet", "at": NOW - 61}
    write_status(path, {**running(NOW - 60, last_signal=greeting), "running": None})
    stale = read_status(path, NOW)  # the daemon stopped writing a minute ago
    assert stale is not None and stale["running"] is False
    stopped = {**running(last_signal=greeting), "state": "stopped", "running": False}
    for status in (None, stale, stopped):
        for width, height in SIZES:
            lines = screen(snap_of(status), lang, width, height)
            check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
            assert text("not_running", lang) in lines[1]
            assert text("running", lang) not in lines[1].replace(text("not_running", lang), "")
            assert shows(lines, text("fault_daemon", lang))
            # Its last greeting is not happening now, and its last health is not current.
            assert not shows(lines, text("greet", lang))
            assert f"{text('scanner', lang)}: {text('ok', lang)}" not in flat(lines)


@pytest.mark.parametrize("lang", LANGS)
def test_muted_until_quiet_hours_and_waiting_requests(lang: str) -> None:
    muted_until = datetime(2020, 8, 20, 9, 45, tzinfo=HANOI).timestamp()
    status = running(door={"muted_until": muted_until, "quiet_hours": True})
    for width, height in SIZES:
        lines = screen(snap_of(status, waiting=2), lang, width, height)
        check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
        assert shows(lines, text("muted_until", lang).format(time="09:45"))
        assert shows(lines, text("quiet_hours", lang))
        assert shows(lines, text("waiting_inbox", lang).format(n=2))
    # The lights report a mute (the long press) without an end time.
    gpio_muted = running(health=health(gpio={"state": "ok", "muted": True}))
    lines = screen(snap_of(gpio_muted), lang)
    assert shows(lines, text("muted", lang))
    assert not shows(lines, text("quiet_hours", lang))


@pytest.mark.parametrize("lang", LANGS)
def test_current_signal_then_back_to_waiting(lang: str) -> None:
    prompting = running(last_signal={"intent": "prompt", "at": NOW - 1})
    assert shows(screen(snap_of(prompting), lang), text("prompt", lang))
    old = running(last_signal={"intent": "prompt", "at": NOW - 60})
    lines = screen(snap_of(old), lang)
    assert not shows(lines, text("prompt", lang)) and shows(lines, text("idle", lang))


@pytest.mark.parametrize("lang", LANGS)
def test_the_notice_line(lang: str) -> None:
    for width, height in SIZES:
        snap = snap_of(running(), feed=busy_feed(), notice=text("form_saved", lang))
        lines = screen(snap, lang, width, height)
        check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
        assert lines[-2].strip() == text("form_saved", lang)


def test_an_unknown_health_part_shows_as_itself() -> None:
    status = running(
        health=health(**{"something-new": {"state": "exploded"}, "also-new": {"state": "ok"}})
    )
    for lang in LANGS:
        for width, height in SIZES:
            lines = screen(snap_of(status), lang, width, height)
            check_frame(lines, lang, width, height, "20/08/2020 09:30:00")
            assert "something-new: exploded" in flat(lines)
            assert "also-new" not in flat(lines)  # a healthy part the screen does not know


def test_a_store_error_reading_the_log_is_shown() -> None:
    snap = snap_of(running(), store_error="database is locked")
    lines = screen(snap, "en")
    assert shows(lines, text("fault_store", "en").format(message="database is locked"))


def test_worst_case_still_fits_at_80x25() -> None:
    long_agency = "Sở Tài nguyên và Môi trường tỉnh Bà Rịa – Vũng Tàu, Trung tâm Hành chính công"
    status = {
        **ALL_FAULTS,
        "door": {"muted_until": NOW + 600, "quiet_hours": True},
        "last_signal": {"intent": "prompt", "at": NOW},
        "present": 12,
    }
    for lang in LANGS:
        snap = Snapshot(
            NOW, ZONE, long_agency, DOOR, status, today={"app": 1320, "no_app": 440, "manual": 70},
            feed=busy_feed(), alerts=[EXPOSURE], beacon={"state": "stopped"}, waiting=3,
            notice=text("form_queued", lang), view_only=("reception", "checkpoint"),
        )  # fmt: skip
        for width, height in SIZES:
            lines = screen(snap, lang, width, height)
            assert len(lines) == height
            assert max(cell_len(line) for line in lines) <= width
            assert words(text("keys", lang)) == words(lines[-1])
            for key, n in (("with_app", 1320), ("no_app", 440), ("manual", 70)):
                assert any(f"{text(key, lang)}: {n}" in line for line in lines), key


# -- the catalogue -----------------------------------------------------------------------------


def placeholders(message: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    for key, entry in MESSAGES.items():
        assert set(entry) == {"vi", "en"}, key
        assert entry["vi"].strip() and entry["en"].strip(), key
        assert placeholders(entry["vi"]) == placeholders(entry["en"]), key
        assert unicodedata.is_normalized("NFC", entry["vi"]), key


def used_keys(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return set(re.findall(r"""\btext(?:_of)?\(\s*["']([A-Za-z0-9_]+)["']""", source))


CONSOLE = sorted((REPO / "appliance/console").glob("*.py"))


def test_every_text_used_is_in_the_catalogue() -> None:
    used = set().union(*(used_keys(path) for path in CONSOLE))
    assert len(used) > 30  # the regex really finds them
    used |= used_keys(REPO / "appliance/visitors.py")
    # Keys built at run time: health parts and states, signals, kinds, form fields.
    used |= set(HEALTH_PARTS) | {"store", "gpio"}
    used |= {"ok", "off", "error", "low", "starting", "offline", "unauthorised", "tls",
             "unsynchronised", "stopped", "greet", "prompt", "with_app", "no_app", "manual",
             "f_name", "f_org", "f_phone", "f_purpose"}  # fmt: skip
    if any('"unknown"' in path.read_text(encoding="utf-8") for path in CONSOLE):
        used.add("unknown")  # the health of a daemon that is not running
    missing = sorted(k for k in used if k not in MESSAGES)
    assert not missing


def test_an_unknown_key_shows_as_itself_and_english_falls_back_to_vietnamese() -> None:
    assert text("no-such-key", "en") == "no-such-key"
    assert text("title", "fr") == MESSAGES["title"]["vi"]


# -- the visitor form --------------------------------------------------------------------------


class Script:
    """``ask`` answers from a list (an exception is raised); ``say`` is recorded."""

    def __init__(self, *answers: str | BaseException) -> None:
        self.answers: Iterator[str | BaseException] = iter(answers)
        self.asked: list[str] = []
        self.said: list[str] = []

    def ask(self, prompt: str) -> str:
        self.asked.append(prompt)
        answer = next(self.answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def say(self, message: str) -> None:
        self.said.append(message)


NAME = "Nguyễn Thị Hồng Nhung"


@pytest.mark.parametrize("name", [NAME, unicodedata.normalize("NFD", NAME)], ids=["nfc", "nfd"])
def test_form_keeps_a_vietnamese_name_exactly(name: str) -> None:
    script = Script(f"  {name} ", "Sở Y tế Tuyên Quang", "", "Họp giao ban")
    visitor = ask_visitor("vi", script.ask, script.say)
    assert visitor is not None
    assert visitor.name == name  # as typed, only the surrounding spaces gone
    assert visitor.organisation == "Sở Y tế Tuyên Quang"
    assert visitor.phone is None and visitor.purpose == "Họp giao ban"
    assert script.said == [text("form_title", "vi")]
    assert script.asked[0] == f"{text('f_name', 'vi')}: "
    assert script.asked[1] == f"{text('f_org', 'vi')} ({text('optional', 'vi')}): "
    assert len(script.asked) == 4


@pytest.mark.parametrize("lang", LANGS)
def test_form_asks_a_bad_phone_again_in_the_chosen_language(lang: str) -> None:
    script = Script("Trần Văn Bình", "", "12-34", "0912 345 678", "")
    visitor = ask_visitor(lang, script.ask, script.say)
    assert visitor is not None and visitor.phone == "0912 345 678"
    assert script.said == [text("form_title", lang), text("err_phone", lang)]
    phone_prompt = f"{text('f_phone', lang)} ({text('optional', lang)}): "
    assert script.asked.count(phone_prompt) == 2


@pytest.mark.parametrize("lang", LANGS)
def test_form_asks_an_empty_name_again(lang: str) -> None:
    script = Script("", "   ", "Lê Bình", "", "", "")
    visitor = ask_visitor(lang, script.ask, script.say)
    assert visitor is not None and visitor.name == "Lê Bình"
    assert script.said == [text("form_title", lang)] + [text("err_name_required", lang)] * 2
    assert script.asked[:3] == [f"{text('f_name', lang)}: "] * 3


def test_form_refuses_control_characters_in_the_field_being_typed() -> None:
    script = Script("Lê Bình", "Sở\x1b[31m", "Sở Y tế", "", "")
    visitor = ask_visitor("en", script.ask, script.say)
    assert visitor is not None and visitor.organisation == "Sở Y tế"
    assert script.said[1] == text("err_control", "en").format(field=text("f_org", "en"))


@pytest.mark.parametrize("stop", [KeyboardInterrupt(), EOFError()], ids=["ctrl-c", "eof"])
def test_form_cancelled(stop: BaseException) -> None:
    script = Script("Lê Bình", "", stop)
    assert ask_visitor("vi", script.ask, script.say) is None


# -- read_snapshot() from a real visit log -----------------------------------------------------


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        f'[checkpoint]\nid = "TQ-TEST-01"\nagency = "{AGENCY}"\ndoor = "{DOOR}"\n'
        '[storage]\ndatabase = "data/visits.db"\n[privacy]\nkey_file = "data/province.key"\n'
        '[beacon]\nkey_file = "data/beacon.key"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    return config


def test_snapshot_reads_what_the_daemon_wrote_without_a_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.config import load_config
    from appliance.core.doorway import Entry
    from appliance.inbox import submit
    from appliance.status import beacon_status_path, owner_of, status_path, write_status
    from appliance.store import VisitLog
    from appliance.store.outbox import Outbox

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "data"))
    config = load_config(write_config(tmp_path))
    db = config.storage.database
    token = token_of(1)

    # As the daemon writes: queued decisions, one commit; a manual entry; the collector's alert.
    log = VisitLog(db)
    log.record(Entry("app-1", "app", NOW - 600, "bluezone", ((token, NOW - 610),)))
    log.record(Entry("noapp-1", "no_app", NOW - 300, via_sensor=True))
    log.record(Entry("yesterday", "no_app", NOW - 86400, via_sensor=True))
    log.flush()
    log.add_manual(NAME, phone="0912345678", when=NOW - 120, entry_uuid="manual-1")
    log.close()
    outbox = Outbox(db)
    assert outbox.save_alerts([EXPOSURE], NOW) == 1
    outbox.close()
    write_status(
        status_path(config),
        {**running(), "running": None, "door": {"muted_until": NOW + 900, "quiet_hours": False},
         **owner_of(config)},
    )  # fmt: skip
    beacon = {"state": "ok", "message": None, "updated_at": NOW - 3, **owner_of(config)}
    beacon_status_path(config).write_text(json.dumps(beacon), encoding="utf-8")
    submit(db, "mute", {"minutes": 15})  # not a visitor: not counted as waiting
    submit(db, "manual", {"uuid": "w-1", "at": NOW, "name": "Đỗ Văn Khoa"})

    store = VisitLog(db, readonly=True, check=False)
    try:
        snap = read_snapshot(config, store, now=NOW)
        assert snap.agency == AGENCY and snap.door == DOOR and snap.timezone == ZONE
        assert snap.status is not None and snap.status["running"] is True
        assert snap.today == {"app": 1, "no_app": 1, "manual": 1}
        assert [e.uuid for e in snap.feed] == ["manual-1", "noapp-1", "app-1", "yesterday"]
        assert {e.uuid: e.token for e in snap.feed}["app-1"] == token
        assert len(snap.feed) <= FEED_MAX
        assert [a["id"] for a in snap.alerts] == [EXPOSURE["id"]]
        assert snap.alerts[0]["details"] == EXPOSURE["details"]
        assert snap.beacon["state"] == "ok"
        assert snap.waiting == 1
        assert snap.store_error is None

        lines = screen(snap, "vi", 80, 25)
        check_frame(lines, "vi", 80, 25, "20/08/2020 09:30:00")
        assert shows(lines, text("alert_exposure", "vi").format(when="08:15 19/08"))
        assert shows(lines, text("waiting_inbox", "vi").format(n=1))
        assert shows(lines, text("muted_until", "vi").format(time="09:45"))
        assert f"{text('beacon', 'vi')}: {text('ok', 'vi')}" in flat(lines)
        assert token[:SHORT_TOKEN] in flat(lines) and token not in flat(lines)
        assert NAME not in flat(lines) and "0912345678" not in flat(lines)  # nothing identifying

        # The console's connection cannot write…
        with pytest.raises(StoreError, match="readonly"):
            store.add_manual("Đỗ Văn Khoa", when=NOW)
        assert store.total() == 4
        # …and, even in the middle of a read, never keeps the daemon from writing.
        reading = store.entries_between(0.0, NOW + 1)
        assert next(reading).uuid == "yesterday"
        writer = sqlite3.connect(db, timeout=0.1, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute(
                "INSERT INTO entries (uuid, kind, entered_at, clock_synced, created_at, origin)"
                " VALUES ('during-read', 'no_app', ?, 1, ?, 'live')",
                (NOW - 1, NOW),
            )
            writer.execute("COMMIT")
        finally:
            writer.close()
        # The read goes on in the snapshot it started in.
        assert [e.uuid for e in reading] == ["app-1", "noapp-1", "manual-1"]
        assert read_snapshot(config, store, now=NOW).today["no_app"] == 2
    finally:
        store.close()


def test_snapshot_without_a_log_or_a_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.config import load_config

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "data"))
    config = load_config(write_config(tmp_path))
    snap = read_snapshot(config, None, now=NOW)
    assert snap.status is None and snap.feed == [] and snap.waiting == 0
    assert snap.beacon == {"state": "stopped"}  # configured, but not reporting
    lines = screen(snap, "en", 80, 25)
    check_frame(lines, "en", 80, 25, "20/08/2020 09:30:00")
    assert shows(lines, text("fault_daemon", "en")) and shows(lines, text("fault_beacon", "en"))


def test_live_module_constants_are_sane() -> None:
    assert MAX_ALERT_LINES >= 2 and SHORT_TOKEN < 16
    assert screen_module.HEALTH_PARTS == ("scanner", "beacon", "sync", "clock", "disk")


def test_exposure_alerts_newest_first_and_scanner_states_in_the_reader_s_language() -> None:
    newer = {
        **EXPOSURE,
        "id": "e2",
        "details": {"visits": [{"entered_at": "2020-08-19T08:40:00Z"}]},
    }
    older = {
        **EXPOSURE,
        "id": "e1",
        "details": {"visits": [{"entered_at": "2020-08-18T01:15:00Z"}]},
    }
    lines = screen(snap_of(running(), alerts=[newer, older]), "en")  # as the store gives them
    text_ = "\n".join(lines)
    assert text_.index("15:40 19/08") < text_.index("08:15 18/08")
    failing = running(health=health(scanner={"state": "power-cycling"}))
    vi = flat(screen(snap_of(failing), "vi"))
    assert "đang bật lại bộ thu" in vi and "power-cycling" not in vi


def test_lights_off_is_not_shown_as_a_problem() -> None:
    quiet = running(health=health(gpio={"state": "off"}))
    assert "Đèn/còi" not in flat(screen(snap_of(quiet), "vi"))
    broken = running(health=health(gpio={"state": "error"}))
    assert "Đèn/còi: lỗi" in flat(screen(snap_of(broken), "vi"))


def test_old_alerts_leave_the_screen(tmp_path: Path) -> None:
    from appliance.store import VisitLog
    from appliance.store.outbox import Outbox

    db = tmp_path / "visits.db"
    VisitLog(db).close()
    outbox = Outbox(db)
    old = {**EXPOSURE, "id": "old"}
    outbox.save_alerts([old], NOW - 30 * 86400)
    outbox.save_alerts([{**EXPOSURE, "id": "new"}], NOW - 3600)
    outbox.close()
    log = VisitLog(db, readonly=True)
    try:
        from appliance.console.snapshot import ALERT_SHOWN_DAYS

        shown = log.alerts(5, since=NOW - ALERT_SHOWN_DAYS * 86400)
    finally:
        log.close()
    assert [a["id"] for a in shown] == ["new"]


def test_the_beacon_reports_its_state_for_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    from appliance.ble.beacon import CheckpointBeacon
    from appliance.config import BeaconSection, parse_config
    from appliance.status import beacon_status_path, owner_of, read_beacon_status, write_status

    config = parse_config({"storage": {"database": str(tmp_path / "v.db")}}, tmp_path)
    assert read_beacon_status(config) == {"state": "off"}  # no [beacon] section
    config = parse_config({"storage": {"database": str(tmp_path / "v.db")}, "beacon": {}}, tmp_path)
    assert isinstance(config.beacon, BeaconSection)
    assert read_beacon_status(config)["state"] == "stopped"  # configured, never reported

    def broken(when: object) -> Any:
        raise RuntimeError("no adapter")

    path = beacon_status_path(config)
    owner = owner_of(config)  # as `checkpoint beacon` writes it
    beacon = CheckpointBeacon("hci0", broken, on_state=lambda s: write_status(path, {**s, **owner}))
    assert beacon.refresh() is True  # a GLib timer callback never raises
    state = read_beacon_status(config)
    assert state["state"] == "error" and "no adapter" in state["message"]
    stale = read_beacon_status(config, now=time.time() + 120)
    assert stale == {"state": "stopped"}


def test_odd_files_never_crash_the_screen() -> None:
    odd_alerts = [
        {"id": "a", "kind": "exposure", "created_at": "x", "details": None},
        {"id": "b", "kind": "exposure", "created_at": "x", "details": ["not", "a", "dict"]},
        {"id": "c", "kind": "exposure", "created_at": "x", "details": {"visits": [1, None]}},
        {"id": "d", "kind": "exposure", "created_at": "x",
         "details": {"visits": [{"entered_at": "9999-12-31T23:59:59+00:00"}]}},
    ]  # fmt: skip
    status = running(
        last_signal={"intent": "greet"},  # no time
        door={"muted_until": 1e12, "quiet_hours": False},  # past what a clock can show
    )
    for lang in LANGS:
        lines = screen(snap_of(status, alerts=odd_alerts), lang, 80, 25)
        assert len(lines) == 25
    not_a_dict = running(door=["x"], last_signal="greet")
    assert len(screen(snap_of(not_a_dict), "vi", 80, 25)) == 25


@pytest.mark.parametrize("size", [(60, 20), (80, 25), (300, 100)])
def test_small_and_large_screens_still_fit(size: tuple[int, int]) -> None:
    width, height = size
    many = [{**EXPOSURE, "id": f"e{i}"} for i in range(5)]
    snap = snap_of(ALL_FAULTS, alerts=many, feed=busy_feed(), beacon={"state": "stopped"})
    lines = screen(snap, "vi", width, height)
    assert len(lines) == height
    assert text("keys", "vi")[:10] in "\n".join(lines)  # the keys line is never cut off


def test_an_earlier_day_s_entry_says_which_day() -> None:
    yesterday = feed_row(NOW - 86400, uuid="old")
    today = feed_row(NOW - 60, uuid="new")
    lines = flat(screen(snap_of(running(), feed=[today, yesterday]), "vi"))
    assert "09:29:00" in lines and "19/08 09:30" in lines


def test_the_screen_reader_opens_the_visit_log_once_the_daemon_has_made_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.config import load_config
    from appliance.core.doorway import Entry
    from appliance.daemon.readout import ScreenReader
    from appliance.store import VisitLog

    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "data"))
    config = load_config(write_config(tmp_path))
    with ScreenReader(config, wall=lambda: NOW) as read:
        first = read()  # the console started before the daemon: no visit log yet
        assert first.feed == [] and first.store_error is None and first.status is None
        assert first.now == NOW  # the reader's wall clock, injected
        log = VisitLog(config.storage.database)
        log.record(Entry("early", "no_app", NOW - 60, via_sensor=True))
        log.flush()
        log.close()
        second = read()
        (row,) = second.feed
        assert (row.uuid, row.kind, row.token, row.clock_synced) == ("early", "no_app", None, True)
        assert second.today == {"app": 0, "no_app": 1, "manual": 0}  # today by that clock
        assert read.visits is not None
    assert read.visits is None  # closed with the console
    read.close()  # and closing again is harmless
