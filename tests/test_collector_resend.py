"""The resend rule at the real collector (TLS, SQLite and PostgreSQL): a copy of a stored
record may only add what its unit learned later; a conflicting one is refused, named in the
reply, counted, and changes nothing; the unit keeps it aside and stops sending it. And the
wire's numbers are strict: a string or a boolean is not a timestamp (issue 15, defects 15-16)."""

# ruff: noqa: F811  (pytest fixtures imported from the harness are parameters of the tests)
from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from appliance.core.doorway import Entry
from appliance.store import VisitLog
from appliance.store.outbox import Outbox
from appliance.sync.client import CollectorClient
from appliance.sync.uploader import Uploader
from tests.builders import on_disk
from tests.collector_harness import Collector, collector, database_url, postgres_server, tls  # noqa: F401

T0 = 1_741_572_000.0  # 2025-03-10 02:00 UTC
TOKEN_A, TOKEN_B, TOKEN_C = "aa" * 16, "bb" * 16, "cc" * 16


def app_visit(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uuid": str(uuid.uuid4()), "kind": "app", "protocol": "bluezone", "entered_at": T0,
        "clock_synced": True, "via_sensor": True, "tokens": [TOKEN_A],
    }  # fmt: skip
    record.update(fields)
    return record


def no_app_visit(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uuid": str(uuid.uuid4()), "kind": "no_app", "entered_at": T0, "clock_synced": True,
        "via_sensor": True,
    }  # fmt: skip
    record.update(fields)
    return record


def post(c: Collector, token: str, body: Any, *, raw: bytes | None = None) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(
        f"{c.url}/v1/visits",
        data=gzip.compress(data),
        headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                 "Content-Type": "application/json"},
        verify=str(c.tls.ca_file),
        timeout=20,
    )  # fmt: skip


def sent(c: Collector, token: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    reply = post(c, token, {"records": records})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def stored(c: Collector, visit_uuid: str) -> tuple[Any, ...]:
    """The stored row and its tokens with their key days, for comparing before and after."""
    rows = c.query(
        "SELECT checkpoint_id, kind, protocol, entered_at, left_at, local_day, clock_synced,"
        " via_sensor FROM visits WHERE uuid = ?",
        (visit_uuid,),
    )
    tokens = c.query(
        "SELECT token, key_day FROM visit_tokens WHERE visit_uuid = ? ORDER BY token",
        (visit_uuid,),
    )
    return tuple(rows), tuple(tokens)


def refused_counts(c: Collector) -> dict[str, int]:
    result = c.cli("devices")
    assert result.returncode == 0, result.stderr
    units = [json.loads(line) for line in result.stdout.splitlines()]
    return {u["checkpoint_id"]: u["refused_records"] for u in units}


def test_a_duplicate_uuid_with_another_kind_is_refused_and_counted_and_changes_nothing(
    collector: Collector,
) -> None:
    unit = collector.enroll()
    token = unit["token"]
    door = no_app_visit()
    assert sent(collector, token, [door])["new"] == 1
    before = stored(collector, door["uuid"])

    # The review's case: the same UUID as an app entry with tokens and an end.
    impostor = {**app_visit(), "uuid": door["uuid"], "left_at": T0 + 600}
    other = no_app_visit()
    reply = sent(collector, token, [other, impostor])
    assert reply == {
        "received": 2, "new": 1, "duplicates": 0,
        "refused": [{"uuid": door["uuid"], "reason": "stored with kind 'no_app', sent 'app'"}],
    }  # fmt: skip
    assert stored(collector, door["uuid"]) == before
    assert stored(collector, other["uuid"])[0]  # the rest of the batch is stored
    assert refused_counts(collector) == {unit["checkpoint_id"]: 1}

    # A replay of the identical record is accepted, exactly once, as always.
    assert sent(collector, token, [door, door]) == {
        "received": 2, "new": 0, "duplicates": 2, "refused": [],
    }  # fmt: skip
    assert stored(collector, door["uuid"]) == before
    assert collector.query("SELECT count(*) FROM visits") == [(2,)]
    assert refused_counts(collector) == {unit["checkpoint_id"]: 1}


def test_a_copy_may_add_only_what_the_unit_learns_later(collector: Collector) -> None:
    token = collector.enroll()["token"]
    open_stay = app_visit(key_days={TOKEN_A: "2025-03-09"})
    flagged = app_visit(entered_at=T0 - 86400, left_at=T0 - 86000, clock_synced=False)
    assert sent(collector, token, [open_stay, flagged])["new"] == 2

    conflicts = {
        "protocol": {**open_stay, "protocol": "gaen"},
        "via_sensor": {**open_stay, "via_sensor": False},
        "entered_at": {**open_stay, "entered_at": T0 + 1},
        "tokens": {**open_stay, "tokens": [TOKEN_B], "key_days": {}},
        "key day": {**open_stay, "key_days": {TOKEN_A: "2025-03-08"}},
        "flagged entered_at": {**flagged, "entered_at": T0 - 86200},
        "flagged left_at": {**flagged, "left_at": T0 - 85000},
    }
    for name, copy in conflicts.items():
        before = stored(collector, copy["uuid"])
        reply = sent(collector, token, [copy])
        assert [r["uuid"] for r in reply["refused"]] == [copy["uuid"]], (name, reply)
        assert (reply["new"], reply["duplicates"]) == (0, 0), name
        reason = reply["refused"][0]["reason"]
        assert reason and "\n" not in reason, name
        assert stored(collector, copy["uuid"]) == before, name

    # What a unit learns later is merged: the stay's end and a later token...
    later = {**open_stay, "left_at": T0 + 900, "tokens": [TOKEN_A, TOKEN_B]}
    assert sent(collector, token, [later])["duplicates"] == 1
    # ...a copy from before them changes nothing and is no conflict...
    assert sent(collector, token, [open_stay])["duplicates"] == 1
    # ...and an end, once known, is not moved.
    moved = {**later, "left_at": T0 + 1200}
    assert sent(collector, token, [moved])["refused"][0]["uuid"] == open_stay["uuid"]
    rows, tokens = stored(collector, open_stay["uuid"])
    assert rows[0][3:5] == (T0, T0 + 900)
    assert tokens == ((TOKEN_A, "2025-03-09"), (TOKEN_B, None))

    # The flagged record takes its corrected times, with the key day of its token.
    corrected = {**flagged, "entered_at": T0, "left_at": T0 + 400, "clock_synced": True,
                 "key_days": {TOKEN_A: "2025-03-09"}}  # fmt: skip
    assert sent(collector, token, [corrected])["duplicates"] == 1
    rows, tokens = stored(collector, flagged["uuid"])
    assert rows[0][3:7] == (T0, T0 + 400, "2025-03-10", 1)
    assert tokens == ((TOKEN_A, "2025-03-09"),)


def test_conflicting_copies_within_one_batch_keep_the_first(collector: Collector) -> None:
    token = collector.enroll()["token"]
    first = no_app_visit()
    second = {**first, "entered_at": T0 + 60}
    reply = sent(collector, token, [first, second, first])
    assert (reply["new"], reply["duplicates"]) == (1, 1)
    assert [r["uuid"] for r in reply["refused"]] == [first["uuid"]]
    assert stored(collector, first["uuid"])[0][0][3] == T0


def test_the_unit_keeps_a_refused_record_aside_and_stops_sending_it(
    collector: Collector, tmp_path: Path
) -> None:
    token = collector.enroll()["token"]
    clash = str(uuid.uuid4())
    assert sent(collector, token, [no_app_visit(uuid=clash)])["new"] == 1
    db = tmp_path / "visits.db"
    log = VisitLog(db)
    t = time.time() - 3600
    log.record(Entry(clash, "app", t, "gaen", (("d" * 32, t),)))
    log.record(Entry(str(uuid.uuid4()), "no_app", t + 5))
    log.flush()
    client = CollectorClient(collector.url, token=token, ca_file=collector.tls.ca_file)
    uploader = Uploader(lambda: Outbox(db), client)
    try:
        result = uploader.push()
        assert (result.sent, result.new, result.rejected) == (1, 1, 1)
        [(error,)] = on_disk(db, "SELECT sync_error FROM entries WHERE uuid = ?", (clash,))
        assert error == "the collector refuses this record: stored with kind 'no_app', sent 'app'"
        outbox = Outbox(db)
        assert (outbox.backlog(), outbox.rejected()) == (0, 1)
        outbox.close()
        assert uploader.push().batches == 0  # nothing is sent again
    finally:
        uploader.close()
        log.close()
    assert collector.query("SELECT kind FROM visits WHERE uuid = ?", (clash,)) == [("no_app",)]


def test_timestamps_and_flags_are_strict_numbers_and_booleans(collector: Collector) -> None:
    token = collector.enroll()["token"]
    refused = {
        "a string timestamp": {"entered_at": "1700000000"},
        "a boolean timestamp": {"entered_at": True},
        "a string end": {"left_at": "1741572600"},
        "a boolean end": {"left_at": False},
        "a number for a flag": {"clock_synced": 1},
        "a string for a flag": {"via_sensor": "true"},
    }
    for name, fields in refused.items():
        reply = post(collector, token, {"records": [no_app_visit(**fields)]})
        assert reply.status_code == 422, (name, reply.text)
        assert f"records[0].{next(iter(fields))}" in reply.json()["detail"], name
    assert collector.query("SELECT count(*) FROM visits") == [(0,)]
    # What units send, integers and floats, is accepted.
    reply = sent(
        collector, token, [no_app_visit(entered_at=1_741_572_000, left_at=1_741_572_060.5)]
    )
    assert reply["new"] == 1

    admin = collector.role_token("admin")
    health = collector.role_token("health")
    for path, role_token, body, name in (
        ("/v1/admin/codes", admin, {"agency": "A", "door": "D", "expires_in_s": "3600"},
         "expires_in_s"),
        ("/v1/admin/codes", admin, {"agency": "A", "door": "D", "expires_in_s": True},
         "expires_in_s"),
        ("/v1/exposure/check", health,
         {"protocol": "gaen", "key": "00" * 16, "interval": "2650032"}, "interval"),
        ("/v1/exposure/check", health,
         {"protocol": "bluezone", "key": "00" * 32, "first_day": "2025-03-10", "days": True},
         "days"),
    ):  # fmt: skip
        reply = requests.post(
            collector.url + path, json=body, headers={"Authorization": f"Bearer {role_token}"},
            verify=str(collector.tls.ca_file), timeout=20,
        )  # fmt: skip
        assert reply.status_code == 422, (path, body, reply.text)
        assert name in reply.json()["detail"], reply.text
