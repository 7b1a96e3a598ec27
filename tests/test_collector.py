"""The real collector (`checkpoint-collector serve` under uvicorn, over TLS) on SQLite and on
PostgreSQL: enrollment, idempotent ingest, authentication, heartbeat and alerts, the adoption
report, the entry export, the exposure check with the device's token derivation, the OpenAPI
document, and the admin commands' errors (docs/architecture.md §privacy, §sync)."""

# ruff: noqa: F811  (pytest fixtures imported from the harness are parameters of the tests)
from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from appliance.clock import BootReading
from appliance.core import tokens
from appliance.protocols import bluezone_keys, gaen_keys
from appliance.store import VisitLog
from appliance.store.outbox import Outbox
from collector.api.routing import MAX_INFLATED
from collector.db import (
    SCHEMA_V1,
    SCHEMA_VERSION,
    PostgresDatabase,
    SqliteDatabase,
    migrate,
    open_database,
)
from collector.services import auth, enrollment
from tests.builders import record_keyed_before_sync
from tests.collector_harness import Collector, collector, database_url, postgres_server, tls  # noqa: F401

TIMEOUT = 20
T = TypeVar("T")
AGENCY = "Sở Thông tin và Truyền thông"  # the harness's default code
DOOR = "Cửa chính"
BOOT_ID = "6b4e0a5c-0d1e-4f59-9d43-3b1c2f7a9e10"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- helpers ----------------------------------------------------------------------------------


class Sql:
    """Direct access to the collector's database, for checks and for what no API does."""

    def __init__(self, url: str) -> None:
        self.db: SqliteDatabase | PostgresDatabase = open_database(url)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.db.transaction() as tx:
            return tx.all(sql, params)

    def count(self, table: str) -> int:
        return int(self.rows(f"SELECT count(*) FROM {table}")[0][0])

    def counts(self) -> tuple[int, int]:
        return self.count("visits"), self.count("visit_tokens")

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self.db.transaction(write=True) as tx:
            tx.execute(sql, params)

    # In-process, where the admin command itself is not under test (a subprocess is slower).
    def code(self, agency: str = AGENCY, door: str = DOOR) -> str:
        return enrollment.create_code(self.db, agency=agency, door=door, now=time.time()).code

    def role_token(self, role: str) -> str:
        return auth.create_role_token(self.db, role, label=f"test {role}", now=time.time())


@pytest.fixture
def sql(collector: Collector) -> Iterator[Sql]:
    db = Sql(collector.database)
    try:
        yield db
    finally:
        db.db.close()


def call(
    c: Collector,
    method: str,
    path: str,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> requests.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return requests.request(
        method,
        c.url + path,
        headers=sent,
        verify=str(c.tls.ca_file),
        timeout=TIMEOUT,
        **kwargs,
    )


def post_raw(
    c: Collector, token: str | None, body: bytes, *, encoding: str | None = "gzip"
) -> requests.Response:
    """POST bytes to /v1/visits exactly as given (already compressed if ``encoding``)."""
    headers = {"Content-Type": "application/json"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return call(c, "POST", "/v1/visits", token=token, headers=headers, data=body)


def send(c: Collector, token: str | None, records: list[dict[str, Any]]) -> requests.Response:
    """A batch as a door unit sends it: gzip JSON."""
    return post_raw(c, token, gzip.compress(json.dumps({"records": records}).encode()))


def sent_ok(c: Collector, token: str, records: list[dict[str, Any]]) -> dict[str, int]:
    reply = send(c, token, records)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def visit(
    kind: str = "app",
    entered_at: float = 1_741_600_000.0,
    *,
    left_at: float | None = None,
    protocol: str | None = None,
    tokens_: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "kind": kind,
        "entered_at": entered_at,
        "left_at": left_at,
        "clock_synced": True,
        "via_sensor": kind != "manual",
    }
    if kind == "app":
        record["protocol"] = protocol or "bluezone"
        record["tokens"] = tokens_ if tokens_ is not None else [os.urandom(16).hex()]
    record.update(extra)
    return record


def ts(text: str) -> float:
    """``2025-03-10T17:00:00`` (UTC) → UNIX seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def enroll_as(c: Collector, db: Sql, agency: str = AGENCY, door: str = DOOR) -> dict[str, str]:
    return c.enroll(db.code(agency, door))


def heartbeat(c: Collector, token: str, **body: Any) -> dict[str, Any]:
    reply = call(c, "POST", "/v1/heartbeat", token=token, json=body)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def exposure(c: Collector, token: str, body: dict[str, Any]) -> requests.Response:
    return call(c, "POST", "/v1/exposure/check", token=token, json=body)


def race(n: int, work: Callable[[], T]) -> list[T]:
    """Run ``work`` on ``n`` threads released at once."""
    barrier = threading.Barrier(n)

    def start() -> T:
        barrier.wait(timeout=TIMEOUT)
        return work()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: start(), range(n)))


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("checkpoint-collector: "), lines
    return lines[0]


# -- 1. enrollment ----------------------------------------------------------------------------


def test_enrollment_codes_are_one_time_and_tokens_stored_hashed(
    collector: Collector, sql: Sql
) -> None:
    expiring = collector.code(AGENCY, DOOR, "--expires", "1s")
    made = time.monotonic()

    code = collector.code()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code), code
    first = call(collector, "POST", "/v1/enroll", json={"code": code, "hostname": "tq-pi-01"})
    assert first.status_code == 200, first.text
    reply = first.json()
    assert reply["checkpoint_id"].startswith("CP-")
    assert reply["token"].startswith("cpd_") and len(reply["token"]) > 40
    assert reply["agency"] == "Sở Thông tin và Truyền thông"
    assert reply["door"] == "Cửa chính"
    assert base64.b64decode(reply["province_key"]) == collector.province_key
    expires = datetime.fromisoformat(reply["token_expires_at"].replace("Z", "+00:00"))
    assert abs((expires - datetime.now(UTC)).days - 730) <= 1

    again = call(collector, "POST", "/v1/enroll", json={"code": code})
    assert again.status_code == 410
    assert "already used" in again.json()["detail"]
    assert reply["checkpoint_id"] in again.json()["detail"]

    unknown = call(collector, "POST", "/v1/enroll", json={"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
    assert unknown.status_code == 403
    assert "unknown enrollment code" in unknown.json()["detail"]

    typed = collector.code("Công an tỉnh Tuyên Quang", "Cổng phụ")
    sloppy = call(collector, "POST", "/v1/enroll", json={"code": typed.replace("-", "").lower()})
    assert sloppy.status_code == 200, sloppy.text
    assert sloppy.json()["agency"] == "Công an tỉnh Tuyên Quang"
    assert sloppy.json()["door"] == "Cổng phụ"

    named = collector.enroll(collector.code("Sở Tài chính", "Cửa trước", "--id", "TQ-STTTT-01"))
    assert named["checkpoint_id"] == "TQ-STTTT-01"
    # Asking for a code for an ID that is already enrolled is refused.
    taken = collector.cli("codes", "create", "--agency", "X", "--door", "Y", "--id", "TQ-STTTT-01")
    assert "already enrolled" in one_line_error(taken)

    # Two codes made for one new ID before either is used: the second must not take over the
    # unit the first enrolled; a re-enrollment code does, and the old token stops working.
    twin_a = collector.code("Sở Y tế", "Cửa A", "--id", "TQ-SYT-02")
    twin_b = collector.code("Sở Xây dựng", "Cửa B", "--id", "TQ-SYT-02")
    first_twin = collector.enroll(twin_a)
    refused = call(collector, "POST", "/v1/enroll", json={"code": twin_b})
    assert refused.status_code == 409 and "codes reenroll" in refused.json()["detail"]
    again_code = collector.cli("codes", "reenroll", "--id", "TQ-SYT-02")
    assert again_code.returncode == 0, again_code.stderr
    replaced = collector.enroll(again_code.stdout.strip())
    assert (replaced["checkpoint_id"], replaced["agency"]) == ("TQ-SYT-02", "Sở Y tế")
    old_token = call(collector, "POST", "/v1/heartbeat", token=first_twin["token"], json={})
    assert old_token.status_code == 401
    assert heartbeat(collector, replaced["token"])["alerts"] == []

    # Units racing with one code (PostgreSQL runs them concurrently): exactly one enrolls.
    for _ in range(3):
        contested = sql.code("Sở Tư pháp", "Cửa chính")
        body = {"code": contested}
        statuses = race(8, partial(call, collector, "POST", "/v1/enroll", json=body))
        assert sorted(r.status_code for r in statuses) == [200] + [410] * 7
        assert all("already used" in r.json()["detail"] for r in statuses if r.status_code == 410)
    assert sql.rows("SELECT count(*) FROM checkpoints WHERE agency = ?", ("Sở Tư pháp",)) == [(3,)]

    time.sleep(max(0.0, 1.2 - (time.monotonic() - made)))
    expired = call(collector, "POST", "/v1/enroll", json={"code": expiring})
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]

    stored = dict(sql.rows("SELECT id, token_hash FROM checkpoints"))
    assert {reply["checkpoint_id"], sloppy.json()["checkpoint_id"], "TQ-STTTT-01"} <= set(stored)
    assert len(stored) == 7
    for enrolled in (reply, sloppy.json(), named):
        kept = stored[enrolled["checkpoint_id"]]
        assert kept != enrolled["token"]
        assert kept == hashlib.sha256(enrolled["token"].encode()).hexdigest()
    hostnames = dict(sql.rows("SELECT id, hostname FROM checkpoints"))
    assert hostnames[reply["checkpoint_id"]] == "tq-pi-01"
    # Codes too are kept only as digests.
    code_hashes = {r[0] for r in sql.rows("SELECT code_hash FROM enrollment_codes")}
    assert hashlib.sha256(code.replace("-", "").encode()).hexdigest() in code_hashes
    assert not any(code.replace("-", "") in h.upper() for h in code_hashes)


# -- 2. ingest --------------------------------------------------------------------------------


def test_ingest_is_idempotent_and_merges_resent_records(collector: Collector, sql: Sql) -> None:
    token = enroll_as(collector, sql)["token"]
    t0 = ts("2025-03-10T02:00:00")
    batch = [
        visit("app", t0, left_at=t0 + 300, tokens_=["aa" * 16, "bb" * 16]),
        visit("no_app", t0 + 10, left_at=t0 + 20),
        visit("manual", t0 + 30),
        visit("app", t0 + 40, protocol="gaen", tokens_=["cc" * 16]),
    ]
    assert sent_ok(collector, token, batch) == {
        "received": 4, "new": 4, "duplicates": 0, "refused": [],
    }  # fmt: skip
    assert sql.counts() == (4, 3)

    assert sent_ok(collector, token, batch) == {
        "received": 4, "new": 0, "duplicates": 4, "refused": [],
    }  # fmt: skip
    assert sql.counts() == (4, 3)

    fresh = [visit("no_app", t0 + 50), visit("app", t0 + 60, tokens_=["dd" * 16])]
    half = [batch[0], fresh[0], batch[1], fresh[1]]
    assert sent_ok(collector, token, half) == {
        "received": 4, "new": 2, "duplicates": 2, "refused": [],
    }  # fmt: skip
    assert sql.counts() == (6, 4)

    # The open stay ends, and a later rotation added a token: merged, counted as a duplicate.
    resent = {**batch[3], "left_at": t0 + 900, "tokens": ["cc" * 16, "ee" * 16]}
    assert sent_ok(collector, token, [resent]) == {
        "received": 1, "new": 0, "duplicates": 1, "refused": [],
    }  # fmt: skip
    row = sql.rows("SELECT left_at, kind, protocol FROM visits WHERE uuid = ?", (resent["uuid"],))
    assert row == [(t0 + 900, "app", "gaen")]
    merged = sql.rows("SELECT token FROM visit_tokens WHERE visit_uuid = ?", (resent["uuid"],))
    assert sorted(r[0] for r in merged) == ["cc" * 16, "ee" * 16]
    assert sql.counts() == (6, 5)

    # A known end is not moved by a later copy: that copy contradicts the record, refused.
    moved = {**batch[0], "left_at": t0 + 5000}
    assert sent_ok(collector, token, [moved]) == {
        "received": 1, "new": 0, "duplicates": 0,
        "refused": [{"uuid": moved["uuid"], "reason": f"stored with left_at {t0 + 300}, sent"
                     f" {t0 + 5000}"}],
    }  # fmt: skip
    assert sql.rows("SELECT left_at FROM visits WHERE uuid = ?", (batch[0]["uuid"],)) == [
        (t0 + 300,)
    ]

    # The same UUID twice within one batch is stored once.
    twice = visit("no_app", t0 + 70)
    assert sent_ok(collector, token, [twice, dict(twice)]) == {
        "received": 2, "new": 1, "duplicates": 1, "refused": [],
    }  # fmt: skip
    assert sql.rows("SELECT count(*) FROM visits WHERE uuid = ?", (twice["uuid"],)) == [(1,)]
    assert sql.counts() == (7, 5)

    # Another unit cannot end or add tokens to this unit's record by sending its UUID.
    other = enroll_as(collector, sql, "Sở Y tế", "Cửa sau")["token"]
    hijack = {**batch[3], "uuid": fresh[1]["uuid"], "left_at": t0 + 99, "tokens": ["ff" * 16]}
    assert sent_ok(collector, other, [hijack]) == {
        "received": 1, "new": 0, "duplicates": 0,
        "refused": [{"uuid": hijack["uuid"],
                     "reason": "this uuid is stored for another checkpoint"}],
    }  # fmt: skip
    assert sql.rows("SELECT left_at FROM visits WHERE uuid = ?", (fresh[1]["uuid"],)) == [(None,)]
    assert sql.counts() == (7, 5)

    stored = sql.rows(
        "SELECT uuid, kind, protocol, entered_at, local_day, clock_synced, via_sensor, agency"
        " FROM visits WHERE uuid = ?",
        (batch[1]["uuid"],),
    )
    assert stored == [(batch[1]["uuid"], "no_app", None, t0 + 10, "2025-03-10", 1, 1, AGENCY)]

    # A unit that timed out retries while its first attempt is still being stored: the batch
    # is stored once, and the attempts' replies add up.
    storm = [visit("no_app", t0 + 100 + i) for i in range(300)]
    replies = race(6, lambda: sent_ok(collector, token, storm))
    assert sum(r["new"] for r in replies) == 300
    assert all(r["received"] == 300 and r["new"] + r["duplicates"] == 300 for r in replies)
    assert sql.counts() == (307, 5)

    # Uncompressed JSON is accepted too.
    plain = post_raw(
        collector, token, json.dumps({"records": [visit("manual", t0)]}).encode(), encoding=None
    )
    assert plain.status_code == 200 and plain.json()["new"] == 1, plain.text


def test_a_resent_record_with_its_clock_corrected_takes_the_true_time(
    collector: Collector, sql: Sql
) -> None:
    token = enroll_as(collector, sql)["token"]
    true = ts("2025-03-10T02:00:00")  # 09:00 in Hanoi
    wrong = true - 3 * 86400  # a Pi's clock before NTP: three days behind
    first = visit("app", wrong, left_at=wrong + 300, tokens_=["aa" * 16], clock_synced=False)
    other = visit("no_app", wrong + 60, clock_synced=False)
    assert sent_ok(collector, token, [first, other])["new"] == 2

    def stored(record: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sql.rows(
            "SELECT entered_at, left_at, local_day, clock_synced FROM visits WHERE uuid = ?",
            (record["uuid"],),
        )

    assert stored(first) == [(wrong, wrong + 300, "2025-03-07", 0)]
    # Corrected on the device and sent again: the true times replace the flagged ones.
    corrected = {**first, "entered_at": true, "left_at": true + 300, "clock_synced": True,
                 "tokens": ["aa" * 16, "bb" * 16]}  # fmt: skip
    assert sent_ok(collector, token, [corrected]) == {
        "received": 1, "new": 0, "duplicates": 1, "refused": [],
    }  # fmt: skip
    assert stored(first) == [(true, true + 300, "2025-03-10", 1)]
    merged = sql.rows("SELECT token FROM visit_tokens WHERE visit_uuid = ?", (first["uuid"],))
    assert sorted(r[0] for r in merged) == ["aa" * 16, "bb" * 16]
    # A synchronised time is never moved again (such a copy is refused), and a stale flagged
    # copy changes nothing.
    moved = {**corrected, "entered_at": true + 999, "left_at": true + 999}
    assert [r["uuid"] for r in sent_ok(collector, token, [moved])["refused"]] == [first["uuid"]]
    assert stored(first) == [(true, true + 300, "2025-03-10", 1)]
    assert sent_ok(collector, token, [{**first, "clock_synced": False}])["duplicates"] == 1
    assert stored(first) == [(true, true + 300, "2025-03-10", 1)]
    # Another unit cannot move this unit's flagged record by sending its UUID.
    intruder = enroll_as(collector, sql, "Sở Y tế", "Cửa sau")["token"]
    hijack = {**other, "entered_at": true, "clock_synced": True}
    assert sent_ok(collector, intruder, [hijack])["refused"][0]["uuid"] == other["uuid"]
    assert stored(other) == [(wrong + 60, None, "2025-03-07", 0)]


def test_a_visit_keyed_before_the_units_clock_was_synchronised_is_found(
    collector: Collector, sql: Sql, tmp_path: Path
) -> None:
    secret = collector.province_key
    daily_key = os.urandom(32)
    true_at = ts("2025-03-10T10:05:00")
    wrong = true_at - 3 * 86400  # the unit's clock before NTP: its token has the 7th's key
    raw_id = bluezone_keys.slot_id(daily_key, bluezone_keys.slot_of(datetime.fromtimestamp(
        true_at, UTC)))  # fmt: skip
    unit = enroll_as(collector, sql)["token"]
    path = tmp_path / "visits.db"
    log = VisitLog(path, boot_clock=lambda: BootReading(BOOT_ID, wrong, 600.0))
    case_uuid, case_token = record_keyed_before_sync(log, secret, raw_id, wrong)
    outbox = Outbox(path)
    try:
        first = outbox.batch(10)
        assert "key_days" not in first[0].payload  # flagged, sent as an older unit sends it
        sent_ok(collector, unit, [r.payload for r in first])
        outbox.mark_synced(first, time.time())
        assert log.correct_clock(true_at + 900, 1500.0, BOOT_ID) == 1  # NTP, then the daemon
        (corrected,) = outbox.batch(10)
    finally:
        outbox.close()
        log.close()
    assert corrected.payload["key_days"] == {case_token: "2025-03-07"}
    assert corrected.payload["entered_at"] == true_at
    assert sent_ok(collector, unit, [corrected.payload])["duplicates"] == 1
    case = {"protocol": "bluezone", "key": daily_key.hex(), "first_day": "2025-03-10"}
    health = sql.role_token("health")

    def found() -> list[tuple[str, str, int]]:
        reply = exposure(collector, health, case)
        assert reply.status_code == 200, reply.text
        return [(m["visit"], m["entered_at"], m["matched_tokens"]) for m in reply.json()["matches"]]

    assert found() == [(case_uuid, "2025-03-10T10:05:00Z", 1)]
    # A later copy without the day (an older unit's format) does not make the collector forget.
    older = {k: v for k, v in corrected.payload.items() if k != "key_days"}
    assert sent_ok(collector, unit, [older])["duplicates"] == 1
    assert found() == [(case_uuid, "2025-03-10T10:05:00Z", 1)]
    # The day is only ever that of a token the record carries, and a real date.
    for bad in ({"ff" * 16: "2025-03-07"}, {case_token: "not a day"}):
        refused = send(collector, unit, [{**corrected.payload, "key_days": bad}])
        assert refused.status_code == 422, refused.text


def test_a_collector_database_of_the_first_schema_migrates(tmp_path: Path) -> None:
    path = tmp_path / "collector.db"
    conn = sqlite3.connect(path)
    for statement in SCHEMA_V1:
        conn.execute(statement)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO checkpoints (id, agency, door, enrolled_at) VALUES ('c', 'a', 'd', 0)"
    )
    conn.execute(
        "INSERT INTO visits VALUES ('v', 'c', 'a', 'd', 'app', 'gaen', 1, 2, '1970-01-01', 1, 0, 3)"
    )
    conn.execute(f"INSERT INTO visit_tokens VALUES ('{'aa' * 16}', 'v')")
    conn.commit()
    conn.close()
    db = open_database(str(path))
    try:
        with db.transaction() as tx:
            assert tx.all("SELECT token, visit_uuid, key_day FROM visit_tokens") == [
                ("aa" * 16, "v", None)
            ]
            version = tx.one("SELECT value FROM meta WHERE key = 'schema_version'")
            assert version == (str(SCHEMA_VERSION),)
            # Counted for the resend rule, and the index that counted them is gone again.
            assert tx.all("SELECT uuid, token_count FROM visits") == [("v", 1)]
            assert tx.one("SELECT refused_records FROM checkpoints") == (0,)
            assert tx.all("SELECT name FROM sqlite_master WHERE name LIKE '%counting'") == []
    finally:
        db.close()
    assert migrate(open_database(str(path))) == 0


def _gz(value: Any) -> bytes:
    return gzip.compress(json.dumps(value).encode())


def _batch_text(good: dict[str, Any], bad_json: str) -> bytes:
    """A batch whose second record is given as raw JSON text (NaN, Infinity…)."""
    return gzip.compress(('{"records": [' + json.dumps(good) + ", " + bad_json + "]}").encode())


def test_ingest_rejects_malformed_batches_whole(collector: Collector, sql: Sql) -> None:
    token = enroll_as(collector, sql)["token"]
    t0 = ts("2025-03-10T02:00:00")
    sent_ok(collector, token, [visit("app", t0)])
    before = sql.counts()
    assert before == (1, 1)

    def good() -> dict[str, Any]:
        return visit("app", t0 + 5, tokens_=["ab" * 16])

    nan_text = json.dumps({**good(), "entered_at": 0}).replace(
        '"entered_at": 0', '"entered_at": NaN'
    )
    inf_text = json.dumps({**good(), "entered_at": 0}).replace(
        '"entered_at": 0', '"entered_at": Infinity'
    )
    big = [visit("no_app", t0 + i) for i in range(5001)]
    cases: list[tuple[str, bytes, str | None, int, list[str]]] = [
        (
            "not a number",
            _gz({"records": [good(), {**good(), "entered_at": "yesterday"}]}),
            "gzip",
            422,
            ["records[1].entered_at"],
        ),
        (
            "a name (privacy)",
            _gz({"records": [{**good(), "name": "Nguyễn Văn A"}]}),
            "gzip",
            422,
            ["records[0].name", "Extra inputs are not permitted"],
        ),
        (
            "a phone number next to the batch",
            _gz({"records": [good()], "phone": "0912345678"}),
            "gzip",
            422,
            ["phone", "Extra inputs are not permitted"],
        ),
        (
            "app without protocol",
            _gz({"records": [good(), {**good(), "protocol": None}]}),
            "gzip",
            422,
            ["records[1]", "needs its protocol"],
        ),
        (
            "manual with tokens",
            _gz({"records": [good(), {**visit("manual", t0), "tokens": ["ab" * 16]}]}),
            "gzip",
            422,
            ["records[1]", "no protocol and no tokens"],
        ),
        (
            "token not hex",
            _gz({"records": [good(), {**good(), "tokens": ["XY" * 16]}]}),
            "gzip",
            422,
            ["records[1].tokens[0]"],
        ),
        (
            "raw 12-byte identifier instead of a token",
            _gz({"records": [good(), {**good(), "tokens": ["ab" * 12]}]}),
            "gzip",
            422,
            ["records[1].tokens[0]"],
        ),
        (
            "left before entering",
            _gz({"records": [good(), {**good(), "left_at": t0 - 1}]}),
            "gzip",
            422,
            ["records[1]", "left_at is before entered_at"],
        ),
        (
            "bad uuid",
            _gz({"records": [good(), {**good(), "uuid": "not-a-uuid"}]}),
            "gzip",
            422,
            ["records[1].uuid"],
        ),
        (
            "unknown kind",
            _gz({"records": [good(), {**good(), "kind": "staff"}]}),
            "gzip",
            422,
            ["records[1].kind"],
        ),
        (
            "beyond 2100",
            _gz({"records": [good(), {**good(), "entered_at": 5e9}]}),
            "gzip",
            422,
            ["records[1].entered_at"],
        ),
        ("NaN", _batch_text(good(), nan_text), "gzip", 422, ["records[1].entered_at"]),
        ("Infinity", _batch_text(good(), inf_text), "gzip", 422, ["records[1].entered_at"]),
        ("no records", _gz({"visits": []}), "gzip", 422, ["records"]),
        ("a list", _gz([good()]), "gzip", 422, []),
        ("not JSON", gzip.compress(b"{records: oops"), "gzip", 422, ["not valid JSON"]),
        ("not JSON, plain", b"\x00\xff garbage", None, 422, ["not valid JSON"]),
        ("not gzip", b"this is not gzip at all", "gzip", 400, ["not valid gzip"]),
        ("truncated gzip", _gz({"records": [good()]})[:-12], "gzip", 400, ["truncated gzip"]),
        ("gzip bomb", gzip.compress(bytes(40 * 1024 * 1024), 9), "gzip", 413, ["inflates"]),
        ("brotli", b"\x0b\x02\x80{}\x03", "br", 415, ["gzip"]),
        ("over 5000 records", _gz({"records": big}), "gzip", 422, ["records"]),
    ]
    for name, body, encoding, status, needles in cases:
        reply = post_raw(collector, token, body, encoding=encoding)
        assert reply.status_code == status, (name, reply.status_code, reply.text)
        detail = reply.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, (name, detail)
        for needle in needles:
            assert needle in detail, (name, detail)
        assert sql.counts() == before, name

    # Every record's error is listed, named, not only the first.
    many = _gz({"records": [{**good(), "name": "A"}, {**good(), "phone": "0912"}]})
    reply = post_raw(collector, token, many)
    assert reply.status_code == 422
    fields = [e["field"] for e in reply.json()["errors"]]
    assert fields == ["records[0].name", "records[1].phone"]
    assert "(and 1 more)" in reply.json()["detail"]

    # Exactly 5000 records is a full batch, not an error, and the server still works.
    full = [visit("no_app", t0 + i) for i in range(5000)]
    assert sent_ok(collector, token, full) == {
        "received": 5000, "new": 5000, "duplicates": 0, "refused": [],
    }  # fmt: skip
    assert sql.counts() == (before[0] + 5000, before[1])


# -- 3. authentication ------------------------------------------------------------------------


def test_authentication_and_roles(collector: Collector, sql: Sql) -> None:
    empty = _gz({"records": []})

    missing = post_raw(collector, None, empty)
    assert missing.status_code == 401
    assert "no bearer token" in missing.json()["detail"]

    wrong = post_raw(collector, "cpd_" + "x" * 43, empty)
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert "unknown device token" in wrong.json()["detail"]

    short = collector.enroll(collector.code("Sở Nội vụ", "Cửa chính", "--token-days", "1"))
    expires = datetime.fromisoformat(short["token_expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(days=1)
    assert post_raw(collector, short["token"], empty).status_code == 200
    sql.write("UPDATE checkpoints SET token_expires_at = 0 WHERE id = ?", (short["checkpoint_id"],))
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/v1/visits", {"records": []}),
        ("/v1/heartbeat", {}),
    ]
    for path, body in attempts:
        expired = call(collector, "POST", path, token=short["token"], json=body)
        assert expired.status_code == 401, (path, expired.text)
        assert "expired" in expired.json()["detail"]
        assert "WWW-Authenticate" in expired.headers

    revoked = enroll_as(collector, sql)
    sql.write("UPDATE checkpoints SET revoked_at = 1 WHERE id = ?", (revoked["checkpoint_id"],))
    reply = post_raw(collector, revoked["token"], empty)
    assert reply.status_code == 401 and "revoked" in reply.json()["detail"]

    device = enroll_as(collector, sql)["token"]
    official = collector.role_token("official")  # the admin command, once
    health = sql.role_token("health")
    assert official.startswith("cpr_") and health.startswith("cpr_")
    days = {"from": "2025-03-10", "to": "2025-03-11"}

    as_device = call(collector, "GET", "/v1/reports/adoption", token=device, params=days)
    assert as_device.status_code == 403
    assert call(collector, "GET", "/v1/reports/adoption", params=days).status_code == 401
    unknown = call(collector, "GET", "/v1/reports/adoption", token="cpr_nope", params=days)
    assert unknown.status_code == 401
    assert call(collector, "GET", "/v1/reports/adoption", token=official, params=days).ok
    assert call(collector, "GET", "/v1/reports/adoption", token=health, params=days).ok
    # Only officials (and admins) get the province-wide export.
    assert (
        call(collector, "GET", "/v1/exports/entries", token=health, params=days).status_code == 403
    )
    assert call(collector, "GET", "/v1/exports/entries", token=official, params=days).ok
    # A device token may not post visits as a role, nor a role token as a device.
    assert post_raw(collector, official, empty).status_code == 401

    check = {"protocol": "bluezone", "key": os.urandom(32).hex(), "first_day": "2025-03-10"}
    denied = exposure(collector, official, check)
    assert denied.status_code == 403
    assert "official" in denied.json()["detail"]
    assert exposure(collector, device, check).status_code == 403
    allowed = exposure(collector, health, check)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"matches": [], "checkpoints_alerted": 0}

    sql.write("UPDATE role_tokens SET expires_at = 1 WHERE role = 'health'")
    late = exposure(collector, health, check)
    assert late.status_code == 401 and "expired" in late.json()["detail"]


def test_a_body_without_valid_credentials_is_never_read_nor_inflated(
    collector: Collector, sql: Sql
) -> None:
    unit = enroll_as(collector, sql)["token"]
    official = sql.role_token("official")
    bomb = gzip.compress(b"0" * (MAX_INFLATED + 1024 * 1024))  # ~35 KB that inflates past it
    not_gzip = b"not gzip at all " * 1024
    bodies = [(bomb, "gzip", 413), (not_gzip, "gzip", 400), (b"{}", "br", 415)]
    for body, encoding, status in bodies:
        # With the unit's own token the body is read, and refused for what it is...
        read = post_raw(collector, unit, body, encoding=encoding)
        assert read.status_code == status, (encoding, read.text)
        # ...without a valid device token it is refused before a byte of it is inflated.
        for token in (None, "cpd_" + "x" * 43, official):
            refused = post_raw(collector, token, body, encoding=encoding)
            assert refused.status_code == 401, (encoding, token, refused.text)
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    # The same on every route that takes a token: the check comes before the body.
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for path, token, status in [
        ("/v1/heartbeat", "cpd_" + "x" * 43, 401),
        ("/v1/heartbeat", official, 401),
        ("/v1/admin/codes", "cpr_unknown", 401),
        ("/v1/admin/codes", unit, 403),
        ("/v1/admin/codes", official, 403),
        ("/v1/exposure/check", official, 403),
        ("/v1/exposure/check", None, 401),
    ]:
        reply = call(collector, "POST", path, token=token, headers=headers, data=bomb)
        assert reply.status_code == status, (path, token, reply.text)
    # A valid token of the right kind gets as far as the body.
    big = call(collector, "POST", "/v1/heartbeat", token=unit, headers=headers, data=bomb)
    assert big.status_code == 413 and "inflates past" in big.json()["detail"]


# -- 4. heartbeat -----------------------------------------------------------------------------


def test_heartbeat_records_health(collector: Collector, sql: Sql) -> None:
    unit = enroll_as(collector, sql)
    health = {
        "scanner": "ok",
        "beacon": {"advertising": True},
        "clock": {"synced": False, "offset_s": 0.25},
        "backlog": 17,
        "note": "mất điện lúc 7 giờ",
    }
    before = time.time()
    reply = heartbeat(collector, unit["token"], health=health, hostname="tq-door-7")
    after = time.time()
    assert before - 2 <= reply["server_time"] <= after + 2
    assert reply["alerts"] == []

    row = sql.rows(
        "SELECT health, hostname, last_seen_at FROM checkpoints WHERE id = ?",
        (unit["checkpoint_id"],),
    )
    stored, hostname, seen = row[0]
    assert json.loads(stored) == health
    assert "mất điện" in stored  # kept as text, not \u escapes
    # Text no database can store is refused or escaped, never a 500.
    odd = call(collector, "POST", "/v1/heartbeat", token=unit["token"],
               data='{"health": {"a": "\\ud800", "b": "\\u0000"}}',
               headers={"Content-Type": "application/json"})  # fmt: skip
    assert odd.status_code == 200, odd.text
    nul = call(collector, "POST", "/v1/heartbeat", token=unit["token"],
               json={"hostname": "tq\u0000door"})  # fmt: skip
    assert nul.status_code == 422 and "hostname" in nul.json()["detail"]
    assert hostname == "tq-door-7"
    assert before - 2 <= seen <= after + 2

    # The next report replaces the health; a heartbeat without hostname keeps the old one.
    heartbeat(collector, unit["token"], health={"scanner": "down"})
    stored, hostname, _ = sql.rows(
        "SELECT health, hostname, last_seen_at FROM checkpoints WHERE id = ?",
        (unit["checkpoint_id"],),
    )[0]
    assert json.loads(stored) == {"scanner": "down"} and hostname == "tq-door-7"

    huge = call(
        collector, "POST", "/v1/heartbeat", token=unit["token"], json={"health": {"x": "y" * 70000}}
    )
    assert huge.status_code == 413
    bad = call(collector, "POST", "/v1/heartbeat", token=unit["token"], json={"healthy": True})
    assert bad.status_code == 422 and "healthy" in bad.json()["detail"]


# -- 5 and 6. adoption report and export ------------------------------------------------------

HEALTH_DEPT = "Sở Y tế tỉnh Tuyên Quang"
PEOPLES_COMMITTEE = "UBND tỉnh Tuyên Quang"


def seed_two_agencies(c: Collector, db: Sql) -> tuple[dict[str, str], dict[str, str]]:
    """Known visits of two agencies over local days 2025-03-10 and 2025-03-11 (UTC+7: a local
    day runs from 17:00 UTC the day before), plus one on each side outside them."""
    a = enroll_as(c, db, HEALTH_DEPT, "Cổng chính")
    b = enroll_as(c, db, PEOPLES_COMMITTEE, "Cửa sau")
    a_records = [
        visit("app", ts("2025-03-09T17:00:00"), left_at=ts("2025-03-09T17:05:00")),  # 10th
        visit("app", ts("2025-03-10T02:00:00"), left_at=ts("2025-03-10T02:30:00")),
        visit("app", ts("2025-03-10T16:59:59")),  # last second of the 10th
        visit("no_app", ts("2025-03-10T03:00:00"), clock_synced=False),
        visit("manual", ts("2025-03-10T04:00:00")),
        visit("app", ts("2025-03-10T17:00:00"), protocol="gaen"),  # the 11th
        visit("no_app", ts("2025-03-11T01:00:00")),
        visit("no_app", ts("2025-03-11T02:00:00")),
        visit("app", ts("2025-03-09T16:59:59")),  # local 9th: outside
        visit("app", ts("2025-03-11T17:00:00")),  # local 12th: outside
    ]
    b_records = [
        visit("no_app", ts("2025-03-10T05:00:00")),
        visit("no_app", ts("2025-03-10T06:00:00")),
        visit("manual", ts("2025-03-11T07:00:00")),
    ]
    assert sent_ok(c, a["token"], a_records)["new"] == 10
    assert sent_ok(c, b["token"], b_records)["new"] == 3
    return a, b


EXPECTED_ROWS = [
    {"day": "2025-03-10", "agency": HEALTH_DEPT, "app": 3, "no_app": 1, "manual": 1,
     "total": 5, "adoption_rate": 0.75},
    {"day": "2025-03-10", "agency": PEOPLES_COMMITTEE, "app": 0, "no_app": 2, "manual": 0,
     "total": 2, "adoption_rate": 0.0},
    {"day": "2025-03-11", "agency": HEALTH_DEPT, "app": 1, "no_app": 2, "manual": 0,
     "total": 3, "adoption_rate": 0.3333},
    {"day": "2025-03-11", "agency": PEOPLES_COMMITTEE, "app": 0, "no_app": 0, "manual": 1,
     "total": 1, "adoption_rate": None},
]  # fmt: skip
EXPECTED_TOTAL = {"app": 4, "no_app": 5, "manual": 2, "total": 11, "adoption_rate": 0.4444}
DAYS = {"from": "2025-03-10", "to": "2025-03-11"}


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def _as_csv(row: dict[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in row.items()}


def test_adoption_report_per_agency_and_local_day(collector: Collector, sql: Sql) -> None:
    seed_two_agencies(collector, sql)
    official = sql.role_token("official")

    reply = call(collector, "GET", "/v1/reports/adoption", token=official, params=DAYS)
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert report == {
        "from": "2025-03-10",
        "to": "2025-03-11",
        "rows": EXPECTED_ROWS,
        "total": EXPECTED_TOTAL,
    }

    as_csv = call(
        collector,
        "GET",
        "/v1/reports/adoption",
        token=official,
        params={**DAYS, "format": "csv", "lang": "en"},
    )
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    text = as_csv.content.decode("utf-8")
    assert text.splitlines()[0] == "\ufeffday,agency,app,no_app,manual,total,adoption_rate"
    assert _csv_rows(text) == [_as_csv(r) for r in EXPECTED_ROWS]

    one_day = call(
        collector,
        "GET",
        "/v1/reports/adoption",
        token=official,
        params={"from": "2025-03-11", "to": "2025-03-11"},
    ).json()
    assert one_day["rows"] == EXPECTED_ROWS[2:]

    cli_json = collector.cli("report", "--from", DAYS["from"], "--to", DAYS["to"])
    assert cli_json.returncode == 0, cli_json.stderr
    assert json.loads(cli_json.stdout) == report
    cli_csv = collector.cli(
        "report", "--from", DAYS["from"], "--to", DAYS["to"], "--format", "csv", "--lang", "en"
    )
    assert cli_csv.returncode == 0, cli_csv.stderr
    assert _csv_rows(cli_csv.stdout) == _csv_rows(text)

    backwards = call(
        collector,
        "GET",
        "/v1/reports/adoption",
        token=official,
        params={"from": "2025-03-11", "to": "2025-03-10"},
    )
    assert backwards.status_code == 422
    assert "before" in backwards.json()["detail"]
    assert "before" in one_line_error(
        collector.cli("report", "--from", "2025-03-11", "--to", "2025-03-10")
    )
    not_a_day = call(
        collector,
        "GET",
        "/v1/reports/adoption",
        token=official,
        params={"from": "10/03/2025", "to": "2025-03-11"},
    )
    assert not_a_day.status_code == 422 and "from" in not_a_day.json()["detail"]


def test_entry_export_csv_jsonl_and_cli(collector: Collector, sql: Sql, tmp_path: Path) -> None:
    a, b = seed_two_agencies(collector, sql)
    official = sql.role_token("official")

    vi = call(collector, "GET", "/v1/exports/entries", token=official, params=DAYS)
    assert vi.status_code == 200, vi.text
    vi_rows = _csv_rows(vi.content.decode("utf-8"))  # what an official opens: Vietnamese
    assert list(vi_rows[0])[:5] == ["Mã lượt vào", "Điểm kiểm soát", "Cơ quan", "Cửa", "Loại"]
    assert {r["Loại"] for r in vi_rows} == {"Có ứng dụng", "Không phát hiện ứng dụng", "Ghi tay"}
    assert vi_rows[0]["Giờ vào"] == "2025-03-10T00:00:00+07:00"
    vi_report = call(collector, "GET", "/v1/reports/adoption", token=official,
                     params={**DAYS, "format": "csv"})  # fmt: skip
    assert vi_report.content.startswith("\ufeff".encode())
    assert "Tỷ lệ cài đặt" in list(_csv_rows(vi_report.content.decode())[0])

    reply = call(
        collector, "GET", "/v1/exports/entries", token=official, params={**DAYS, "lang": "en"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    raw = reply.content
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8")
    lines = text.lstrip("\ufeff").split("\r\n")
    assert lines[0] == (
        "uuid,checkpoint_id,agency,door,kind,protocol,entered_at,left_at,clock_synced,via_sensor"
    )
    rows = _csv_rows(text)
    assert len(rows) == 11
    assert "tokens" not in rows[0]  # no token ever leaves the collector in an export
    assert [r["entered_at"] for r in rows] == sorted(r["entered_at"] for r in rows)
    assert rows[0]["entered_at"] == "2025-03-10T00:00:00+07:00"
    assert rows[0]["left_at"] == "2025-03-10T00:05:00+07:00"
    assert rows[0]["agency"] == HEALTH_DEPT and rows[0]["door"] == "Cổng chính"
    assert rows[0]["checkpoint_id"] == a["checkpoint_id"]
    assert rows[-1]["entered_at"] == "2025-03-11T14:00:00+07:00"
    assert rows[-1]["agency"] == PEOPLES_COMMITTEE and rows[-1]["kind"] == "manual"
    assert all(r["entered_at"].endswith("+07:00") for r in rows)
    assert {r["agency"] for r in rows} == {HEALTH_DEPT, PEOPLES_COMMITTEE}
    assert {r["door"] for r in rows if r["checkpoint_id"] == b["checkpoint_id"]} == {"Cửa sau"}
    unsynced = [r for r in rows if r["clock_synced"] == "0"]
    assert len(unsynced) == 1 and unsynced[0]["kind"] == "no_app"
    assert {r["protocol"] for r in rows if r["kind"] != "app"} == {""}
    assert [r["left_at"] for r in rows if r["kind"] == "manual"] == ["", ""]

    jsonl = call(
        collector, "GET", "/v1/exports/entries", token=official, params={**DAYS, "format": "json"}
    )
    assert jsonl.status_code == 200
    items = [json.loads(line) for line in jsonl.content.decode("utf-8").splitlines()]
    assert [i["uuid"] for i in items] == [r["uuid"] for r in rows]
    assert items[0]["entered_at"] == "2025-03-09T17:00:00+00:00"
    assert items[0]["entered_local"] == "2025-03-10T00:00:00+07:00"
    assert items[0]["agency"] == HEALTH_DEPT
    assert isinstance(items[0]["clock_synced"], bool) and isinstance(items[0]["via_sensor"], bool)
    assert "tokens" not in items[0]

    out = tmp_path / "entries.csv"
    result = collector.cli(
        "export", "--from", DAYS["from"], "--to", DAYS["to"], "--lang", "en", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == raw
    assert not (tmp_path / "entries.csv.part").exists()
    out_json = tmp_path / "entries.jsonl"
    result = collector.cli(
        "export", "--from", DAYS["from"], "--to", DAYS["to"], "--format", "json", "-o",
        str(out_json),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out_json.read_bytes() == jsonl.content

    # Past the export's 1000-row chunks, every row arrives exactly once and in order.
    many = [visit("no_app", ts("2025-04-01T01:00:00") + i) for i in range(2500)]
    assert sent_ok(collector, a["token"], many)["new"] == 2500
    april = {"from": "2025-04-01", "to": "2025-04-01"}
    big = _csv_rows(
        call(
            collector, "GET", "/v1/exports/entries", token=official, params={**april, "lang": "en"}
        ).content.decode()
    )
    assert [r["uuid"] for r in big] == [r["uuid"] for r in many]

    # A cell a spreadsheet would run as a formula is neutralised (CSV injection).
    may = {"from": "2025-05-01", "to": "2025-05-01"}
    unit = enroll_as(collector, sql, '=HYPERLINK("http://x")', "+Cửa")
    sent_ok(collector, unit["token"], [visit("no_app", ts("2025-05-01T03:00:00"))])
    rows = _csv_rows(
        call(
            collector, "GET", "/v1/exports/entries", token=official, params={**may, "lang": "en"}
        ).content.decode()
    )
    assert rows[0]["agency"] == '\'=HYPERLINK("http://x")' and rows[0]["door"] == "'+Cửa"
    report = call(
        collector,
        "GET",
        "/v1/reports/adoption",
        token=official,
        params={**may, "format": "csv", "lang": "en"},
    )
    assert _csv_rows(report.content.decode())[0]["agency"] == '\'=HYPERLINK("http://x")'

    backwards = call(
        collector,
        "GET",
        "/v1/exports/entries",
        token=official,
        params={"from": "2025-03-11", "to": "2025-03-10"},
    )
    assert backwards.status_code == 422


# -- 7. exposure check ------------------------------------------------------------------------


def test_exposure_check_bluezone_end_to_end(collector: Collector, sql: Sql) -> None:
    secret = collector.province_key
    daily_key = os.urandom(32)
    first_day = date(2025, 3, 10)
    ids = {(d, s): v for d, s, v in bluezone_keys.case_ids(daily_key, first_day, 1)}
    slot = 40  # 10:00-10:15 UTC
    raw_id = ids[(first_day, slot)]
    assert raw_id == bluezone_keys.slot_id(daily_key, slot)
    when = bluezone_keys.slot_start(first_day, slot) + timedelta(minutes=5)
    case_token = tokens.token(secret, "bluezone", raw_id, when)
    t = when.timestamp()

    a = enroll_as(collector, sql, HEALTH_DEPT, "Cổng chính")
    b = enroll_as(collector, sql, PEOPLES_COMMITTEE, "Cửa sau")
    case_visit = visit("app", t, left_at=t + 600, tokens_=[os.urandom(16).hex(), case_token])
    at_a = [
        case_visit,
        visit("app", t + 60, left_at=t + 300),  # inside the stay
        visit("app", t - 120, left_at=t + 30, protocol="gaen"),  # came before, left during
        visit("no_app", t + 120),  # a moment during the stay
        visit("manual", t + 200),
        visit("app", t - 3600, left_at=t - 3000),  # gone an hour before
        visit("no_app", t + 601),  # after the case left
        visit("manual", t - 10),  # a moment before the case came
        visit("app", t - 300),  # came before and has not left (or its end is not synced yet)
    ]
    at_b = [
        visit("app", t, left_at=t + 600),
        visit("no_app", t + 30),
        # The case's same ID under the next day's key: unlinkable, so no match.
        visit(
            "app",
            t + 86400,
            tokens_=[tokens.token(secret, "bluezone", raw_id, when + timedelta(days=1))],
        ),
    ]
    assert sent_ok(collector, a["token"], at_a)["new"] == len(at_a)
    assert sent_ok(collector, b["token"], at_b)["new"] == len(at_b)
    health = sql.role_token("health")

    reply = exposure(
        collector,
        health,
        {"protocol": "bluezone", "key": daily_key.hex(), "first_day": first_day.isoformat()},
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["checkpoints_alerted"] == 1
    assert result["matches"] == [
        {
            "visit": case_visit["uuid"],
            "checkpoint_id": a["checkpoint_id"],
            "agency": HEALTH_DEPT,
            "door": "Cổng chính",
            "protocol": "bluezone",
            "entered_at": "2025-03-10T10:05:00Z",
            "left_at": "2025-03-10T10:15:00Z",
            "entered_local": "2025-03-10T17:05:00+07:00",
            "left_local": "2025-03-10T17:15:00+07:00",
            "matched_tokens": 1,
            "overlapping": {"app": 3, "no_app": 1, "manual": 1},
        }
    ]

    alerts = heartbeat(collector, a["token"])["alerts"]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["kind"] == "exposure"
    assert alert["details"] == {
        "visits": [{"entered_at": "2025-03-10T10:05:00Z", "left_at": "2025-03-10T10:15:00Z"}]
    }
    assert UUID_RE.match(alert["id"])
    assert heartbeat(collector, b["token"])["alerts"] == []
    # Another unit cannot acknowledge A's alert.
    assert heartbeat(collector, b["token"], acked_alerts=[alert["id"]])["alerts"] == []
    assert heartbeat(collector, a["token"])["alerts"] == alerts

    assert heartbeat(collector, a["token"], acked_alerts=[alert["id"]])["alerts"] == []
    assert heartbeat(collector, a["token"])["alerts"] == []

    # The next day's key (the app hashes it forward) finds nothing on the 10th.
    later = exposure(
        collector,
        health,
        {
            "protocol": "bluezone",
            "key": bluezone_keys.next_daily_key(daily_key).hex(),
            "first_day": "2025-03-11",
        },
    )
    assert later.json() == {"matches": [], "checkpoints_alerted": 0}
    assert heartbeat(collector, a["token"])["alerts"] == []


def test_exposure_check_gaen_and_bad_requests(collector: Collector, sql: Sql) -> None:
    secret = collector.province_key
    tek = os.urandom(16)
    start = gaen_keys.interval_of(datetime(2025, 3, 12, tzinfo=UTC))
    assert start % gaen_keys.TEK_ROLLING_PERIOD == 0
    rpi = gaen_keys.rpis(tek, start, gaen_keys.TEK_ROLLING_PERIOD)[60]
    when = gaen_keys.interval_start(start + 60) + timedelta(minutes=3)  # 10:03 UTC
    t = when.timestamp()

    a = enroll_as(collector, sql, HEALTH_DEPT, "Cổng chính")
    b = enroll_as(collector, sql, PEOPLES_COMMITTEE, "Cửa sau")
    case_visit = visit(
        "app",
        t,
        left_at=t + 240,
        protocol="gaen",
        tokens_=[tokens.token(secret, "gaen", rpi, when)],
    )
    sent_ok(collector, a["token"], [case_visit, visit("no_app", t + 100)])
    sent_ok(collector, b["token"], [visit("app", t, protocol="gaen")])
    health = sql.role_token("health")

    reply = exposure(collector, health, {"protocol": "gaen", "key": tek.hex(), "interval": start})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["checkpoints_alerted"] == 1
    [match] = result["matches"]
    assert match["visit"] == case_visit["uuid"] and match["checkpoint_id"] == a["checkpoint_id"]
    assert match["protocol"] == "gaen" and match["entered_at"] == "2025-03-12T10:03:00Z"
    assert match["overlapping"] == {"app": 0, "no_app": 1, "manual": 0}
    [alert] = heartbeat(collector, a["token"])["alerts"]
    assert alert["kind"] == "exposure"
    assert heartbeat(collector, b["token"])["alerts"] == []
    assert heartbeat(collector, a["token"], acked_alerts=[alert["id"]])["alerts"] == []

    # The same TEK with the wrong day's interval finds nothing.
    other_day = exposure(
        collector, health, {"protocol": "gaen", "key": tek.hex(), "interval": start - 144}
    )
    assert other_day.json() == {"matches": [], "checkpoints_alerted": 0}

    bad: list[tuple[dict[str, Any], str]] = [
        ({"protocol": "bluezone", "key": "ab" * 31, "first_day": "2025-03-10"}, "bluezone.key"),
        ({"protocol": "bluezone", "key": "ab" * 32}, "first_day"),
        ({"protocol": "bluezone", "key": "zz" * 32, "first_day": "2025-03-10"}, "key"),
        ({"protocol": "bluezone", "key": "ab" * 32, "first_day": "10/03/2025"}, "first_day"),
        ({"protocol": "bluezone", "key": "ab" * 32, "first_day": "2025-03-10", "days": 61}, "days"),
        ({"protocol": "gaen", "key": "ab" * 15, "interval": start}, "gaen.key"),
        ({"protocol": "gaen", "key": "ab" * 16}, "interval"),
        ({"protocol": "gaen", "key": "ab" * 16, "interval": -1}, "interval"),
        ({"protocol": "gaen", "key": "ab" * 16, "interval": 2**32}, "interval"),
        ({"protocol": "gaen", "key": "ab" * 16, "interval": 2**32 - 200}, "interval"),
        ({"protocol": "gaen", "key": "ab" * 16, "interval": 422_337_000}, "interval"),
        ({"protocol": "bluezone", "key": "ab" * 32, "first_day": "0001-01-01"}, "first_day"),
        ({"protocol": "bluezone", "key": "ab" * 32, "first_day": "9998-12-31"}, "first_day"),
        ({"protocol": "covidsafe", "key": "ab" * 16, "interval": start}, "protocol"),
        ({"protocol": "gaen", "key": "ab" * 16, "interval": start, "name": "x"}, "name"),
    ]
    for body, needle in bad:
        refused = exposure(collector, health, body)
        assert refused.status_code == 422, (body, refused.text)
        assert needle in refused.json()["detail"], (body, refused.json())
    assert heartbeat(collector, a["token"])["alerts"] == []


# -- 8. OpenAPI -------------------------------------------------------------------------------


def test_openapi_document_is_the_protocol(collector: Collector) -> None:
    reply = call(collector, "GET", "/openapi.json")
    assert reply.status_code == 200
    spec = reply.json()
    paths = spec["paths"]
    for path in (
        "/v1/enroll",
        "/v1/visits",
        "/v1/heartbeat",
        "/v1/reports/adoption",
        "/v1/exports/entries",
        "/v1/exposure/check",
        "/v1/admin/codes",
    ):
        assert path in paths, path
    assert "post" in paths["/v1/visits"] and "get" in paths["/v1/reports/adoption"]
    schemas = spec["components"]["schemas"]
    visit_schema = schemas["VisitIn"]
    assert visit_schema["additionalProperties"] is False
    assert set(visit_schema["properties"]) == {
        "uuid", "kind", "protocol", "entered_at", "left_at", "clock_synced", "via_sensor",
        "tokens", "key_days",
    }  # fmt: skip
    # key_days came later: optional, so an older unit's records are still valid.
    assert set(visit_schema["required"]) == {"uuid", "kind", "entered_at"}
    assert schemas["VisitBatch"]["additionalProperties"] is False
    assert schemas["VisitBatch"]["properties"]["records"]["maxItems"] == 5000
    assert "HTTPBearer" in json.dumps(spec["components"].get("securitySchemes", {}))


# -- 9. admin API -----------------------------------------------------------------------------


def test_admin_api_issues_codes(collector: Collector, sql: Sql) -> None:
    admin = collector.role_token("admin")
    official = sql.role_token("official")
    wanted = {"agency": "Công an tỉnh Tuyên Quang", "door": "Cổng phụ", "checkpoint_id": "TQ-CA-02"}

    reply = call(collector, "POST", "/v1/admin/codes", token=admin, json=wanted)
    assert reply.status_code == 200, reply.text
    issued = reply.json()
    assert issued["agency"] == wanted["agency"] and issued["door"] == wanted["door"]
    assert issued["checkpoint_id"] == "TQ-CA-02"
    enrolled = collector.enroll(issued["code"])
    assert enrolled["checkpoint_id"] == "TQ-CA-02"
    assert enrolled["agency"] == "Công an tỉnh Tuyên Quang" and enrolled["door"] == "Cổng phụ"

    again = call(collector, "POST", "/v1/admin/codes", token=admin, json=wanted)
    assert again.status_code == 409 and "already enrolled" in again.json()["detail"]

    generated = call(
        collector,
        "POST",
        "/v1/admin/codes",
        token=admin,
        json={"agency": "Sở Xây dựng", "door": "Cửa 1"},
    )
    assert generated.status_code == 200 and generated.json()["checkpoint_id"] is None
    assert collector.enroll(generated.json()["code"])["checkpoint_id"].startswith("CP-")

    denied = call(collector, "POST", "/v1/admin/codes", token=official, json=wanted)
    assert denied.status_code == 403
    assert call(collector, "POST", "/v1/admin/codes", json=wanted).status_code == 401
    blank = call(
        collector, "POST", "/v1/admin/codes", token=admin, json={"agency": " ", "door": "x"}
    )
    assert blank.status_code == 422
    forever = {**wanted, "checkpoint_id": None, "expires_in_s": 10**9}
    assert call(collector, "POST", "/v1/admin/codes", token=admin, json=forever).status_code == 422


# -- 10. admin command errors -----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "CHECKPOINT_COLLECTOR_DATABASE"},
    )


@pytest.mark.parametrize(
    ("database", "needle"),
    [
        ("sqlite://bad", "sqlite:///"),
        ("mysql://localhost/x", "postgresql://"),
        ("postgresql://cp:s3cr3t@no-such-host.invalid:5432/checkpoint", "no-such-host.invalid"),
        ("postgresql://cp:s3cr3t@127.0.0.1:1/checkpoint", "127.0.0.1"),
    ],
)
def test_cli_database_errors_are_one_line(database: str, needle: str) -> None:
    started = time.monotonic()
    result = _cli("codes", "create", "--database", database, "--agency", "A", "--door", "B")
    line = one_line_error(result)
    assert needle in line
    assert "s3cr3t" not in result.stderr  # the password is never printed
    assert result.returncode == 1
    assert time.monotonic() - started < 8  # fails at once, not after the pool's timeout


def test_cli_usage_errors(tmp_path: Path) -> None:
    no_database = _cli("codes", "create", "--agency", "A", "--door", "B")
    assert "no database" in one_line_error(no_database)
    assert no_database.returncode == 2
    bad_duration = _cli(
        "codes", "create", "--database", str(tmp_path / "c.db"), "--agency", "A", "--door", "B",
        "--expires", "soon",
    )  # fmt: skip
    assert bad_duration.returncode == 2 and "duration" in bad_duration.stderr
    assert "Traceback" not in bad_duration.stderr
