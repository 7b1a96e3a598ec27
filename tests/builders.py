"""Builders for tests: sightings of app phones with the real frames, in a line; visits; and the
visit log's file read (or poked) through a connection of the test's own."""

from __future__ import annotations

import argparse
import sqlite3
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.core.doorway import Entry, EntryUpdate
from appliance.core.tokens import TokenMaker
from appliance.models import Detection, Sighting
from appliance.protocols import frames
from appliance.protocols.registry import Classifier
from appliance.store import VisitLog
from appliance.store.outbox import Outbox

_classifier = Classifier()

MAC_A = "4A:11:22:33:44:55"
MAC_B = "5B:66:77:88:99:AA"


def bluezone_id(n: int) -> bytes:
    return n.to_bytes(12, "big")


def sighting(t: float, rssi: int = -60, data: bytes | None = None, mac: str = MAC_A) -> Sighting:
    return Sighting(
        t, mac, rssi, data if data is not None else frames.bluezone_android(bluezone_id(1))
    )


def detect(s: Sighting) -> Detection:
    detection = _classifier.classify_bytes(s.data)
    assert detection is not None, "builder made a non-app frame"
    return detection


def fake_token(scheme: str, raw: bytes, when: float) -> str:
    """A readable stand-in for the HMAC token: tests check which ID an event carried."""
    return f"{scheme}:{raw.hex()}"


def record_keyed_before_sync(
    log: VisitLog, secret: bytes, raw_id: bytes, wrong_wall: float, stay_s: float = 300.0
) -> tuple[str, str]:
    """A Bluezone visit recorded while the wall clock read ``wrong_wall`` (not synchronised),
    its token keyed with that wrong day as the daemon makes it; returns (UUID, token)."""
    entry_uuid = str(uuid.uuid4())
    token = TokenMaker(secret).token("bluezone", raw_id, datetime.fromtimestamp(wrong_wall, UTC))
    entry = Entry(entry_uuid, "app", wrong_wall, "bluezone", ((token, wrong_wall),), True)
    log.record(entry, clock_synced=False)
    log.record(EntryUpdate(entry_uuid, left_at=wrong_wall + stay_s), clock_synced=False)
    log.flush()
    return entry_uuid, token


def on_disk(path: Path, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """What the file says, through a connection of its own (the store's is private), and
    committed: a test sets a row the way no method would (a corrupt clock reading) this way."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(sql, tuple(params)).fetchall()
    finally:
        conn.close()


def acknowledge(path: Path, uuids: set[str], when: float) -> None:
    """The collector acknowledges these entries, as the uploader marks them."""
    box = Outbox(path)
    try:
        marked = box.mark_synced([r for r in box.batch(1000) if r.uuid in uuids], when)
        assert marked == len(uuids), "an entry to acknowledge was not waiting to be sent"
    finally:
        box.close()


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = "checkpoint"
) -> dict[str, argparse.ArgumentParser]:
    """Every runnable subcommand of a command line and its parser, by its full name
    (``checkpoint exposure ids``, not ``checkpoint exposure``)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = subcommands(sub, f"{prefix} {name}")
                found.update(nested or {f"{prefix} {name}": sub})
    return found


# A command run as another user for real (uid, gid, no supplementary groups): it starts as root,
# imports every module of the package while it still may (the checkout and the interpreter may
# be where that user cannot read, e.g. a 0700 clone or a pyenv under /root), then gives root up
# for good and runs the CLI. The standard library's C modules the console loads late (termios)
# come along.
_AS_USER = """
import importlib, os, pkgutil, select, sys, termios, tty
import appliance, appliance.cli, rich
for package in (appliance, rich):  # rich loads its Unicode tables lazily
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if module.name.endswith(".__main__"):  # that one runs the CLI when imported
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:  # another platform's (rich._win32_console)
            if package is appliance:
                raise
os.setgroups([])
os.setgid({gid})
os.setuid({uid})
assert os.getuid() == os.geteuid() == {uid} and os.getgroups() == []
sys.exit(appliance.cli.main(sys.argv[1:]))
"""


def as_user(user: str, *args: str) -> list[str]:
    """The argv that runs ``checkpoint ARGS`` as ``user`` (see above)."""
    import pwd
    import sys

    account = pwd.getpwnam(user)
    code = _AS_USER.format(uid=account.pw_uid, gid=account.pw_gid)
    return [sys.executable, "-c", code, *args]
