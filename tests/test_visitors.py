"""Visitors recorded by hand: validation in the reader's language, the daemon's inbox, and
``checkpoint log-visitor`` with and without a running daemon."""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from appliance import inbox
from appliance.daemon.applier import REQUESTS_PER_ROUND, InboxApplier
from appliance.errors import UsageError, VisitorError
from appliance.i18n import text
from appliance.status import status_file_name
from appliance.store import VisitLog
from appliance.visitors import MAX_FIELD, MAX_NAME, Visitor, submit_visitor, validate
from tests.builders import on_disk
from tests.conftest import run_checkpoint
from tests.test_daemon import runtime_env, write_config

NAME = "Nguyễn Thị Hồng Nhung"
UUID = re.compile(r"\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)")


# -- validate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [NAME, unicodedata.normalize("NFD", NAME), "Đặng Quốc Bảo", "Lò Thị Ửng", "O'Brien-Lê"],
)
def test_names_are_kept_exactly_as_typed(name: str) -> None:
    visitor = validate(f" \t{name}  ")
    assert visitor.name == name
    assert visitor == Visitor(name)


def test_optional_fields_are_stripped_and_empty_means_none() -> None:
    visitor = validate(NAME, "  Sở Y tế  ", "  ", " Họp giao ban ")
    assert visitor == Visitor(NAME, "Sở Y tế", None, "Họp giao ban")
    assert validate(NAME, None, None, None) == Visitor(NAME)


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("name", [None, "", "   \t "])
def test_a_name_is_required(name: str | None, lang: str) -> None:
    with pytest.raises(VisitorError) as caught:
        validate(name, lang=lang)
    assert caught.value.field == "f_name"
    assert str(caught.value) == text("err_name_required", lang)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_length_limits_name_the_field(lang: str) -> None:
    assert validate("ễ" * MAX_NAME).name == "ễ" * MAX_NAME
    with pytest.raises(VisitorError) as caught:
        validate("ễ" * (MAX_NAME + 1), lang=lang)
    assert caught.value.field == "f_name"
    assert str(caught.value) == text("err_too_long", lang).format(
        field=text("f_name", lang), n=MAX_NAME
    )
    assert validate(NAME, purpose="x" * MAX_FIELD).purpose == "x" * MAX_FIELD
    too_long = MAX_FIELD + 1
    for field, args in (
        ("f_org", {"organisation": "y" * too_long}),
        ("f_purpose", {"purpose": "z" * too_long}),
    ):
        with pytest.raises(VisitorError) as caught:
            validate(NAME, lang=lang, **args)
        assert caught.value.field == field
        assert text(field, lang) in str(caught.value) and str(MAX_FIELD) in str(caught.value)


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("f_name", "Lê\x00Bình"),
        ("f_name", "Lê\nBình"),
        ("f_name", "\x1b[2JLê Bình"),
        ("f_org", "Sở\x07Y tế"),
        ("f_purpose", "Họp\x7f"),
        ("f_name", "Lê \ud800"),  # a lone surrogate (undecodable bytes in argv)
    ],
)
def test_control_characters_are_refused(field: str, value: str, lang: str) -> None:
    args: dict[str, Any] = {"f_name": {"name": value}, "f_org": {"organisation": value},
                            "f_purpose": {"purpose": value}}[field]  # fmt: skip
    args.setdefault("name", NAME)
    with pytest.raises(VisitorError) as caught:
        validate(**args, lang=lang)
    assert caught.value.field == field
    assert str(caught.value) == text("err_control", lang).format(field=text(field, lang))


@pytest.mark.parametrize(
    "phone",
    ["0912345678", "+84 912 345 678", "(024) 3825-1234", "091.234.5678", "12345678",
     "+84 (0) 912-345.678", "123456789012345"],
)  # fmt: skip
def test_good_phones(phone: str) -> None:
    assert validate(NAME, phone=f" {phone} ").phone == phone


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize(
    "phone",
    ["1234567", "1234567890123456", "0912abc678", "++84912345678", "84+912345678",
     "0912/345/678", "０９１２３４５６７８"],
)  # fmt: skip
def test_bad_phones(phone: str, lang: str) -> None:
    with pytest.raises(VisitorError) as caught:
        validate(NAME, phone=phone, lang=lang)
    assert caught.value.field == "f_phone"
    assert str(caught.value) == text("err_phone", lang)
    assert text("f_phone", lang).casefold() in str(caught.value).casefold()  # names the field


@pytest.mark.parametrize("value", [123, 12.5, ["Lê"], {"a": 1}, True])
def test_values_that_are_not_text_are_refused(value: Any) -> None:
    """A request file in the inbox is JSON anyone in the group could write: a number where a
    name should be is refused, not a crash that leaves the request stuck in the inbox."""
    for args in ({"name": value}, {"name": NAME, "phone": value}, {"name": NAME, "purpose": value}):
        with pytest.raises(VisitorError):
            validate(**args)


# -- the inbox ---------------------------------------------------------------------------------


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_submit_writes_a_group_readable_json_file(tmp_path: Path) -> None:
    db = tmp_path / "data" / "visits.db"
    visitor = validate(NAME, "Sở Y tế", "0912 345 678")
    entry_uuid, _request = submit_visitor(db, visitor, when=1597890600.0)
    directory = inbox.inbox_dir(db)
    files = list(directory.iterdir())
    assert [p.suffix for p in files] == [".json"]  # no temporary file left behind
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o640
    body = files[0].read_text(encoding="utf-8")
    assert NAME in body  # UTF-8, not \\u escapes: readable by whoever has to look
    assert json.loads(body) == {
        "kind": "manual", "uuid": entry_uuid, "at": 1597890600.0, "name": NAME,
        "organisation": "Sở Y tế", "phone": "0912 345 678", "purpose": None,
    }  # fmt: skip
    request = inbox.read(files[0])
    assert request is not None and request.kind == "manual" and request.data["name"] == NAME
    assert inbox.pending(db) == files


def test_submit_is_atomic_for_a_reader(tmp_path: Path) -> None:
    """A reader polling the inbox only ever sees whole requests under a final name."""
    db = tmp_path / "visits.db"
    inbox.inbox_dir(db).mkdir()
    done = threading.Event()

    def writer() -> None:
        for i in range(200):
            inbox.submit(db, "manual", {"name": "x" * (i * 50 % 8000), "i": i})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = 0
    while not done.is_set() or seen < 200:
        for path in inbox.pending(db):
            assert path.suffix == ".json" and not path.name.startswith(".")
            request = inbox.read(path)
            assert request is not None, path  # never a partial file
            inbox.done(path)
            seen += 1
    thread.join()
    assert seen == 200
    assert listing(inbox.inbox_dir(db)) == []  # not even a rejected/ directory


def test_a_failed_submit_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "visits.db"

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError):
        inbox.submit(db, "mute", {"minutes": 5})
    assert listing(inbox.inbox_dir(db)) == []


def test_pending_sees_only_final_requests(tmp_path: Path) -> None:
    db = tmp_path / "visits.db"
    directory = inbox.inbox_dir(db)
    (directory / inbox.REJECTED).mkdir(parents=True)
    (directory / ".123.tmp").write_text("{", encoding="utf-8")
    (directory / "notes.txt").write_text("hello", encoding="utf-8")
    first = inbox.submit(db, "mute", {"minutes": 1})
    second = inbox.submit(db, "mute", {"minutes": 2})
    assert inbox.pending(db) == [first, second]  # oldest first
    assert inbox.pending(tmp_path / "elsewhere" / "visits.db") == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2, 3]",
        b'"manual"',
        b'{"name": "L\xc3\xaa"}',  # no kind
        b'{"kind": 5}',
        b'{"kind": "manual", "name": "\xff\xfe"}',  # not UTF-8
        b"[" * 5000 + b"]" * 5000,  # deep enough to overflow the parser's recursion
        b'{"kind": "manual", "pad": "' + b"x" * inbox.MAX_REQUEST_BYTES + b'"}',
    ],
    ids=["syntax", "list", "string", "no-kind", "kind-not-text", "not-utf8", "deep", "oversized"],
)
def test_malformed_requests_are_moved_aside(tmp_path: Path, body: bytes) -> None:
    db = tmp_path / "visits.db"
    directory = inbox.inbox_dir(db)
    directory.mkdir()
    path = directory / "1-bad.json"
    path.write_bytes(body)
    assert inbox.read(path) is None
    assert not path.exists()
    assert (directory / inbox.REJECTED / "1-bad.json").read_bytes() == body  # kept, not lost
    assert inbox.pending(db) == []


def test_a_request_another_reader_took_is_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "inbox" / "gone.json"
    assert inbox.read(path) is None
    assert not (tmp_path / "inbox" / inbox.REJECTED).exists()


# -- how the daemon applies requests (in-process) ----------------------------------------------


class Applying:
    """The daemon's inbox applier on a real visit log, the clock state it is told, and its
    wall clock (``now``: the real time when made, held still)."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "data" / "visits.db"
        self.visits = VisitLog(self.db)
        self.synced = True
        self.now = time.time()
        self.applier = InboxApplier(
            self.db, self.visits, mute_minutes=10.0, clock_synced=lambda: self.synced,
            wall=lambda: self.now,
        )  # fmt: skip

    @property
    def muted_until(self) -> float:
        return self.applier.muted_until

    def apply(self) -> None:
        self.applier.apply()

    def close(self) -> None:
        self.visits.close()


def manual_rows(db: Path) -> list[tuple[str, str, str | None, str | None, float]]:
    return on_disk(
        db,
        "SELECT e.uuid, m.name, m.organisation, m.phone, e.entered_at FROM entries e"
        " JOIN manual_details m ON m.entry_id = e.id WHERE e.kind = 'manual' ORDER BY e.id",
    )


def test_a_request_applied_twice_is_one_entry(tmp_path: Path) -> None:
    door = Applying(tmp_path)
    db, apply = door.db, door.apply
    try:
        visitor = validate(NAME, phone="0912345678")
        entry_uuid, _request = submit_visitor(db, visitor, when=1597890600.0)
        (path,) = inbox.pending(db)
        saved = path.read_bytes()
        apply()
        assert inbox.pending(db) == []
        # A crash between the commit and the delete: the same file is there again.
        path.write_bytes(saved)
        apply()
        assert inbox.pending(db) == []
        assert manual_rows(db) == [(entry_uuid, NAME, None, "0912345678", 1597890600.0)]
        assert door.visits.total() == 1
    finally:
        door.close()


def test_add_manual_with_the_same_uuid_twice_is_one_entry(tmp_path: Path) -> None:
    db = tmp_path / "visits.db"
    log = VisitLog(db)
    try:
        first = log.add_manual(NAME, phone="0912345678", when=1000.0, entry_uuid="u-1")
        again = log.add_manual("Someone Else", when=2000.0, entry_uuid="u-1")
        assert first == again == "u-1"
        assert log.total() == 1
        assert on_disk(db, "SELECT count(*) FROM manual_details") == [(1,)]
        assert manual_rows(db) == [("u-1", NAME, None, "0912345678", 1000.0)]
    finally:
        log.close()


def test_bad_requests_are_rejected_and_never_block_the_ones_after(tmp_path: Path) -> None:
    door = Applying(tmp_path)
    db, apply = door.db, door.apply
    directory = inbox.inbox_dir(db)
    try:
        directory.mkdir(parents=True)
        bad = {
            "0-syntax.json": "{oops",
            "1-name-number.json": json.dumps(
                {"kind": "manual", "name": 42, "uuid": "b1", "at": 1.0}
            ),
            "2-no-time.json": json.dumps({"kind": "manual", "name": NAME, "uuid": "b2"}),
            "3-nan.json": json.dumps({"kind": "manual", "name": NAME, "uuid": "b3", "at": "nan"}),
            "4-bad-phone.json": json.dumps(
                {"kind": "manual", "name": NAME, "phone": "12", "uuid": "b4", "at": 1.0}
            ),
            "5-unknown.json": json.dumps({"kind": "reboot"}),
            "6-mute-zero.json": json.dumps({"kind": "mute", "minutes": 0}),
            "7-mute-text.json": json.dumps({"kind": "mute", "minutes": "ten"}),
            # A UUID the collector would refuse forever must never become an entry.
            "8-bad-uuid.json": json.dumps(
                {"kind": "manual", "name": NAME, "uuid": "not-a-uuid", "at": 1597890600.0}
            ),
            "9-uuid-number.json": json.dumps(
                {"kind": "manual", "name": NAME, "uuid": 7, "at": 1597890600.0}
            ),
            "10-uuid-upper.json": json.dumps(
                {"kind": "manual", "name": NAME, "uuid": str(uuid4()).upper(), "at": 1597890600.0}
            ),
        }  # fmt: skip
        for name, body in bad.items():
            (directory / name).write_text(body, encoding="utf-8")
        entry_uuid, _request = submit_visitor(db, validate(NAME), when=1597890600.0)
        inbox.submit(db, "mute", {"minutes": 5})
        apply()
        assert listing(directory / inbox.REJECTED) == sorted(bad)
        assert inbox.pending(db) == []
        assert [row[0] for row in manual_rows(db)] == [entry_uuid]
        assert door.muted_until == door.now + 5 * 60
    finally:
        door.close()


def _manual(**fields: Any) -> dict[str, Any]:
    """A manual request as the form writes it, with ``fields`` changed (None: left out)."""
    body: dict[str, Any] = {
        "kind": "manual", "uuid": str(uuid4()), "at": 1597890600.0,
        "boot_id": str(uuid4()), "boot_s": 5123.4, "name": NAME, "organisation": "Sở Y tế",
        "phone": "0912 345 678", "purpose": "Họp",
    }  # fmt: skip
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


BAD_REQUESTS: dict[str, Any] = {
    # Keys the form never writes: a leaked field must not ride along into the visit log.
    "extra-key": _manual(id_card="001234567890"),
    "kind-missing": {key: v for key, v in _manual().items() if key != "kind"},
    "kind-number": _manual(kind=1),
    "kind-unknown": _manual(kind="reboot"),
    "not-an-object": [_manual()],
    # The visitor's own fields, held to the form's rules.
    "name-missing": {key: v for key, v in _manual().items() if key != "name"},
    "name-blank": _manual(name="   "),
    "name-bool": _manual(name=True),
    "name-list": _manual(name=[NAME]),
    "name-too-long": _manual(name="A" * (MAX_NAME + 1)),
    "name-control": _manual(name="Lê\x1bBình"),
    "org-too-long": _manual(organisation="y" * (MAX_FIELD + 1)),
    "org-number": _manual(organisation=7),
    "purpose-object": _manual(purpose={"why": "x"}),
    "phone-short": _manual(phone="12"),
    "phone-16-digits": _manual(phone="0" * 16),
    "phone-letters": _manual(phone="0912 345 abc"),
    "phone-number": _manual(phone=912345678),
    # What the writers add: the entry's UUID, its times on both clocks.
    "uuid-missing": {key: v for key, v in _manual().items() if key != "uuid"},
    "uuid-braced": _manual(uuid="{" + str(uuid4()) + "}"),
    "at-missing": {key: v for key, v in _manual().items() if key != "at"},
    "at-bool": _manual(at=True),
    "at-text": _manual(at="1597890600"),
    "at-list": _manual(at=[1597890600]),
    "at-beyond-2100": _manual(at=5e9),
    "boot-id-number": _manual(boot_id=12),
    "boot-id-not-an-id": _manual(boot_id="../../etc"),
    "boot-s-negative": _manual(boot_s=-1.0),
    "boot-s-bool": _manual(boot_s=False),
    "boot-s-text": _manual(boot_s="5123"),
    "boot-s-alone": {key: v for key, v in _manual().items() if key != "boot_id"},
    # "mute": minutes and a time, nothing else.
    "mute-bool": {"kind": "mute", "minutes": True},
    "mute-negative": {"kind": "mute", "minutes": -5},
    "mute-over-a-day": {"kind": "mute", "minutes": 24 * 60 + 1},
    "mute-text": {"kind": "mute", "minutes": "5"},
    "mute-extra-key": {"kind": "mute", "minutes": 5, "then": "reboot"},
    "mute-at-text": {"kind": "mute", "minutes": 5, "at": "now"},
    "mute-at-bool": {"kind": "mute", "minutes": 5, "at": True},
}


def test_every_field_of_every_request_kind_is_held_to_the_writers_rules(tmp_path: Path) -> None:
    """What the form and log-visitor would never write is refused whole, moved aside and
    counted; none of it becomes an entry or a mute, and the genuine requests beside it are
    applied."""
    door = Applying(tmp_path)
    db = door.db
    directory = inbox.inbox_dir(db)
    try:
        directory.mkdir(parents=True)
        for number, (name, body) in enumerate(BAD_REQUESTS.items()):
            (directory / f"{number:02d}-{name}.json").write_text(json.dumps(body), "utf-8")
        (directory / "99-nan.json").write_text(json.dumps(_manual(at=float("nan"))), "utf-8")
        good = _manual(boot_id=None, boot_s=None)  # what submit_visitor(when=...) writes
        (directory / "50-good.json").write_text(json.dumps(good), "utf-8")
        entry_uuid, _request = submit_visitor(db, validate("Lê Bình", phone="+84 912 345 678"))
        inbox.submit(db, "mute", {"minutes": 5})  # "at" and even "minutes" may be left out
        for _round in range(50):  # a loaded machine may need more than one round's budget
            door.apply()
            if not inbox.pending(db):
                break
        refused = listing(directory / inbox.REJECTED)
        assert refused == sorted(
            [f"{number:02d}-{name}.json" for number, name in enumerate(BAD_REQUESTS)]
            + ["99-nan.json"]
        )
        assert inbox.pending(db) == []
        assert sorted(row[0] for row in manual_rows(db)) == sorted([entry_uuid, good["uuid"]])
        assert door.applier.refused == len(BAD_REQUESTS) + 1
        assert door.muted_until == door.now + 5 * 60
    finally:
        door.close()


def plant_junk(directory: Path, outside: Path) -> int:
    """5,000 files a writer in the daemon's group could drop, none a request: names that sort
    before every real one, text, links, oversized files, JSON of the wrong shape; forty with
    a writer's name and a bad field (fewer than a round always takes of those) and more with a
    writer's pattern but a time before 2000. Returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    (outside / "target.json").write_text("{}", encoding="utf-8")
    planted = 0
    for i in range(5000):
        kind = i % 10
        path = directory / f"{i:04d}-junk.json"
        if kind == 0:
            stamp = 1000000000000000000 + i if i < 400 else i  # 2001, a writer's; or 1970
            path = directory / f"{stamp:019d}-{i:08x}.json"
            path.write_text(json.dumps(_manual(uuid="not-a-uuid")), encoding="utf-8")
        elif kind == 1:
            path.symlink_to(outside / "target.json")
        elif kind == 2:
            with path.open("wb") as out:
                out.truncate(inbox.MAX_REQUEST_BYTES + 10)
        elif kind == 3:
            path.write_text(json.dumps(_manual(extra="x")), encoding="utf-8")
        else:
            path.write_bytes(b"junk %d" % i)
        planted += 1
    return planted


@pytest.mark.slow
def test_a_flood_of_junk_neither_delays_a_visitor_nor_floods_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """5,000 junk files beside one genuine visitor: the visitor is recorded in the first round,
    each round stays within its budget and says what it refused in one line, and the junk is
    all moved aside within a few rounds."""
    caplog.set_level(logging.INFO, logger="checkpoint")
    door = Applying(tmp_path)
    db = door.db
    directory = inbox.inbox_dir(db)
    try:
        planted = plant_junk(directory, tmp_path / "elsewhere")
        entry_uuid, _request = submit_visitor(db, validate(NAME))
        rounds, started = 0, time.monotonic()
        longest = 0.0
        while inbox.pending(db) and rounds < 1000:  # a round's share shrinks on a loaded machine
            round_started = time.monotonic()
            door.apply()
            longest = max(longest, time.monotonic() - round_started)
            rounds += 1
            if rounds == 1:  # the visitor did not wait behind the junk
                assert [row[0] for row in manual_rows(db)] == [entry_uuid]
        cleared_s = time.monotonic() - started
        assert inbox.pending(db) == []
        assert len(listing(directory / inbox.REJECTED)) == planted
        assert door.applier.refused == planted
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        # One summary a round, not one line a file (5,003 lines before); about 20 rounds here.
        assert len(warnings) == rounds
        assert rounds * REQUESTS_PER_ROUND >= planted  # no round took more than its count
        assert all(" refused " in r.getMessage() for r in warnings)
        assert longest < 1.0  # the round's budget is 0.05 s; slack for a loaded machine
        print(f"cleared {planted} junk files in {rounds} rounds, {cleared_s:.2f} s of work")
    finally:
        door.close()


def test_a_huge_request_is_refused_after_reading_one_byte_past_the_limit(tmp_path: Path) -> None:
    import tracemalloc

    db = tmp_path / "data" / "visits.db"
    directory = inbox.inbox_dir(db)
    directory.mkdir(parents=True)
    huge = directory / "0002-huge.json"
    with huge.open("wb") as out:
        out.truncate(256 * 1024 * 1024)  # sparse: no disk, but a whole read would take 256 MiB
    tracemalloc.start()
    try:
        assert inbox.read(huge) is None
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # the limit (16 KiB) and a byte, not the file
    assert listing(directory / inbox.REJECTED) == ["0002-huge.json"]


def test_links_hard_links_and_fifos_are_refused_and_what_they_point_at_is_untouched(
    tmp_path: Path,
) -> None:
    door = Applying(tmp_path)
    db = door.db
    directory = inbox.inbox_dir(db)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    try:
        directory.mkdir(parents=True)
        body = json.dumps(
            {"kind": "manual", "name": NAME, "uuid": str(uuid4()), "at": 1597890600.0}
        )
        for name in ("target-a.json", "target-b.json"):
            (outside / name).write_text(body, encoding="utf-8")
        (directory / "1-link.json").symlink_to(outside / "target-a.json")
        os.link(outside / "target-b.json", directory / "2-hardlink.json")
        os.mkfifo(directory / "3-fifo.json")  # never listed: a read would wait for a writer
        entry_uuid, _request = submit_visitor(db, validate(NAME), when=1597890600.0)
        door.apply()
        assert listing(directory / inbox.REJECTED) == ["1-link.json", "2-hardlink.json"]
        assert (directory / inbox.REJECTED / "1-link.json").is_symlink()  # the link moved itself
        assert [row[0] for row in manual_rows(db)] == [entry_uuid]  # only the genuine visitor
        assert {p.name: p.read_text(encoding="utf-8") for p in outside.iterdir()} == {
            "target-a.json": body,
            "target-b.json": body,
        }
    finally:
        door.close()


def test_a_linked_rejected_folder_is_never_used_nor_expired_through(tmp_path: Path) -> None:
    db = tmp_path / "data" / "visits.db"
    directory = inbox.inbox_dir(db)
    directory.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    precious = outside / "report.json"
    precious.write_text("{}", encoding="utf-8")
    os.utime(precious, (1.0, 1.0))  # older than any retention
    (directory / inbox.REJECTED).symlink_to(outside, target_is_directory=True)
    assert inbox.rejected_requests(db) == 0
    assert inbox.expire(db, older_than=time.time()) == 0
    assert precious.exists()
    (directory / "1-bad.json").write_text("{oops", encoding="utf-8")
    assert inbox.read(directory / "1-bad.json") is None
    rejected = directory / inbox.REJECTED
    assert not rejected.is_symlink() and rejected.is_dir()
    assert listing(rejected) == ["1-bad.json"]
    assert listing(outside) == ["report.json"]


def test_a_request_that_cannot_be_removed_is_applied_once_and_then_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="checkpoint")
    door = Applying(tmp_path)
    db = door.db
    try:
        stuck_uuid, stuck = submit_visitor(db, validate(NAME), when=1597890600.0)
        real_done = inbox.done

        def cannot_remove(path: Path) -> None:
            if path == stuck:
                raise PermissionError(13, "Permission denied")
            real_done(path)

        monkeypatch.setattr(inbox, "done", cannot_remove)
        door.apply()
        assert inbox.pending(db) == [stuck]  # applied, but still there
        later_uuid, _ = submit_visitor(db, validate("Lê Bình"), when=1597890700.0)
        door.apply()
        door.apply()
        assert [row[0] for row in manual_rows(db)] == [stuck_uuid, later_uuid]
        assert inbox.pending(db) == [stuck]  # not in anyone's way
        recorded = [m for m in caplog.messages if m == "manual entry recorded from the console"]
        assert len(recorded) == 2  # the stuck one was not applied again
        assert sum("cannot remove it" in m for m in caplog.messages) == 1
    finally:
        door.close()


# -- checkpoint log-visitor without a daemon ---------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration with no daemon running; the status file would be beside the data."""
    config = write_config(tmp_path)
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "data"))
    return config


@pytest.mark.parametrize("status", ["none", "stale", "stopped"])
def test_log_visitor_without_a_daemon_writes_at_once(cli, offline: Path, status: str) -> None:  # type: ignore[no-untyped-def]
    from appliance.status import write_status

    data = offline.parent / "data"
    status_file = data / status_file_name(data / "visits.db")
    if status == "stale":  # the daemon was killed: its last status says running, a minute ago
        write_status(status_file, {"state": "running", "updated_at": time.time() - 60})
    elif status == "stopped":
        write_status(status_file, {"state": "stopped", "updated_at": time.time()})
    result = cli(
        "log-visitor", "--name", NAME, "--org", "Sở Y tế", "--phone", "+84 912 345 678",
        "--purpose", "Họp", "--config", str(offline),
    )  # fmt: skip
    assert result.code == 0, result.err
    match = UUID.search(result.out)
    assert match and result.out.startswith(text("form_saved", "vi"))
    db = offline.parent / "data" / "visits.db"
    (row,) = manual_rows(db)
    assert row[:4] == (match.group(1), NAME, "Sở Y tế", "+84 912 345 678")
    assert abs(row[4] - time.time()) < 30  # recorded now
    assert inbox.pending(db) == []


def test_log_visitor_keeps_a_decomposed_name_as_typed(cli, offline: Path) -> None:  # type: ignore[no-untyped-def]
    decomposed = unicodedata.normalize("NFD", NAME)
    result = cli("log-visitor", "--name", decomposed, "--lang", "en", "--config", str(offline))
    assert result.code == 0, result.err
    assert result.out.startswith(text("form_saved", "en"))
    (row,) = manual_rows(offline.parent / "data" / "visits.db")
    assert row[1] == decomposed and row[1] != NAME


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize(
    ("args", "key", "field"),
    [
        (["--name", "   "], "err_name_required", None),
        (["--name", NAME, "--phone", "123"], "err_phone", None),
        (["--name", "Lê\x1bBình"], "err_control", "f_name"),
        (["--name", NAME, "--org", "y" * 201], "err_too_long", "f_org"),
    ],
    ids=["no-name", "phone", "control", "too-long"],
)
def test_log_visitor_refuses_bad_input_in_the_chosen_language(  # type: ignore[no-untyped-def]
    cli,
    offline: Path,
    lang: str,
    args: list[str],
    key: str,
    field: str | None,
) -> None:
    extra = [] if lang == "vi" else ["--lang", "en"]  # Vietnamese is the default
    result = cli("log-visitor", *args, *extra, "--config", str(offline))
    assert result.code == 2
    assert result.out == ""
    message = text(key, lang).format(field=text(field or "", lang), n=MAX_FIELD)
    assert result.err == f"checkpoint: {message}\n"  # one line
    assert not (offline.parent / "data").exists()  # nothing written, not even an inbox


# -- with the real daemon ----------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def status_of(data: Path) -> dict[str, Any] | None:
    try:
        path = data / status_file_name(data / "visits.db")
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def running_status(data: Path) -> dict[str, Any] | None:
    status = status_of(data)
    fresh = status is not None and time.time() - status.get("updated_at", 0) < 5
    return status if fresh and status is not None and status.get("state") == "running" else None


@dataclass(frozen=True)
class Running:
    """A daemon started as a real process for this module's tests."""

    config: Path
    data: Path
    db: Path
    proc: subprocess.Popen[str]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp_path = tmp_path_factory.mktemp("daemon")
    config = write_config(tmp_path)
    env = {**os.environ, "CHECKPOINT_LOG_LEVEL": "WARNING", **runtime_env(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--simulate", "--config", str(config),
         "--speed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    data = tmp_path / "data"
    try:
        wait_for(lambda: running_status(data), timeout=30)
        yield Running(config=config, data=data, db=data / "visits.db", proc=proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def alive(daemon: Running) -> bool:
    return daemon.proc.poll() is None and running_status(daemon.data) is not None


@pytest.mark.slow
def test_log_visitor_goes_through_the_running_daemon(daemon: Running) -> None:
    result = run_checkpoint(
        ["log-visitor", "--name", NAME, "--org", "Sở Y tế Tuyên Quang", "--phone", "0912.345.678",
         "--config", str(daemon.config)],
        env=runtime_env(daemon.config), timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(text("form_saved", "vi"))
    match = UUID.search(result.stdout)
    assert match is not None, result.stdout
    rows = [row for row in manual_rows(daemon.db) if row[0] == match.group(1)]
    assert [row[1:4] for row in rows] == [(NAME, "Sở Y tế Tuyên Quang", "0912.345.678")]
    assert inbox.pending(daemon.db) == []
    # In English too, when asked.
    result = run_checkpoint(
        ["log-visitor", "--name", "Lê Bình", "--lang", "en", "--config", str(daemon.config)],
        env=runtime_env(daemon.config), timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.startswith(text("form_saved", "en"))


@pytest.mark.slow
def test_the_daemon_moves_bad_requests_aside_and_keeps_running(daemon: Running) -> None:
    directory = inbox.inbox_dir(daemon.db)
    directory.mkdir(exist_ok=True)  # the daemon makes it with the first request; none yet if alone
    rejected = directory / inbox.REJECTED
    bad = {
        "0-syntax.json": b"{oops",
        "0-deep.json": b"[" * 5000,
        "0-name-number.json": json.dumps(
            {"kind": "manual", "name": 7, "uuid": "bad-1", "at": time.time()}
        ).encode(),
    }
    for name, body in bad.items():  # written the way submit() does: a hidden name, renamed
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(body)
        os.replace(tmp, directory / name)
    # A good request after the bad ones is still applied.
    entry_uuid, _request = submit_visitor(daemon.db, validate("Phạm Thu Hà"))
    wait_for(lambda: not inbox.pending(daemon.db), timeout=10)
    assert set(bad) <= set(listing(rejected))
    assert entry_uuid in [row[0] for row in manual_rows(daemon.db)]
    assert "bad-1" not in [row[0] for row in manual_rows(daemon.db)]
    time.sleep(1.5)  # a couple more ticks
    assert alive(daemon)


@pytest.mark.slow
def test_a_mute_request_shows_in_the_status(daemon: Running) -> None:
    before = time.time()
    inbox.submit(daemon.db, "mute", {"minutes": 5})

    def muted() -> float | None:
        status = running_status(daemon.data)
        until = ((status or {}).get("door") or {}).get("muted_until")
        return until if isinstance(until, int | float) else None

    until = wait_for(muted, timeout=10)
    assert before + 5 * 60 - 1 <= until <= time.time() + 5 * 60
    assert inbox.pending(daemon.db) == []
    assert alive(daemon)


def test_a_visitor_typed_before_sync_carries_the_boot_clock_and_gets_the_true_time(
    tmp_path: Path,
) -> None:
    from appliance import clock

    door = Applying(tmp_path)
    db, apply = door.db, door.apply
    try:
        entry_uuid, path = submit_visitor(db, validate(NAME))
        request = json.loads(path.read_text(encoding="utf-8"))
        assert request["boot_id"] == clock.boot_id()
        assert request["boot_s"] == pytest.approx(clock.boottime(), abs=5)
        # Typed while the wall clock was two days behind; applied once NTP has set it.
        request["at"] -= 2 * 86400
        path.write_text(json.dumps(request), encoding="utf-8")
        apply()
        (row,) = manual_rows(db)
        assert row[0] == entry_uuid and row[4] == pytest.approx(time.time(), abs=5)
        # Typed while it was two days ahead: not refused as "from the future".
        ahead, path = submit_visitor(db, validate(NAME))
        request = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**request, "at": request["at"] + 2 * 86400}), encoding="utf-8")
        apply()
        assert manual_rows(db)[-1][0] == ahead
        assert manual_rows(db)[-1][4] == pytest.approx(time.time(), abs=5)
        # Applied while the clock is still wrong: flagged, with what corrects it later.
        door.synced = False
        second, _ = submit_visitor(db, validate(NAME))
        apply()
        [boot] = on_disk(
            db,
            "SELECT clock_synced, boot_id, entered_boot_s FROM entries WHERE uuid = ?",
            (second,),
        )
        assert boot[:2] == (0, clock.boot_id()) and boot[2] == pytest.approx(
            clock.boottime(), abs=5
        )
    finally:
        door.close()


def test_a_mute_read_late_mutes_only_for_what_is_left(tmp_path: Path) -> None:
    door = Applying(tmp_path)
    db, apply = door.db, door.apply
    try:
        inbox.submit(db, "mute", {"minutes": 30, "at": door.now - 3600})  # an hour ago
        apply()
        assert door.muted_until == 0.0 and inbox.pending(db) == []
        asked = door.now - 600  # ten minutes ago: twenty are left
        inbox.submit(db, "mute", {"minutes": 30, "at": asked})
        apply()
        assert door.muted_until == asked + 1800
        inbox.submit(db, "mute", {"minutes": True})  # not a number of minutes
        apply()
        assert len(list((inbox.inbox_dir(db) / inbox.REJECTED).iterdir())) == 1
    finally:
        door.close()


def test_requests_with_unbelievable_times_are_refused_or_clamped(tmp_path: Path) -> None:
    door = Applying(tmp_path)
    db, apply = door.db, door.apply
    try:
        for at in (True, "1597890600", 1e12, -5):
            inbox.submit(db, "manual", {"uuid": str(uuid4()), "at": at, "name": NAME})
        apply()
        assert door.visits.total() == 0
        assert len(list((inbox.inbox_dir(db) / inbox.REJECTED).iterdir())) == 4
        inbox.submit(db, "mute", {"minutes": 5, "at": 1e12})  # beyond 2100: no time at all
        apply()
        assert door.muted_until == 0.0
        assert len(list((inbox.inbox_dir(db) / inbox.REJECTED).iterdir())) == 5
        inbox.submit(db, "mute", {"minutes": 5, "at": door.now + 3600})  # the clock went back
        apply()
        assert door.muted_until == door.now + 5 * 60  # counted from now
    finally:
        door.close()


def test_refused_requests_expire_with_retention(tmp_path: Path) -> None:
    db = tmp_path / "visits.db"
    path = inbox.submit(db, "manual", {"uuid": "x", "at": 1.0, "name": NAME})
    inbox.reject(path, "test")
    (kept,) = (inbox.inbox_dir(db) / inbox.REJECTED).iterdir()
    assert inbox.rejected_requests(db) == 1
    assert inbox.expire(db, older_than=kept.stat().st_mtime - 1) == 0
    assert inbox.expire(db, older_than=time.time() + 1) == 1
    assert inbox.rejected_requests(db) == 0


# -- on a full card ----------------------------------------------------------------------------


@pytest.fixture
def full_card(tmp_path: Path) -> Iterator[Path]:
    """A configuration whose visit log and inbox are on a real 64 KiB file system, filled up;
    the daemon's status file is elsewhere (its runtime directory)."""
    disk = tmp_path / "card"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(filler, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(filler)
        config = tmp_path / "checkpoint.toml"
        config.write_text(
            '[checkpoint]\nid = "TQ-TEST-01"\n[storage]\ndatabase = "card/visits.db"\n'
            '[privacy]\nkey_file = "province.key"\n[gpio]\nenabled = false\n',
            encoding="utf-8",
        )
        (tmp_path / "run").mkdir()
        yield config
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("daemon_state", ["running", "stopped"])
def test_log_visitor_on_a_full_card_says_so_in_one_line(full_card: Path, daemon_state: str) -> None:
    """Through the daemon's inbox (it runs) or straight into the visit log (it does not): one
    line, in Vietnamese, saying the card is full and the visitor was not recorded; exit 1; no
    request, not even half of one, left in the inbox."""
    from appliance.config import load_config
    from appliance.status import owner_of, status_path, write_status

    run_dir = full_card.parent / "run"
    with pytest.MonkeyPatch.context() as env:  # the path the command will compute
        env.setenv("RUNTIME_DIRECTORY", str(run_dir))
        config = load_config(full_card)
        status = {"state": daemon_state, "updated_at": time.time(), **owner_of(config)}
        write_status(status_path(config), status)
    result = run_checkpoint(
        ["log-visitor", "--name", NAME, "--phone", "0912 345 678", "--wait", "0",
         "--config", str(full_card)],
        env={"RUNTIME_DIRECTORY": str(run_dir)}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"checkpoint: {text('err_card_full', 'vi')}\n"  # no traceback
    directory = inbox.inbox_dir(full_card.parent / "card" / "visits.db")
    assert not directory.exists() or listing(directory) == []
