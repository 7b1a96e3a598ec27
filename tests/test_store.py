"""The visit log on disk: schema, batching, retention, integrity, and what never reaches it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.ble.simulator import LobbyScenario
from appliance.core.doorway import Entry, EntryUpdate
from appliance.errors import StoreError
from appliance.models import Sighting
from appliance.store import VisitLog
from appliance.store.schema import SCHEMA_VERSION
from tests.builders import acknowledge, on_disk
from tests.sim import run_lobby

DAY = 86400.0


def app_entry(
    uuid: str, t: float, tokens: tuple[tuple[str, float], ...] = (("aa" * 16, 0.0),)
) -> Entry:
    return Entry(uuid, "app", t, "bluezone", tokens, via_sensor=True)


def test_new_database_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "v.db")
    assert on_disk(tmp_path / "v.db", "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert on_disk(tmp_path / "v.db", "PRAGMA journal_mode") == [("wal",)]
    tables = on_disk(tmp_path / "v.db", "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {name for (name,) in tables} >= {"entries", "entry_tokens", "manual_details"}
    log.close()
    log.close()  # idempotent


def test_writes_are_queued_until_flush_then_committed_together(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    log = VisitLog(path)
    for i in range(50):
        log.record(app_entry(f"u{i}", 1000.0 + i))
    log.record(EntryUpdate("u3", left_at=2000.0))
    log.record(EntryUpdate("u3", token=("bb" * 16, 1500.0)))
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT count(*) FROM entries").fetchone()[0] == 0
    assert log.flush() == 52
    assert reader.execute("SELECT count(*) FROM entries").fetchone()[0] == 50
    row = next(r for r in log.entries_between(0, 1e12) if r.uuid == "u3")
    assert row.left_at == 2000.0
    assert log.tokens_of(row.id) == ["aa" * 16, "bb" * 16]
    log.close()


def test_the_same_entry_twice_is_stored_once(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "v.db")
    log.record(app_entry("same", 1.0))
    log.record(app_entry("same", 1.0))
    log.flush()
    assert log.total() == 1


def test_counts_recent_and_range_queries(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "v.db")
    log.record(app_entry("a", 100.0))
    log.record(Entry("b", "no_app", 200.0, via_sensor=True))
    log.flush()
    log.add_manual("Nguyễn Thị Hương", organisation="Sở Y tế", when=300.0)
    assert log.counts(0, 1000) == {"app": 1, "no_app": 1, "manual": 1}
    assert log.counts(150, 250) == {"app": 0, "no_app": 1, "manual": 0}
    assert [r.kind for r in log.recent(3)] == ["manual", "no_app", "app"]
    manual = next(r for r in log.entries_between(0, 1000) if r.kind == "manual")
    assert log.manual_details(manual.id) == {
        "name": "Nguyễn Thị Hương",
        "organisation": "Sở Y tế",
        "phone": None,
        "purpose": None,
    }


def test_retention_never_drops_an_unsynced_record(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "v.db")
    now = 100 * DAY
    log.record(app_entry("old-synced", now - 30 * DAY))
    log.record(app_entry("old-unsynced", now - 30 * DAY))
    log.record(app_entry("recent", now - 1 * DAY))
    log.flush()
    log.add_manual("Trần Văn A", when=now - 30 * DAY)
    acknowledge(tmp_path / "v.db", {"old-synced"}, now)
    removed = log.apply_retention(now, 21)
    assert removed == {"entries": 1, "manual_details": 1}
    left = {r.uuid for r in log.entries_between(0, now)}
    assert "old-unsynced" in left and "recent" in left and "old-synced" not in left
    # The manual entry's count stays (unsynced) but the person's details are gone.
    manual = next(r for r in log.entries_between(0, now) if r.kind == "manual")
    assert log.manual_details(manual.id) is None


def test_retention_deletes_replayed_and_simulated_records_that_are_never_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v.db"
    for origin in ("replay", "simulated"):
        log = VisitLog(path, origin=origin)
        log.record(app_entry(f"old-{origin}", 0.0))
        log.flush()
        log.close()
    log = VisitLog(path)
    assert log.apply_retention(30 * DAY, 21)["entries"] == 2
    assert log.total() == 0
    assert on_disk(path, "SELECT count(*) FROM entry_tokens") == [(0,)]


def test_stays_left_open_by_a_crash_are_closed_and_never_overlap_forever(tmp_path: Path) -> None:
    log = VisitLog(tmp_path / "v.db")
    log.record(app_entry("crashed", 1000.0))
    log.record(app_entry("later", 1000.0 + 3 * DAY))
    log.record(EntryUpdate("later", left_at=1000.0 + 3 * DAY + 300))
    log.flush()
    rows = {r.uuid: r for r in log.entries_between(0, 1e12)}
    # Open stays count at most a working day when looking for overlaps.
    assert log.overlapping_app_entries(rows["crashed"], open_end=1000.0 + 10 * DAY) == 0
    assert log.close_open_entries() == 1
    closed = next(r for r in log.entries_between(0, 2000))
    assert closed.left_at is not None and closed.left_at >= closed.entered_at


def test_migration_is_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.store import schema

    broken = schema.V1 + "\nCREATE TABLE entries (x);\n"  # fails after creating the tables
    monkeypatch.setattr(schema, "MIGRATIONS", [broken])
    with pytest.raises(StoreError):
        VisitLog(tmp_path / "v.db")
    conn = sqlite3.connect(tmp_path / "v.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0] == 0
    conn.close()
    monkeypatch.undo()
    VisitLog(tmp_path / "v.db").close()  # the real migration then runs cleanly


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "v.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer than this software"):
        VisitLog(tmp_path / "v.db")


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="corrupt") as info:
        VisitLog(path)
    assert "restore a backup" in str(info.value)


def test_damaged_pages_fail_the_quick_check(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    log = VisitLog(path)
    for i in range(2000):
        log.record(app_entry(f"u{i}", float(i)))
    log.flush()
    assert not log.checkpoint_wal(busy_timeout_ms=1000).busy
    log.close()
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(3 * page, 3 * page + 12):  # scribble over a b-tree page header
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        VisitLog(path)


def test_readonly_log_never_takes_a_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    writer = VisitLog(path)
    reader = VisitLog(path, readonly=True)
    assert reader.counts(0, 1e12)["app"] == 0
    writer.record(app_entry("x", 1.0))
    assert writer.flush() == 1  # would fail with "database is locked" if the reader held one
    assert reader.counts(0, 1e12)["app"] == 1
    with pytest.raises(StoreError, match="readonly"):
        reader.apply_retention(1e12, 1)
    assert reader.total() == 1


def test_readonly_log_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="has the daemon run yet"):
        VisitLog(tmp_path / "absent.db", readonly=True)


def test_raw_identifiers_and_mac_addresses_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    log = VisitLog(path)
    macs: set[str] = set()

    def remember(s: Sighting) -> None:
        macs.add(s.address)

    scenario = LobbyScenario(
        visitors=40, staff=5, reception_staff=2, passers_by=20, opens_h=8, closes_h=10, seed=3
    )
    lobby, _ = run_lobby(scenario, log, on_sighting=remember)
    log.flush()
    # While open, recent commits sit in the write-ahead log: read it too, then the folded file.
    blobs = [b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("v.db"))]
    assert (tmp_path / "v.db-wal").exists()
    log.close()
    blobs.append(path.read_bytes())
    raw_ids = {raw for ids in lobby.truth.identifiers.values() for _, raw in ids}
    assert len(raw_ids) > 50 and len(macs) > 50
    blob = b"".join(blobs)
    check = VisitLog(path, readonly=True)
    assert check.counts(0, 1e12)["app"] > 20  # the run did store visits
    for raw in raw_ids:
        for form in (raw, raw.hex().encode(), raw.hex().upper().encode()):
            assert form not in blob
    for mac in macs:
        for form in (mac, mac.replace(":", ""), mac.lower(), mac.replace(":", "").lower()):
            assert form.encode() not in blob
        assert bytes.fromhex(mac.replace(":", "")) not in blob
