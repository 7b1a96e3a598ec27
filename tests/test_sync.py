"""Sync end to end: the device's uploader and `checkpoint enroll` against the real collector
(uvicorn, TLS, trustme), through a proxy that drops, delays, fails and cuts requests, on SQLite
and on PostgreSQL. Every record must arrive exactly once."""

# ruff: noqa: F811

from __future__ import annotations

import json
import logging
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.clock import BootReading
from appliance.config import load_config
from appliance.core.doorway import Entry, EntryUpdate
from appliance.errors import TlsError, Transient, Unauthorized
from appliance.status import status_file_name
from appliance.store import VisitLog
from appliance.store.outbox import Outbox
from appliance.sync import build_uploader
from appliance.sync.client import CollectorClient
from appliance.sync.retry import Backoff
from appliance.sync.tuning import NETWORK_POLL_S, SyncTuning
from appliance.sync.uploader import Uploader
from tests.builders import on_disk, record_keyed_before_sync
from tests.collector_harness import (  # noqa: F401
    Collector,
    Tls,
    collector,
    database_url,
    postgres_server,
    tls,
)
from tests.conftest import run_checkpoint
from tests.faultproxy import Fault, FaultProxy, random_plan

DAY = 86400
MANUAL_NAME = "Nguyễn Thị Hồng Nhung"
MANUAL_PHONE = "0912 345 678"


def fill(db: Path, n: int, *, seed: int = 1, start: float | None = None) -> set[str]:
    """n live entries of every kind, some app ones with later updates; returns their UUIDs."""
    rng = random.Random(seed)
    log = VisitLog(db)
    t = start if start is not None else time.time() - 3 * DAY
    uuids: set[str] = set()
    for i in range(n):
        t += rng.uniform(5, 120)
        kind = rng.choice(["app", "app", "no_app", "manual"])
        if kind == "manual":
            uuids.add(log.add_manual(MANUAL_NAME, phone=MANUAL_PHONE, when=t))
            continue
        u = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        uuids.add(u)
        if kind == "app":
            token = f"{rng.getrandbits(128):032x}"
            log.record(Entry(u, "app", t, protocol="bluezone", tokens=((token, t),)))
            if i % 3 == 0:
                log.record(EntryUpdate(u, left_at=t + 600))
        else:
            log.record(Entry(u, "no_app", t, via_sensor=True))
        if i % 200 == 0:
            log.flush()
    log.close()
    return uuids


def uploader_for(
    db: Path, client: CollectorClient, tuning: SyncTuning | None = None, **options: Any
) -> Uploader:
    """An uploader on the visit log at ``db`` (as the daemon builds it, outbox and all)."""
    return Uploader(lambda: Outbox(db), client, tuning, **options)


def device_config(tmp_path: Path, **sync: object) -> Path:
    config = tmp_path / "device" / "checkpoint.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# the door unit's settings",
        "[checkpoint]",
        'agency = "(not enrolled)"',
        "[storage]",
        'database = "data/visits.db"',
        "[privacy]",
        'key_file = "province.key"',
        "[ble]",
        'source = "simulate"',
        "[gpio]",
        "enabled = false",
    ]
    if sync:
        lines.append("[sync]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in sync.items()]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def enrolled_device(tmp_path: Path, server: Collector, tls: Tls, **sync: object) -> Path:
    config = device_config(tmp_path, **sync)
    result = run_checkpoint(
        ["enroll", "--server", server.url, "--code", server.code(), "--ca", str(tls.ca_file),
         "--config", str(config)],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return config


def collector_uuids(server: Collector) -> list[str]:
    return [str(r[0]) for r in server.query("SELECT uuid FROM visits")]


def local_uuids(db: Path) -> set[str]:
    return {r[0] for r in on_disk(db, "SELECT uuid FROM entries")}


# -- enrollment -----------------------------------------------------------------------------


def test_enroll_stores_token_and_ca_privately_and_sync_works_without_editing(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    config = enrolled_device(tmp_path, collector, tls)
    directory = config.parent
    for name in ("sync.token", "province-ca.pem", "province.key"):
        mode = stat.S_IMODE((directory / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    text = config.read_text(encoding="utf-8")
    assert "# the door unit's settings" in text  # comments kept
    data = tomllib.loads(text)
    assert data["sync"]["url"] == collector.url
    assert data["checkpoint"]["agency"] == "Sở Thông tin và Truyền thông"
    assert data["checkpoint"]["id"].startswith("CP-")
    # The province key the collector handed out is the one it checks exposures with.
    assert (directory / "province.key").read_bytes() == collector.province_key
    loaded = load_config(config)
    assert loaded.sync is not None
    assert loaded.sync.token_path(loaded.directory) == directory / "sync.token"
    fill(loaded.storage.database, 20)
    result = run_checkpoint(["sync", "--now", "--config", str(config)])
    assert result.returncode == 0, result.stderr
    assert "sent 20 record(s)" in result.stdout and "left 0" in result.stdout
    assert len(collector_uuids(collector)) == 20


def test_enroll_refuses_wrong_ca_and_used_code_with_clear_messages(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    import trustme

    other = trustme.CA()
    other_ca = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(other_ca))
    config = device_config(tmp_path)
    code = collector.code()
    wrong = run_checkpoint(
        ["enroll", "--server", collector.url, "--code", code, "--ca", str(other_ca),
         "--config", str(config)],
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "not trusted by the pinned CA" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert not (config.parent / "sync.token").exists()
    # TLS failed before the request: the code is not spent.
    ok = run_checkpoint(
        ["enroll", "--server", collector.url, "--code", code, "--ca", str(tls.ca_file),
         "--config", str(config)],
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    again = run_checkpoint(
        ["enroll", "--server", collector.url, "--code", code, "--ca", str(tls.ca_file),
         "--config", str(config)],
    )  # fmt: skip
    assert again.returncode == 1
    assert "already used" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert "enrollment code already used" in collector.log_text()
    plain = run_checkpoint(
        ["enroll", "--server", collector.url.replace("https", "http"), "--code", code,
         "--config", str(config)],
    )  # fmt: skip
    assert plain.returncode == 1 and "HTTPS" in plain.stderr


def test_wrong_and_expired_tokens_and_wrong_ca_are_refused_with_clear_messages(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    fill(db, 5)
    wrong = uploader_for(db, CollectorClient(collector.url, token="cpd_wrong", ca_file=tls.ca_file))
    with pytest.raises(Unauthorized, match="unknown device token"):
        wrong.push()
    info = collector.enroll()
    from collector.db import open_database

    store = open_database(collector.database)
    with store.transaction(write=True) as tx:
        tx.execute(
            "UPDATE checkpoints SET token_expires_at = 1 WHERE id = ?", (info["checkpoint_id"],)
        )
    store.close()
    expired = uploader_for(
        db, CollectorClient(collector.url, token=info["token"], ca_file=tls.ca_file)
    )
    with pytest.raises(Unauthorized, match="expired"):
        expired.push()
    import trustme

    other_ca = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    bad_tls = uploader_for(
        db, CollectorClient(collector.url, token=info["token"], ca_file=other_ca)
    )
    with pytest.raises(TlsError, match="pinned CA"):
        bad_tls.push()
    assert Outbox(db).backlog() == 5  # nothing marked: everything still waits
    assert collector_uuids(collector) == []
    # The collector's side says it too, for its operator.
    server_log = collector.log_text()
    assert "unknown device token" in server_log and "expired" in server_log


# -- exactly once through faults ------------------------------------------------------------


def test_every_record_arrives_exactly_once_through_faults_and_a_collector_restart(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    expected = fill(db, 1500, seed=7)
    token = collector.enroll()["token"]
    base_plan = random_plan(seed=11, fault_rate=0.5)
    restarts: list[int] = []

    def plan(index: int, method: str, path: str) -> Fault:
        if index in (9, 23):
            # Kill the collector while this request is on its way in (SIGKILL: mid-batch).
            restarts.append(index)
            threading.Timer(0.005, lambda: collector.stop(kill=True)).start()
            return Fault.PASS
        return base_plan(index, method, path)

    server_ssl = tls.ca.issue_cert("127.0.0.1").configure_cert  # the proxy's own certificate
    import ssl

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl(server_ctx)
    upstream_ctx = ssl.create_default_context(cafile=str(tls.ca_file))
    proxy = FaultProxy(
        "127.0.0.1", collector.port, server_ssl=server_ctx, upstream_ssl=upstream_ctx,
        plan=plan, delay_s=2.0,
    )  # fmt: skip
    with proxy:
        client = CollectorClient(proxy.url, token=token, ca_file=tls.ca_file, timeout=1.0)
        uploader = uploader_for(db, client, SyncTuning(batch_size=100, pace_s=0))
        failures = 0
        deadline = time.monotonic() + 240
        while Outbox(db).backlog() and time.monotonic() < deadline:
            if collector.proc is not None and collector.proc.poll() is not None:
                collector.start()  # what systemd's Restart= would do
            try:
                uploader.push()
            except Transient:
                failures += 1
    assert Outbox(db).backlog() == 0, "the outbox did not empty"
    got = collector_uuids(collector)
    assert len(got) == len(set(got))  # no duplicates
    assert set(got) == expected == local_uuids(db)
    assert restarts == [9, 23] and failures > 10
    assert sum(proxy.counts[f] for f in Fault if f is not Fault.PASS) > 10
    # The content arrived too: ends of stays and tokens.
    ended = {
        str(r[0]) for r in collector.query("SELECT uuid FROM visits WHERE left_at IS NOT NULL")
    }
    local_ended = {r[0] for r in on_disk(db, "SELECT uuid FROM entries WHERE left_at IS NOT NULL")}
    [(local_tokens,)] = on_disk(db, "SELECT count(*) FROM entry_tokens")
    assert ended == local_ended
    assert collector.query("SELECT count(*) FROM visit_tokens") == [(local_tokens,)]


def test_a_record_changed_after_sending_is_sent_again_and_merged(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    token = collector.enroll()["token"]
    log = VisitLog(db)
    t = time.time() - 3600
    log.record(Entry("11111111-1111-4111-8111-111111111111", "app", t, "gaen", (("a" * 32, t),)))
    log.flush()
    uploader = uploader_for(db, CollectorClient(collector.url, token=token, ca_file=tls.ca_file))
    assert uploader.push().new == 1
    log.record(EntryUpdate("11111111-1111-4111-8111-111111111111", token=("b" * 32, t + 900)))
    log.record(EntryUpdate("11111111-1111-4111-8111-111111111111", left_at=t + 1800))
    log.flush()
    assert Outbox(db).backlog() == 1  # back in the outbox
    result = uploader.push()
    assert (result.new, result.duplicates) == (0, 1)
    assert collector.query("SELECT left_at FROM visits") == [(t + 1800,)]
    tokens = sorted(str(r[0]) for r in collector.query("SELECT token FROM visit_tokens"))
    assert tokens == ["a" * 32, "b" * 32]
    log.close()


def test_a_record_taken_before_sync_reaches_the_collector_with_its_corrected_time(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    from appliance.clock import BootReading

    db = tmp_path / "visits.db"
    token = collector.enroll()["token"]
    true = time.time() - 3600  # when the visitor really came, 200 s after the boot
    stale = 2 * DAY  # the Pi's wall clock before NTP
    log = VisitLog(db, boot_clock=lambda: BootReading("boot-1", true - stale, 200.0))
    uuid = "22222222-2222-4222-8222-222222222222"
    log.record(Entry(uuid, "no_app", true - stale, via_sensor=True), clock_synced=False)
    log.flush()
    uploader = uploader_for(db, CollectorClient(collector.url, token=token, ca_file=tls.ca_file))
    assert uploader.push().new == 1
    assert collector.query("SELECT entered_at, clock_synced FROM visits") == [(true - stale, 0)]
    # NTP sets the clock 1000 s after the boot: the record is corrected and sent again.
    assert log.correct_clock(true + 800, 1000.0, "boot-1") == 1
    assert Outbox(db).backlog() == 1
    result = uploader.push()
    assert (result.new, result.duplicates) == (0, 1)
    assert collector.query("SELECT entered_at, clock_synced FROM visits") == [(true, 1)]
    assert Outbox(db).backlog() == 0
    log.close()


@pytest.fixture
def older_collector(database_url: str, tls: Tls, tmp_path: Path) -> Iterator[Collector]:
    """A collector of the release before visits carried ``key_days``, not yet upgraded."""
    server = Collector(database_url, tls, tmp_path, province_key=os.urandom(32),
                       module="tests.collector_before_key_days")  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        server.stop()


def keyed_before_sync_then_corrected(db: Path, true: float, raw_id: bytes) -> tuple[str, str]:
    """A Bluezone visit at ``true`` recorded while the wall clock was three days behind, its
    token keyed with that day; then NTP sets the clock (800 s later). Returns (UUID, token)."""
    stale = 3 * DAY
    log = VisitLog(db, boot_clock=lambda: BootReading("boot-1", true - stale, 200.0))
    try:
        uuid, token = record_keyed_before_sync(log, b"p" * 32, raw_id, true - stale)
        assert log.correct_clock(true + 800, 1000.0, "boot-1") == 1
    finally:
        log.close()
    assert "key_days" in Outbox(db).batch(1000)[-1].payload
    return uuid, token


def test_a_collector_older_than_key_days_still_gets_the_corrected_times(
    older_collector: Collector, tls: Tls, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "visits.db"
    expected = fill(db, 30)
    true = time.time() - 3600
    first, _ = keyed_before_sync_then_corrected(db, true, bytes(range(12)))
    token = older_collector.enroll()["token"]
    uploader = uploader_for(
        db, CollectorClient(older_collector.url, token=token, ca_file=tls.ca_file)
    )
    caplog.set_level(logging.WARNING, logger="appliance.sync.uploader")
    result = uploader.push()
    assert (result.sent, result.rejected) == (31, 0)
    assert set(collector_uuids(older_collector)) == expected | {first}
    visit = "SELECT entered_at, clock_synced FROM visits WHERE uuid = ?"
    assert older_collector.query(visit, (first,)) == [(true, 1)]
    # The next one goes without the field at once: the unit remembers, and says so once.
    second, _ = keyed_before_sync_then_corrected(db, true + 60, bytes(range(1, 13)))
    assert (uploader.push().sent, Outbox(db).backlog(), Outbox(db).rejected()) == (1, 0, 0)
    assert older_collector.query(visit, (second,)) == [(true + 60, 1)]
    warnings = [m for m in caplog.messages if "key_days" in m]
    assert len(warnings) == 1 and "upgrade the collector" in warnings[0]


def test_a_current_collector_gets_the_key_days(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    true = time.time() - 3600
    uuid, token = keyed_before_sync_then_corrected(db, true, bytes(range(12)))
    client = CollectorClient(collector.url, token=collector.enroll()["token"], ca_file=tls.ca_file)
    uploader = uploader_for(db, client)
    assert uploader.push().sent == 1 and uploader.collector_takes_key_days
    day = time.strftime("%Y-%m-%d", time.gmtime(true - 3 * DAY))
    assert collector.query("SELECT token, key_day FROM visit_tokens") == [(token, day)]
    assert collector.query("SELECT entered_at FROM visits WHERE uuid = ?", (uuid,)) == [(true,)]


def test_a_record_the_collector_refuses_is_kept_and_counted_and_the_rest_goes(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    expected = fill(db, 40)
    on_disk(db, "UPDATE entries SET entered_at = -5 WHERE id = 17")  # a corrupt clock reading
    [(bad,)] = on_disk(db, "SELECT uuid FROM entries WHERE id = 17")
    token = collector.enroll()["token"]
    uploader = uploader_for(db, CollectorClient(collector.url, token=token, ca_file=tls.ca_file))
    result = uploader.push()
    assert (result.sent, result.rejected) == (39, 1)
    assert set(collector_uuids(collector)) == expected - {bad}
    outbox = Outbox(db)
    assert (outbox.backlog(), outbox.rejected()) == (0, 1)
    assert bad in local_uuids(db)  # never deleted


def test_only_what_the_privacy_model_allows_leaves_the_device(tmp_path: Path) -> None:
    db = tmp_path / "visits.db"
    fill(db, 200)
    batch = Outbox(db).batch(1000)
    text = json.dumps([r.payload for r in batch], ensure_ascii=False)
    assert MANUAL_NAME not in text and MANUAL_PHONE not in text
    allowed = {"uuid", "kind", "protocol", "entered_at", "left_at", "clock_synced", "via_sensor",
               "tokens"}  # fmt: skip
    assert {k for r in batch for k in r.payload} <= allowed
    manual = [r.payload for r in batch if r.payload["kind"] == "manual"]
    assert manual and all(set(p) == {"uuid", "kind", "entered_at", "clock_synced"} for p in manual)


# -- backoff --------------------------------------------------------------------------------


def test_backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() -> None:
    backoff = Backoff(10, 300, random.Random(3))
    delays = [backoff.next() for _ in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(300, 10 * 2**n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 300 and delays[-1] >= 150
    assert backoff.next(retry_after=200) >= 200  # the collector's Retry-After is honoured…
    assert backoff.next(retry_after=100_000) == 300  # …up to the cap
    backoff.reset()
    assert backoff.next() <= 10


class FakeClock:
    """The uploader's clock, moved by hand: its schedule runs without waiting."""

    def __init__(self) -> None:
        self.start = time.time()
        self.elapsed = 0.0

    def wall(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)

    advance = sleep


def test_the_uploader_retries_with_backoff_and_sends_soon_after_the_network_returns(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    fill(db, 30)
    token = collector.enroll()["token"]
    collector.stop()
    network = {"signature": 1}
    clock = FakeClock()
    uploader = uploader_for(
        db,
        CollectorClient(collector.url, token=token, ca_file=tls.ca_file, timeout=2),
        # Backoff starts at 30 s: only the network's return can beat it here.
        SyncTuning(interval_s=3600, max_backoff_s=3600, heartbeat_s=3600),
        network=lambda: network["signature"],
        rng=random.Random(1),
        clock=clock,
    )
    try:
        wait = uploader.step()
        assert uploader.backoff.failures == 1
        assert uploader.status.state == "offline"
        assert "connection refused" in (uploader.status.last_error or "")
        assert uploader.status.next_attempt is not None
        assert uploader.status.next_attempt - clock.wall() >= 10  # backing off
        assert 15 <= wait <= 30  # the first backoff: [base / 2, base]
        clock.advance(NETWORK_POLL_S)
        uploader.step()  # the network did not change: no new try before the backoff ends
        assert uploader.backoff.failures == 1
        clock.advance(wait - NETWORK_POLL_S)
        wait = uploader.step()  # the backoff is over: tried again, and waits longer
        assert uploader.backoff.failures == 2 and 30 <= wait <= 60
        collector.start()
        network["signature"] = 2  # a route appeared (DHCP lease, cable plugged in)
        clock.advance(NETWORK_POLL_S)  # the thread's next look at the network
        uploader.step()
        assert uploader.status.state == "ok" and uploader.backoff.failures == 0
        assert len(collector_uuids(collector)) == 30
        assert uploader.status.last_success == clock.wall()
    finally:
        uploader.close()
        uploader.close()  # closing twice is fine


def test_an_idle_unit_shows_offline_when_the_collector_is_away(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    token = collector.enroll()["token"]
    collector.stop()
    clock = FakeClock()
    uploader = uploader_for(
        db, CollectorClient(collector.url, token=token, ca_file=tls.ca_file), clock=clock
    )
    try:
        wait = uploader.step()
        # Nothing to send, but the heartbeat found the collector away: not "ok".
        assert uploader.status.state == "offline"
        assert uploader.status.last_success is None
        assert wait > 0 and uploader.status.next_attempt == clock.wall() + wait
    finally:
        uploader.close()


def test_a_missing_pinned_ca_is_reported_and_the_uploader_keeps_running(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    fill(db, 3)
    token = collector.enroll()["token"]
    missing = tmp_path / "gone-ca.pem"
    uploader = uploader_for(db, CollectorClient(collector.url, token=token, ca_file=missing))
    uploader.start()
    try:
        deadline = time.monotonic() + 10
        while uploader.status.state == "starting" and time.monotonic() < deadline:
            time.sleep(0.05)  # the thread's first try (real I/O), not a backoff
        assert uploader.status.state == "tls"
        assert "gone-ca.pem" in (uploader.status.last_error or "")
        assert uploader.running
    finally:
        uploader.stop()
    assert not uploader.running


def test_records_changing_while_batches_are_in_flight_arrive_in_their_final_state(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    db = tmp_path / "visits.db"
    token = collector.enroll()["token"]
    uploader = uploader_for(
        db,
        CollectorClient(collector.url, token=token, ca_file=tls.ca_file),
        SyncTuning(batch_size=50),
    )
    stop = threading.Event()
    rng = random.Random(5)

    def writer() -> None:
        log = VisitLog(db)
        t = time.time() - 7200
        open_stays: list[str] = []
        for i in range(600):
            t += 1
            u = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
            log.record(Entry(u, "app", t, "bluezone", ((f"{rng.getrandbits(128):032x}", t),)))
            open_stays.append(u)
            if i % 3 == 0 and open_stays:
                old = open_stays.pop(rng.randrange(len(open_stays)))
                log.record(EntryUpdate(old, token=(f"{rng.getrandbits(128):032x}", t)))
                log.record(EntryUpdate(old, left_at=t + 5))
            if i % 20 == 0:
                log.flush()
        log.close()
        stop.set()

    VisitLog(db).close()
    thread = threading.Thread(target=writer)
    thread.start()
    while not stop.is_set():
        uploader.push()
    thread.join()
    uploader.push()  # what changed after the last pass
    local = {
        r[0]: (r[1], r[2])
        for r in on_disk(
            db,
            "SELECT e.uuid, e.left_at, count(t.token) FROM entries e"
            " JOIN entry_tokens t ON t.entry_id = e.id GROUP BY e.id",
        )
    }
    remote = {
        str(r[0]): (r[1], int(str(r[2])))
        for r in collector.query(
            "SELECT v.uuid, v.left_at, count(t.token) FROM visits v"
            " JOIN visit_tokens t ON t.visit_uuid = v.uuid GROUP BY v.uuid, v.left_at"
        )
    }
    assert len(local) == 600
    assert remote == local


# -- in the daemon --------------------------------------------------------------------------


def test_the_daemon_uploads_its_backlog_heartbeats_and_receives_alerts(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    config = enrolled_device(tmp_path, collector, tls, interval_s=5.0, heartbeat_s=10.0)
    loaded = load_config(config)
    expected = fill(loaded.storage.database, 50)  # a week offline, say
    checkpoint_id = loaded.checkpoint.id
    from collector.db import open_database
    from collector.services.alerts import add_alert

    store = open_database(collector.database)
    with store.transaction(write=True) as tx:
        add_alert(tx, checkpoint_id, "exposure", {"visits": []}, time.time())
    store.close()
    env = {**os.environ, "RUNTIME_DIRECTORY": str(config.parent / "data"),
           "CHECKPOINT_LOG_LEVEL": "WARNING"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--simulate", "--config", str(config),
         "--speed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    status_in = config.parent / "data" / status_file_name(load_config(config).storage.database)
    try:
        deadline = time.monotonic() + 40
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                status = json.loads(status_in.read_text())
            except (OSError, ValueError):
                status = {}
            sync = status.get("health", {}).get("sync", {})
            if sync.get("state") == "ok" and sync.get("alerts"):
                break
            time.sleep(0.2)
        sync = status["health"]["sync"]
        assert sync["state"] == "ok", sync
        assert sync["backlog"] == 0
        assert sync["alerts"][0]["kind"] == "exposure"
        assert set(collector_uuids(collector)) == expected  # simulated entries never leave
        health = collector.query("SELECT health FROM checkpoints WHERE id = ?", (checkpoint_id,))
        reported = json.loads(str(health[0][0]))
        assert reported["health"]["scanner"]["state"] == "ok" and "sync" not in reported["health"]
        stored_health = str(health[0][0])
        assert MANUAL_NAME not in stored_health and MANUAL_PHONE not in stored_health
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    shown = run_checkpoint(["sync", "--config", str(config)])
    assert shown.returncode == 0 and "waiting to be sent: 0" in shown.stdout
    assert "exposure" in shown.stdout


def test_sync_without_enrollment_says_what_to_do(tmp_path: Path) -> None:
    config = device_config(tmp_path, url="https://127.0.0.1:9")
    result = run_checkpoint(["sync", "--now", "--config", str(config)])
    assert result.returncode == 2
    assert "no sync token" in result.stderr and "checkpoint enroll" in result.stderr


def test_build_uploader_uses_the_pinned_ca_and_token_beside_the_config(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    config = enrolled_device(tmp_path, collector, tls)
    loaded = load_config(config)
    uploader = build_uploader(loaded, outbox=lambda: Outbox(loaded.storage.database))
    assert uploader.client.ca_file == config.parent / "province-ca.pem"
    assert uploader.client.token and uploader.client.token.startswith("cpd_")
    reply = requests.post(
        f"{collector.url}/v1/heartbeat",
        json={"health": {}},
        headers={"Authorization": f"Bearer {uploader.client.token}"},
        verify=str(tls.ca_file),
        timeout=5,
    )
    assert reply.status_code == 200


def test_doctor_checks_the_token_the_ca_and_the_collector(
    collector: Collector, tls: Tls, tmp_path: Path
) -> None:
    config = enrolled_device(tmp_path, collector, tls)
    good = run_checkpoint(["doctor", "--config", str(config)])
    assert "PASS  sync token:" in good.stdout
    assert "PASS  collector:" in good.stdout and "answers over TLS" in good.stdout
    (config.parent / "sync.token").chmod(0o644)
    loose = run_checkpoint(["doctor", "--config", str(config)])
    assert (
        loose.returncode == 1
        and "FAIL  sync token:" in loose.stdout
        and "chmod 600" in loose.stdout
    )
    (config.parent / "sync.token").chmod(0o600)
    collector.stop()
    away = run_checkpoint(["doctor", "--config", str(config)])
    assert away.returncode == 1
    assert "FAIL  collector:" in away.stdout and "connection refused" in away.stdout
