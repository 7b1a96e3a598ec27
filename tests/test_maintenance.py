"""`checkpoint maintenance`, the daily timer's upkeep, on a real visit log file: retention that
never drops an unsent record, a corrupt file refused in one line, and a daemon writing beside
it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from appliance import clock
from appliance.core.doorway import Entry
from appliance.store import VisitLog
from appliance.store.outbox import Outbox
from tests.test_doctor import corrupt, make_visit_log, write_unit

DAY = 86400.0


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "is_synchronized", lambda: True)


def old_and_new_entries(database: Path) -> None:
    now = time.time()
    log = VisitLog(database)
    for uuid, age in (("old-acked", 30), ("old-unsynced", 30), ("recent-acked", 1)):
        log.record(Entry(uuid, "app", now - age * DAY, "bluezone", (("ab" * 16, 0.0),)))
    log.flush()
    log.add_manual("Nguyễn Văn A", phone="0912 345 678", when=now - 30 * DAY)
    log.close()
    box = Outbox(database)  # the collector acknowledges them, as the uploader marks them
    try:
        box.mark_synced([r for r in box.batch(100) if r.uuid.endswith("-acked")], now)
    finally:
        box.close()


def uuids(database: Path, kinds: str = "'app'") -> set[str]:
    conn = sqlite3.connect(database)
    try:
        return {r[0] for r in conn.execute(f"SELECT uuid FROM entries WHERE kind IN ({kinds})")}
    finally:
        conn.close()


def steps_of(out: str) -> dict[str, dict[str, object]]:
    return {o["step"]: o for o in map(json.loads, out.splitlines())}


def test_old_acknowledged_entries_go_and_unsent_ones_stay(cli, tmp_path, synced) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path)
    database = tmp_path / "state" / "visits.db"
    old_and_new_entries(database)
    refused = tmp_path / "state" / "inbox" / "rejected" / "1-ab.json"
    refused.parent.mkdir(parents=True)
    refused.write_text('{"kind": "manual", "name": "Trần Thị B"}')
    os.utime(refused, (time.time() - 30 * DAY,) * 2)
    result = cli("maintenance", "--config", str(config), "--json")
    assert result.code == 0, result.err
    steps = steps_of(result.out)
    assert list(steps) == ["quick_check", "retention", "wal checkpoint", "optimize"]
    assert all(s["status"] == "ok" for s in steps.values())
    retention = steps["retention"]
    assert (retention["entries"], retention["manual_details"]) == (1, 1)
    assert (retention["inbox_requests"], retention["kept_unsynced"]) == (1, 2)
    assert uuids(database) == {"old-unsynced", "recent-acked"}
    assert not refused.exists()
    assert not Path(f"{database}-wal").exists() or Path(f"{database}-wal").stat().st_size == 0


def test_retention_waits_for_a_synchronised_clock(cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(clock, "is_synchronized", lambda: False)
    config = write_unit(tmp_path)
    old_and_new_entries(tmp_path / "state" / "visits.db")
    result = cli("maintenance", "--config", str(config))
    assert result.code == 0
    assert "postponed retention: the clock is not synchronised" in result.out
    assert len(uuids(tmp_path / "state" / "visits.db")) == 3


def test_a_corrupt_visit_log_exits_1_with_one_line_and_is_not_written(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path)
    database = tmp_path / "state" / "visits.db"
    make_visit_log(database)
    corrupt(database)
    before = database.read_bytes()
    result = cli("maintenance", "--config", str(config))
    assert result.code == 1 and result.out == ""
    (line,) = result.err.splitlines()
    assert line.startswith("checkpoint: ") and "failed its integrity check" in line
    assert line.endswith("stop the daemon, move the file aside and restore a backup")
    assert database.read_bytes() == before
    as_json = cli("maintenance", "--config", str(config), "--json")
    assert as_json.code == 1
    assert steps_of(as_json.out)["quick_check"]["status"] == "fail"


def test_it_waits_for_a_writer_holding_the_database(cli, tmp_path, synced) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path)
    database = tmp_path / "state" / "visits.db"
    old_and_new_entries(database)
    daemon = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
    daemon.execute("BEGIN IMMEDIATE")  # the daemon's flush, caught in the middle
    daemon.execute(
        "INSERT INTO entries (uuid, kind, entered_at, created_at) VALUES ('new', 'no_app', ?, ?)",
        (time.time(), time.time()),
    )
    done = threading.Timer(1.0, lambda: daemon.execute("COMMIT"))
    done.start()
    started = time.monotonic()
    try:
        result = cli("maintenance", "--config", str(config), "--json")
    finally:
        done.join()
        daemon.close()
    assert result.code == 0, result.err
    assert time.monotonic() - started >= 0.9  # it waited for the commit rather than failing
    assert steps_of(result.out)["retention"]["entries"] == 1
    assert "new" in uuids(database, kinds="'app', 'no_app'")


def test_nothing_to_do_before_the_first_start(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_unit(tmp_path)
    result = cli("maintenance", "--config", str(config))
    assert result.code == 0 and "does not exist yet" in result.out
    assert not (tmp_path / "state" / "visits.db").exists()


def test_a_failing_step_names_itself_and_the_file(cli, tmp_path, synced, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from appliance.store import upkeep

    def failing(db: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(upkeep, "optimize", failing)
    config = write_unit(tmp_path)
    database = tmp_path / "state" / "visits.db"
    old_and_new_entries(database)
    result = cli("maintenance", "--config", str(config), "--json")
    assert result.code == 1
    steps = steps_of(result.out)
    assert [s["status"] for s in steps.values()] == ["ok", "ok", "ok", "fail"]
    assert steps["optimize"]["detail"] == f"optimize on {database}: disk I/O error"
    assert steps["optimize"]["advice"] == "try again later; `checkpoint doctor` checks the file"
    (line,) = result.err.splitlines()
    assert f"optimize on {database}: disk I/O error" in line
