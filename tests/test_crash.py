"""The crash test (tests/crash.py) with 20 kills, its checks shown to catch what they look for,
and the live simulation it needs kept out of reach of a door unit."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from appliance.core.doorway import Entry
from appliance.store import VisitLog
from tests.builders import acknowledge, on_disk
from tests.conftest import REPO, run_checkpoint
from tests.crash import as_sent, check_outbox, compare, read_device

FIGURES = re.compile(
    r"^crash test: kills (?P<kills>\d+), rows committed (?P<committed>\d+),"
    r" rows at the collector (?P<remote>\d+), duplicates (?P<duplicates>\d+),"
    r" lost (?P<lost>\d+), changed (?P<changed>\d+), integrity (?P<integrity>\S+),"
    r" resent after a kill \d+, [\d.]+ s$"
)


def test_twenty_kills_while_syncing_lose_change_and_double_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "tests.crash", "--kills", "20", "--seed", "20"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(lines) == 1 and run.stderr == ""
    figures = FIGURES.match(lines[0])
    assert figures is not None, lines[0]
    assert int(figures["kills"]) == 20
    assert int(figures["committed"]) > 100  # the lobby is busy: every cycle records entries
    assert int(figures["remote"]) == int(figures["committed"])
    assert (figures["duplicates"], figures["lost"], figures["changed"]) == ("0", "0", "0")
    assert figures["integrity"] == "ok"


def _three_entries(db: Path) -> list[str]:
    log = VisitLog(db)
    t = time.time() - 600
    uuids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]
    for i, u in enumerate(uuids):
        log.record(Entry(u, "no_app", t + i, via_sensor=True))
    log.flush()
    log.close()
    return uuids


def test_the_checks_see_a_lost_row_a_changed_row_and_an_acknowledgement_taken_back(
    tmp_path: Path,
) -> None:
    db = tmp_path / "visits.db"
    lost, changed, unacked = _three_entries(db)
    acknowledge(db, {unacked}, time.time())
    before, integrity, doubled = read_device(db)
    assert integrity == "ok" and doubled == 0
    on_disk(db, "DELETE FROM entries WHERE uuid = ?", (lost,))
    on_disk(db, "UPDATE entries SET entered_at = entered_at + 1 WHERE uuid = ?", (changed,))
    on_disk(db, "UPDATE entries SET synced_at = NULL WHERE uuid = ?", (unacked,))
    after, _, _ = read_device(db)
    assert compare(before, after) == ([lost], [changed, unacked])
    assert compare(before, before) == ([], [])


def test_the_checks_see_an_acknowledged_row_the_collector_lacks_and_one_it_should_not_have(
    tmp_path: Path,
) -> None:
    db = tmp_path / "visits.db"
    missing, queued, sent = _three_entries(db)
    acknowledge(db, {missing, sent}, time.time())
    rows, _, _ = read_device(db)
    remote = {sent: as_sent(rows[sent]), queued: as_sent(rows[queued])}
    remote["00000000-0000-4000-8000-0000000000ff"] = as_sent(rows[sent])
    problems, resent = check_outbox(rows, remote)
    assert resent == 1  # the collector has the queued one: its acknowledgement was lost
    assert [p.split(":")[0] for p in problems] == [missing, "00000000-0000-4000-8000-0000000000ff"]


def test_live_simulation_is_refused_unless_a_test_asks_for_it(tmp_path: Path) -> None:
    config = tmp_path / "checkpoint.toml"
    config.write_text('[storage]\ndatabase = "visits.db"\n[gpio]\nenabled = false\n')
    refused = run_checkpoint(
        ["run", "--simulate-live", "--config", str(config)],
        env={"CHECKPOINT_TEST_LIVE_SIMULATION": ""}, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "for tests only" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not (tmp_path / "visits.db").exists()
