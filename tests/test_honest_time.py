"""Honest time (docs/architecture.md §time): records taken before the clock is synced keep their
boot-relative time, are corrected once it is and sent again, or stay flagged if their boot has
passed. Real SQLite files throughout; the boot clock is injected, the kernel is not needed."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from appliance import clock
from appliance.clock import BootReading
from appliance.core.doorway import Entry, EntryUpdate
from appliance.core.exposure import BluezoneCase, case_tokens
from appliance.exposure_check import DAY_SLACK
from appliance.protocols import bluezone_keys
from appliance.status import status_path
from appliance.store import VisitLog, schema
from appliance.store.outbox import Outbox
from tests.builders import on_disk, record_keyed_before_sync
from tests.conftest import run_checkpoint

BOOT = "6b4e0a5c-0d1e-4f59-9d43-3b1c2f7a9e10"
EARLIER_BOOT = "0f3d8b2a-5c1e-4a77-8e22-9c0b1d4e6f38"
BOOTED_AT = 1_760_000_000.0  # the true wall time at the boot (2025-10-09 08:53 UTC)
STALE_S = 3 * 86400.0  # the wall clock restored by fake-hwclock is three days behind
TOKEN_A, TOKEN_B = "aa" * 16, "bb" * 16


def unsynced_wall(boot_s: float) -> float:
    """What the wrong wall clock reads ``boot_s`` seconds after the boot."""
    return BOOTED_AT - STALE_S + boot_s


def boot_clock(boot_s: float, boot_id: str = BOOT) -> Callable[[], BootReading]:
    """The Pi's two clocks read ``boot_s`` seconds after the boot, before NTP."""
    return lambda: BootReading(boot_id, unsynced_wall(boot_s), boot_s)


def app_entry(uuid: str, boot_s: float, tokens: tuple[str, ...] = (TOKEN_A,)) -> Entry:
    t = unsynced_wall(boot_s)
    return Entry(uuid, "app", t, "bluezone", tuple((tok, t) for tok in tokens), via_sensor=True)


ROW_COLUMNS = (
    "entered_at", "left_at", "clock_synced", "boot_id", "entered_boot_s", "left_boot_s",
    "revision", "synced_at",
)  # fmt: skip


def row(log: VisitLog, uuid: str) -> dict[str, Any]:
    """What ``log``'s file holds for ``uuid``, read through a connection of the test's own."""
    [values] = on_disk(
        log.path, f"SELECT {', '.join(ROW_COLUMNS)} FROM entries WHERE uuid = ?", (uuid,)
    )
    return dict(zip(ROW_COLUMNS, values, strict=True))


def first_seen(log: VisitLog, uuid: str) -> list[tuple[str, float, float | None]]:
    return on_disk(
        log.path,
        "SELECT t.token, t.first_seen, t.first_seen_boot_s FROM entry_tokens t"
        " JOIN entries e ON e.id = t.entry_id WHERE e.uuid = ? ORDER BY t.token",
        (uuid,),
    )


def sync_at(log: VisitLog, boot_s: float, boot_id: str = BOOT) -> int:
    """NTP has set the clock right; the daemon corrects ``boot_s`` seconds after the boot."""
    return log.correct_clock(BOOTED_AT + boot_s, boot_s, boot_id)


# -- the migration ----------------------------------------------------------------------------


def v2_file(path: Path) -> None:
    """A visit log as the previous release left it: schema 2, with data in every table."""
    conn = sqlite3.connect(path)
    conn.executescript(f"BEGIN;\n{schema.V1}\n{schema.V2}\nPRAGMA user_version = 2;\nCOMMIT;")
    with conn:
        conn.execute(
            "INSERT INTO entries (uuid, kind, protocol, entered_at, left_at, clock_synced,"
            " via_sensor, created_at, origin, revision, synced_at)"
            " VALUES ('old-app', 'app', 'gaen', 1000.0, 1300.0, 1, 1, 1001.0, 'live', 2, 1400.0)"
        )
        conn.execute(
            "INSERT INTO entries (uuid, kind, entered_at, clock_synced, created_at)"
            " VALUES ('old-unsynced', 'manual', 2000.0, 0, 2001.0)"
        )
        conn.execute(f"INSERT INTO entry_tokens VALUES (1, '{TOKEN_A}', 1000.0)")
        conn.execute("INSERT INTO manual_details (entry_id, name) VALUES (2, 'Trần Văn An')")
        conn.execute(
            "INSERT INTO alerts VALUES ('a1', 'exposure', '2025-01-01T00:00:00Z', 5, '{}', 0)"
        )
    conn.close()


def test_a_v2_log_with_data_migrates_to_v3_keeping_every_record(tmp_path: Path) -> None:
    path = tmp_path / "visits.db"
    v2_file(path)
    log = VisitLog(path, boot_clock=boot_clock(60))
    try:
        assert on_disk(path, "PRAGMA user_version") == [(3,)] == [(schema.SCHEMA_VERSION,)]
        assert row(log, "old-app") == {
            "entered_at": 1000.0, "left_at": 1300.0, "clock_synced": 1, "boot_id": None,
            "entered_boot_s": None, "left_boot_s": None, "revision": 2, "synced_at": 1400.0,
        }  # fmt: skip
        assert first_seen(log, "old-app") == [(TOKEN_A, 1000.0, None)]
        assert log.manual_details(2) == {"name": "Trần Văn An", "organisation": None,
                                         "phone": None, "purpose": None}  # fmt: skip
        assert log.alerts()[0]["id"] == "a1"
        # Flagged before boot times existed: nothing to correct it with, so it stays flagged.
        assert log.awaiting_clock_correction(BOOT) == 0
        assert sync_at(log, 600) == 0
        assert row(log, "old-unsynced")["clock_synced"] == 0
        # The new columns work on the migrated file.
        log.record(app_entry("new", 60), clock_synced=False)
        log.flush()
        assert row(log, "new")["entered_boot_s"] == 60.0
        indexes = {r[0] for r in on_disk(path, "SELECT name FROM sqlite_master WHERE type='index'")}
        assert "entries_clock_uncorrected" in indexes
    finally:
        log.close()
    again = VisitLog(path)  # opening a current file migrates nothing
    assert on_disk(path, "PRAGMA user_version") == [(3,)]
    again.close()


# -- recording and correcting -----------------------------------------------------------------


def test_only_unsynchronised_records_keep_a_boot_time(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(100))
    log.record(app_entry("unsynced", 40), clock_synced=False)
    log.record(Entry("synced", "no_app", BOOTED_AT + 50.0), clock_synced=True)
    log.flush()
    # The decision was read at boot 100 s; its entry time 60 s earlier is boot 40 s.
    assert row(log, "unsynced") | {"revision": None} == {
        "entered_at": unsynced_wall(40), "left_at": None, "clock_synced": 0, "boot_id": BOOT,
        "entered_boot_s": 40.0, "left_boot_s": None, "revision": None, "synced_at": None,
    }  # fmt: skip
    assert first_seen(log, "unsynced") == [(TOKEN_A, unsynced_wall(40), 40.0)]
    synced = row(log, "synced")
    assert (synced["clock_synced"], synced["boot_id"], synced["entered_boot_s"]) == (1, None, None)
    assert log.awaiting_clock_correction(BOOT) == 1
    assert log.awaiting_clock_correction(EARLIER_BOOT) == 0
    assert log.awaiting_clock_correction(None) == 0
    log.close()


def test_correction_computes_each_time_from_the_boot_clock(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(300))
    log.record(app_entry("stay", 100), clock_synced=False)
    log.record(EntryUpdate("stay", token=(TOKEN_B, unsynced_wall(200))), clock_synced=False)
    log.record(EntryUpdate("stay", left_at=unsynced_wall(290)), clock_synced=False)
    log.flush()
    assert sync_at(log, 1000) == 1
    # now_wall - (now_boot - recorded_boot): the true time of each moment.
    assert row(log, "stay") | {"revision": None} == {
        "entered_at": BOOTED_AT + 100, "left_at": BOOTED_AT + 290, "clock_synced": 1,
        "boot_id": None, "entered_boot_s": None, "left_boot_s": None, "revision": None,
        "synced_at": None,
    }  # fmt: skip
    assert first_seen(log, "stay") == [(TOKEN_A, BOOTED_AT + 100, None),
                                       (TOKEN_B, BOOTED_AT + 200, None)]  # fmt: skip
    assert log.awaiting_clock_correction(BOOT) == 0
    log.close()


def test_a_stay_that_ends_after_sync_keeps_its_true_end(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(100))
    log.record(app_entry("stay", 100), clock_synced=False)
    log.flush()
    # NTP set the clock; the phone leaves in the second before the daemon corrects.
    log.record(EntryUpdate("stay", left_at=BOOTED_AT + 400), clock_synced=True)
    log.flush()
    assert row(log, "stay")["left_boot_s"] is None
    assert sync_at(log, 401) == 1
    stay = row(log, "stay")
    assert (stay["entered_at"], stay["left_at"]) == (BOOTED_AT + 100, BOOTED_AT + 400)
    log.close()


def test_a_stay_a_crash_left_open_keeps_its_length_through_correction(tmp_path: Path) -> None:
    path = tmp_path / "visits.db"
    log = VisitLog(path, boot_clock=boot_clock(100))
    log.record(app_entry("open", 100), clock_synced=False)
    log.record(Entry("later", "no_app", unsynced_wall(160)), clock_synced=False)
    log.flush()
    # Recorded when decided, on the same (wrong) wall clock: the last is "later".
    on_disk(path, "UPDATE entries SET created_at = entered_at")
    log.close()
    restarted = VisitLog(path, boot_clock=boot_clock(200))  # the daemon restarted, same boot
    assert restarted.close_open_entries() == 1
    assert row(restarted, "open")["left_boot_s"] == 160.0
    assert sync_at(restarted, 500) == 2
    stay = row(restarted, "open")
    assert (stay["entered_at"], stay["left_at"]) == (BOOTED_AT + 100, BOOTED_AT + 160)
    restarted.close()


def test_only_this_boots_records_are_corrected_the_others_stay_flagged(tmp_path: Path) -> None:
    path = tmp_path / "visits.db"
    before = VisitLog(path, boot_clock=boot_clock(50, EARLIER_BOOT))
    before.record(app_entry("earlier boot", 50), clock_synced=False)
    before.close()  # power cut: the Pi boots again, its boot clock from zero
    log = VisitLog(path, boot_clock=boot_clock(70))
    log.record(app_entry("this boot", 70), clock_synced=False)
    log.flush()
    assert log.awaiting_clock_correction(BOOT) == 1
    assert sync_at(log, 900) == 1
    assert row(log, "this boot")["entered_at"] == BOOTED_AT + 70
    earlier = row(log, "earlier boot")
    assert (earlier["entered_at"], earlier["clock_synced"]) == (unsynced_wall(50), 0)
    assert earlier["boot_id"] == EARLIER_BOOT  # never taken for this boot's
    log.close()


def test_correcting_twice_changes_nothing(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(100))
    log.record(app_entry("stay", 100), clock_synced=False)
    log.add_manual("Phạm Thị Mai", clock_synced=False)
    log.flush()
    assert sync_at(log, 1000) == 2
    after_first = [row(log, u) for u in ("stay",)] + [first_seen(log, "stay")]
    dump = on_disk(log.path, "SELECT * FROM entries ORDER BY id")
    assert sync_at(log, 5000) == 0  # later, and again at the next start
    assert on_disk(log.path, "SELECT * FROM entries ORDER BY id") == dump
    assert [row(log, "stay"), first_seen(log, "stay")] == after_first
    log.close()


def test_manual_entries_typed_before_sync(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(300))
    now_entry = log.add_manual("Phạm Thị Mai", clock_synced=False)  # the paper-visitor button
    # From the console's inbox: its time read on both clocks, in this boot and in another.
    typed = log.add_manual("Lê Văn Bình", when=unsynced_wall(250), clock_synced=False,
                           when_boot=(BOOT, 250.0))  # fmt: skip
    old = log.add_manual("Đỗ Thu Hà", when=unsynced_wall(20), clock_synced=False,
                         when_boot=(EARLIER_BOOT, 20.0))  # fmt: skip
    given = log.add_manual("Võ Minh Tâm", when=BOOTED_AT - 3600, clock_synced=False)
    assert row(log, now_entry)["entered_boot_s"] == pytest.approx(300.0, abs=1.0)
    assert sync_at(log, 1000) == 2
    assert row(log, now_entry)["entered_at"] == pytest.approx(BOOTED_AT + 300, abs=1.0)
    assert row(log, typed)["entered_at"] == BOOTED_AT + 250
    for flagged in (old, given):
        assert row(log, flagged)["clock_synced"] == 0 and row(log, flagged)["boot_id"] is None
    log.close()


# -- the outbox -------------------------------------------------------------------------------


def test_corrected_records_are_sent_again_and_a_batch_in_flight_is_not_marked_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "visits.db"
    log = VisitLog(path, boot_clock=boot_clock(100))
    log.record(app_entry("sent", 100), clock_synced=False)
    log.record(app_entry("in flight", 110), clock_synced=False)
    log.flush()
    outbox = Outbox(path)
    try:
        first = outbox.batch(10)
        assert [(r.uuid, r.payload["clock_synced"]) for r in first] == [
            ("sent", False),
            ("in flight", False),
        ]
        assert outbox.mark_synced(first[:1], 1.0) == 1  # the collector has "sent", flagged
        in_flight = first[1:]
        assert sync_at(log, 1000) == 2  # while "in flight" is on its way with the wrong time
        assert outbox.mark_synced(in_flight, 2.0) == 0  # not marked: it changed meanwhile
        again = {r.uuid: r.payload for r in outbox.batch(10)}
        assert set(again) == {"sent", "in flight"}
        assert again["sent"]["entered_at"] == BOOTED_AT + 100
        assert again["in flight"]["entered_at"] == BOOTED_AT + 110
        assert all(p["clock_synced"] is True for p in again.values())
        assert outbox.mark_synced(outbox.batch(10), 3.0) == 2
        assert outbox.backlog() == 0
    finally:
        outbox.close()
        log.close()


# -- tokens keyed before sync -----------------------------------------------------------------
# A token's day key is the UTC date its wall clock read: three days behind before NTP. Its time
# is corrected, its key stays that wrong day's; the exposure check must derive that key too.

PROVINCE_KEY = bytes(range(50, 82))
CASE_DAILY_KEY = bytes(range(32))  # the case's Bluezone daily key of the true day


def case_id_at(true_at: float) -> bytes:
    """The identifier the case's phone sent at ``true_at`` (docs/protocols.md §1.5)."""
    return bluezone_keys.slot_id(CASE_DAILY_KEY, bluezone_keys.slot_of(utc(true_at)))


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def key_days(log: VisitLog) -> list[tuple[str, str | None]]:
    return on_disk(log.path, "SELECT token, key_day FROM entry_tokens ORDER BY token")


def test_a_token_keyed_on_the_wrong_day_keeps_that_day_through_correction(
    tmp_path: Path,
) -> None:
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(600))
    case, token = record_keyed_before_sync(
        log, PROVINCE_KEY, case_id_at(BOOTED_AT + 600), unsynced_wall(600)
    )
    assert key_days(log) == [(token, None)]  # its day is still the one its time says
    assert sync_at(log, 900) == 1
    assert row(log, case)["entered_at"] == BOOTED_AT + 600
    assert key_days(log) == [(token, utc(unsynced_wall(600)).date().isoformat())]
    assert utc(unsynced_wall(600)).date() == date(2025, 10, 6) != utc(BOOTED_AT).date()
    assert log.rekeyed_days() == {date(2025, 10, 9): {date(2025, 10, 6)}}
    outbox = Outbox(tmp_path / "visits.db")
    try:
        (record,) = outbox.batch(10)
        assert record.payload["key_days"] == {token: "2025-10-06"}
    finally:
        outbox.close()
    log.close()


def test_a_token_corrected_within_its_day_needs_no_key_day(tmp_path: Path) -> None:
    an_hour_behind = BOOTED_AT + 600 - 3600  # 08:03 UTC for 09:03: the same UTC day
    log = VisitLog(
        tmp_path / "visits.db", boot_clock=lambda: BootReading(BOOT, an_hour_behind, 600)
    )
    _case, token = record_keyed_before_sync(
        log, PROVINCE_KEY, case_id_at(BOOTED_AT + 600), an_hour_behind
    )
    assert log.correct_clock(BOOTED_AT + 900, 900, BOOT) == 1
    assert key_days(log) == [(token, None)]
    assert log.rekeyed_days() == {}
    outbox = Outbox(tmp_path / "visits.db")
    try:
        assert "key_days" not in outbox.batch(10)[0].payload  # sent as older units send it
    finally:
        outbox.close()
    log.close()


def test_the_exposure_check_finds_a_visit_keyed_before_sync_three_days_behind(
    tmp_path: Path,
) -> None:
    (tmp_path / "province.key").write_bytes(PROVINCE_KEY)
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[storage]\ndatabase = "visits.db"\n[privacy]\nkey_file = "province.key"\n'
        '[gpio]\nenabled = false\n[ble]\nsource = "none"\n'
    )
    true_at = BOOTED_AT + 600  # 2025-10-09 09:03 UTC; the wall clock read 2025-10-06
    log = VisitLog(tmp_path / "visits.db", boot_clock=boot_clock(600))
    case, token = record_keyed_before_sync(log, PROVINCE_KEY, case_id_at(true_at),
                                           unsynced_wall(600))  # fmt: skip
    sync_at(log, 900)
    log.close()
    # The case's own days' keys alone cannot find it: the remembered day is what matches.
    case_key = BluezoneCase(CASE_DAILY_KEY, utc(true_at).date())
    assert token not in case_tokens(case_key, PROVINCE_KEY, DAY_SLACK)

    proc = run_checkpoint([
        "exposure", "check", "--config", str(config), "--protocol", "bluezone",
        "--daily-key", CASE_DAILY_KEY.hex(), "--date", "2025-10-09", "--json",
    ])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    matches = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(m["entry"], m["matched_tokens"], m["clock_synced"]) for m in matches] == [
        (case, 1, True)
    ]
    assert matches[0]["entered_at"] == utc(true_at).isoformat().replace("+00:00", "Z")
    # Someone else's key of that day finds nothing.
    other = run_checkpoint([
        "exposure", "check", "--config", str(config), "--protocol", "bluezone",
        "--daily-key", bytes(range(1, 33)).hex(), "--date", "2025-10-09", "--json",
    ])  # fmt: skip
    assert other.returncode == 0 and other.stdout == ""


# -- the daemon -------------------------------------------------------------------------------


def door_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A live (not simulated) daemon with no radio and no lights, on a real visit log."""
    from appliance.config import load_config

    (tmp_path / "province.key").write_bytes(b"k" * 32)
    config = tmp_path / "checkpoint.toml"
    config.write_text(
        '[checkpoint]\nid = "TQ-TEST-01"\nagency = "Sở Thông tin và Truyền thông"\n'
        f'[storage]\ndatabase = "{tmp_path}/visits.db"\n'
        f'[privacy]\nkey_file = "{tmp_path}/province.key"\n'
        '[ble]\nsource = "none"\n[gpio]\nenabled = false\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path))
    return load_config(config)


class Kernel:
    """appliance.clock.is_synchronized as the kernel would answer it, counting the calls."""

    def __init__(self, synced: bool) -> None:
        self.synced = synced
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.synced


def record_before_sync(path: Path, *uuids: str, boot_id: str | None = None) -> None:
    """What an earlier run of the daemon recorded before the clock was synchronised."""
    real = clock.read_boot()
    assert real is not None  # Linux
    reading = BootReading(boot_id or real.boot_id, real.wall - STALE_S, real.boot_s)
    log = VisitLog(path, boot_clock=lambda: reading)
    for uuid in uuids:
        log.record(Entry(uuid, "no_app", reading.wall - 5, via_sensor=True), clock_synced=False)
    log.close()


@pytest.mark.slow
def test_the_daemon_corrects_once_the_clock_is_synchronised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from appliance.daemon import Daemon

    config = door_unit(tmp_path, monkeypatch)
    db = config.storage.database
    record_before_sync(db, "this boot")
    record_before_sync(db, "earlier boot", boot_id=EARLIER_BOOT)
    kernel = Kernel(synced=False)
    monkeypatch.setattr(clock, "is_synchronized", kernel)
    caplog.set_level(logging.INFO, logger="checkpoint")
    daemon = Daemon.from_config(config)
    parts = daemon.parts
    statuses: list[dict[str, Any]] = []

    async def scenario() -> None:
        running = asyncio.create_task(daemon.run())
        await asyncio.sleep(2.5)
        statuses.append(json.loads(status_path(config).read_text()))
        parts.visits.add_manual("Nguyễn Văn Khách", clock_synced=parts.watch.synced)
        kernel.synced = True  # NTP has set the clock
        await asyncio.sleep(2.5)
        statuses.append(json.loads(status_path(config).read_text()))
        daemon.stop()
        assert await running == 0

    asyncio.run(scenario())
    assert statuses[0]["health"]["clock"] == {"synchronized": False, "awaiting_correction": 1}
    assert statuses[1]["health"]["clock"] == {"synchronized": True, "awaiting_correction": 0}
    assert "clock synchronised: corrected 2 records taken before sync" in caplog.messages
    assert kernel.calls <= 7  # about once a second over five seconds, not once per decision
    conn = sqlite3.connect(db)
    query = "SELECT uuid, clock_synced, entered_at FROM entries WHERE kind = 'no_app'"
    rows = {u: (synced, t) for u, synced, t in conn.execute(query)}
    manual = conn.execute("SELECT clock_synced FROM entries WHERE kind = 'manual'").fetchall()
    conn.close()
    assert rows["this boot"][0] == 1
    assert rows["this boot"][1] == pytest.approx(time.time() - 5, abs=30)  # three days moved
    assert rows["earlier boot"][0] == 0
    assert manual == [(1,)]


def test_a_daemon_started_after_sync_corrects_what_its_last_run_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from appliance.daemon import build

    config = door_unit(tmp_path, monkeypatch)
    record_before_sync(config.storage.database, "left by the last run")
    monkeypatch.setattr(clock, "is_synchronized", Kernel(synced=True))
    caplog.set_level(logging.INFO, logger="checkpoint")
    parts = build(config)  # start-up, before any tick: nothing waits for the network
    try:
        assert "clock synchronised: corrected 1 records taken before sync" in caplog.messages
        assert parts.visits.awaiting_clock_correction(clock.boot_id()) == 0
        assert parts.watch.health() == {"synchronized": True, "awaiting_correction": 0}
    finally:
        parts.close()


# -- the door's session clock -----------------------------------------------------------------
# The daemon's door runs on CLOCK_BOOTTIME anchored at its start, which NTP never steps; the
# visit log turns each time into wall time when it records it (docs/architecture.md §time).


def test_a_visit_observed_before_the_step_and_recorded_after_gets_its_true_time(
    tmp_path: Path,
) -> None:
    from appliance.core.tokens import TokenMaker

    session = clock.SessionClock(BOOT, anchor=unsynced_wall(0))  # the daemon started at boot
    maker = TokenMaker(PROVINCE_KEY)
    seen = session.anchor + 600  # boot 600 s on the door's clock: the wall read 2025-10-06
    token = maker.token("bluezone", case_id_at(BOOTED_AT + 600), utc(seen))
    # NTP stepped the clock by three days; the decision is recorded at boot 610 s.
    synced_reading = BootReading(BOOT, BOOTED_AT + 610, 610)
    log = VisitLog(tmp_path / "visits.db", boot_clock=lambda: synced_reading, session=session,
                   key_day_of=maker.key_day)  # fmt: skip
    log.record(Entry("case", "app", seen, "bluezone", ((token, seen),)), clock_synced=True)
    log.record(EntryUpdate("case", left_at=seen + 5), clock_synced=True)
    log.flush()
    assert row(log, "case") | {"revision": None} == {
        "entered_at": BOOTED_AT + 600, "left_at": BOOTED_AT + 605, "clock_synced": 1,
        "boot_id": None, "entered_boot_s": None, "left_boot_s": None, "revision": None,
        "synced_at": None,
    }  # fmt: skip
    assert key_days(log) == [(token, "2025-10-06")]  # the key that made it, not its time's
    assert log.rekeyed_days() == {date(2025, 10, 9): {date(2025, 10, 6)}}
    # Recorded before the step, unsynchronised: the wall time of then, the boot time kept.
    before = VisitLog(tmp_path / "before.db", boot_clock=boot_clock(610), session=session)
    before.record(Entry("early", "no_app", seen), clock_synced=False)
    before.flush()
    assert (row(before, "early")["entered_at"], row(before, "early")["entered_boot_s"]) == (
        unsynced_wall(600),
        600.0,
    )
    before.close()
    log.close()


@pytest.mark.slow
def test_a_phone_at_the_desk_counts_once_when_ntp_steps_the_clock_by_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.core.doorway import DoorTuning
    from appliance.daemon import Daemon, build
    from appliance.models import SensorEvent, Sighting
    from appliance.protocols import frames

    config = door_unit(tmp_path, monkeypatch)
    true_time = time.time
    stale = {"s": STALE_S}  # fake-hwclock's wall clock, three days behind until NTP
    monkeypatch.setattr(time, "time", lambda: true_time() - stale["s"])
    kernel = Kernel(synced=False)
    monkeypatch.setattr(clock, "is_synchronized", kernel)
    desk_phone = frames.bluezone_android(bytes(range(12)))
    # A door with a presence sensor (a real one would be on GPIO pins).
    daemon = Daemon(build(config, door_tuning=DoorTuning(sensor=True)))
    pipeline, door_now = daemon.parts.pipeline, daemon.parts.clock.door_now
    true_at: dict[str, float] = {}

    def entries() -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(config.storage.database)
        try:
            return conn.execute(
                "SELECT kind, entered_at, left_at, clock_synced, via_sensor FROM entries"
                " ORDER BY entered_at"
            ).fetchall()
        finally:
            conn.close()

    async def near(seconds: float) -> None:
        """The phone at the desk advertises, as bleak's callback would hand it on."""
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            pipeline.on_sighting(Sighting(door_now(), "4A:00:00:00:00:01", -50, desk_phone))
            await asyncio.sleep(0.2)

    async def scenario() -> None:
        running = asyncio.create_task(daemon.run())
        await asyncio.sleep(0.6)
        true_at["arrived"] = true_time()
        pipeline.on_sensor(SensorEvent(door_now(), "in"))
        for _ in range(20):  # the phone's entry is decided and written, before sync
            await near(0.5)
            if entries():
                break
        assert [(k, synced) for k, _, _, synced, _ in entries()] == [("app", 0)]
        # Someone without the app comes in; in the same second NTP steps the clock by days.
        true_at["crossed"] = true_time()
        pipeline.on_sensor(SensorEvent(door_now(), "in"))
        stale["s"] = 0.0
        kernel.synced = True
        await near(3.0)  # the phone stays at the desk across the step
        true_at["stopped"] = true_time()
        daemon.stop()  # the crossing is decided at shutdown, after the step
        assert await running == 0

    asyncio.run(scenario())
    (app, no_app) = entries()
    assert app[0] == "app" and no_app[0] == "no_app"  # the phone counted once, not again
    assert app[1] == pytest.approx(true_at["arrived"], abs=0.5)  # corrected to the true time
    assert true_at["crossed"] < app[2] <= true_at["stopped"] + 0.5  # its stay went on
    assert app[3] == 1
    # Observed before the step, recorded after it: the sensor's moment, at its true time.
    assert no_app[1] == pytest.approx(true_at["crossed"], abs=0.5)
    assert no_app[3:] == (1, 1)


def test_the_clock_watch_asks_the_kernel_once_a_second_and_corrects_once_synchronised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from appliance.daemon.clocks import CLOCK_CHECK_S, ClockWatch

    path = tmp_path / "visits.db"
    record_before_sync(path, "before sync")
    kernel = Kernel(synced=False)
    monkeypatch.setattr(clock, "is_synchronized", kernel)
    caplog.set_level(logging.INFO, logger="checkpoint")
    log = VisitLog(path)
    monotonic = [50.0]
    watch = ClockWatch(log, monotonic=lambda: monotonic[0])
    try:
        watch.check()
        watch.check()  # within the second: the last answer holds
        assert kernel.calls == 1 and watch.clock_synced() is False
        assert watch.health() == {"synchronized": False, "awaiting_correction": 1}
        kernel.synced = True
        watch.check()
        assert watch.clock_synced() is False  # not asked again yet
        monotonic[0] += CLOCK_CHECK_S
        watch.check()
        assert kernel.calls == 2 and watch.clock_synced() is True
        assert watch.health() == {"synchronized": True, "awaiting_correction": 0}
        assert "clock synchronised: corrected 1 records taken before sync" in caplog.messages
        assert row(log, "before sync")["clock_synced"] == 1
        # The simulated lobby's virtual clock is synchronised by definition.
        kernel.synced = False
        simulated = ClockWatch(log, simulated=True)
        simulated.check()
        assert simulated.clock_synced() is True and kernel.calls == 2
    finally:
        log.close()
