"""The crash test: the real daemon, SIGKILLed at random moments while it syncs, loses nothing.

    python -m tests.crash [--kills N] [--seed S] [--window S] [--speed X]    (make crash-test)

It starts the real collector (its own process, TLS with trustme certificates, SQLite), enrolls a
unit, and runs `checkpoint run --simulate-live` (the simulated lobby, sped up, its entries marked
live so that the uploader sends them) N times, each time SIGKILLing it at a random moment
(seeded) in a short window after it said READY=1 on its notification socket. After each kill it
reads the visit log the way the next start will and checks:

- every row an earlier kill left committed is still there and unchanged: a closed stay not at
  all, an open one only closed (the next start ends it) and sent again; an acknowledgement is
  never taken back from an unchanged row;
- ``PRAGMA integrity_check`` says ok;
- the outbox lost and doubled nothing: every entry is live and either acknowledged or still
  queued (none refused), each UUID once; every acknowledged entry is at the collector exactly as
  the unit has it, and the collector has nothing the unit does not.

At the end the daemon runs until it reports an empty backlog, stops cleanly, `checkpoint sync
--now` sends what its shutdown decided, and every row must be at the collector exactly once.
It prints one line of figures and exits 0, or 1 with the first violations on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import load_config
from appliance.status import status_path
from tests.collector_harness import Collector, make_tls

Row = tuple[Any, ...]
Snapshot = dict[str, Row]

# The columns a row is compared by, in this order, then its tokens (a frozenset).
COLUMNS = (
    "kind", "protocol", "entered_at", "left_at", "clock_synced", "via_sensor", "created_at",
    "origin", "revision", "synced_at", "sync_error", "boot_id", "entered_boot_s", "left_boot_s",
)  # fmt: skip
LEFT_AT, REVISION, SYNCED_AT = (COLUMNS.index(c) for c in ("left_at", "revision", "synced_at"))
READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 120.0
EARLY_S = 0.5
LIVE_SIMULATION_ENV = "CHECKPOINT_TEST_LIVE_SIMULATION"  # appliance.commands.run's gate


@dataclass
class Figures:
    kills: int = 0
    committed: int = 0
    at_collector: int = 0
    duplicates: int = 0
    lost: int = 0
    changed: int = 0
    resent: int = 0  # acknowledged by the collector, still queued on the unit after a kill
    integrity: str = "ok"
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"crash test: kills {self.kills}, rows committed {self.committed},"
            f" rows at the collector {self.at_collector}, duplicates {self.duplicates},"
            f" lost {self.lost}, changed {self.changed}, integrity {self.integrity},"
            f" resent after a kill {self.resent}, {self.seconds:.1f} s"
        )


# -- reading both sides ------------------------------------------------------------------------


def read_device(db: Path) -> tuple[Snapshot, str, int]:
    """Every entry (uuid → its columns and tokens), integrity_check's answer, and how many rows
    share a UUID with another (the schema forbids it: counted all the same)."""
    conn = sqlite3.connect(db)
    try:
        integrity = "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
        tokens: dict[int, set[tuple[Any, ...]]] = {}
        for entry_id, *token in conn.execute(
            "SELECT entry_id, token, first_seen, key_day FROM entry_tokens"
        ):
            tokens.setdefault(entry_id, set()).add(tuple(token))
        rows: Snapshot = {}
        total = 0
        for entry_id, uuid, *values in conn.execute(
            f"SELECT id, uuid, {', '.join(COLUMNS)} FROM entries"
        ):
            total += 1
            rows[uuid] = (*values, frozenset(tokens.get(entry_id, ())))
        return rows, integrity, total - len(rows)
    finally:
        conn.close()


def read_collector(server: Collector) -> tuple[dict[str, Row], int]:
    """The collector's visits (uuid → kind, protocol, entered_at, left_at and its tokens) and
    how many rows share a UUID."""
    tokens: dict[str, set[str]] = {}
    for uuid, token in server.query("SELECT visit_uuid, token FROM visit_tokens"):
        tokens.setdefault(str(uuid), set()).add(str(token))
    visits = server.query("SELECT uuid, kind, protocol, entered_at, left_at FROM visits")
    found = {
        str(u): (k, p, e, left, frozenset(tokens.get(str(u), ()))) for u, k, p, e, left in visits
    }
    return found, len(visits) - len(found)


def as_sent(row: Row) -> Row:
    """What the collector should hold for a unit's row."""
    kind, protocol, entered_at, left_at = row[0], row[1], row[2], row[3]
    return (kind, protocol, entered_at, left_at, frozenset(t[0] for t in row[-1]))


# -- the checks --------------------------------------------------------------------------------


def compare(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str]]:
    """UUIDs lost, and rows changed in a way no restart may change them, from one kill's
    snapshot to the next's. An open stay may be closed (the next start ends it), which puts it
    back in the outbox with a new revision; nothing else about a row may change, and an
    unchanged row keeps its acknowledgement."""
    lost = [u for u in before if u not in after]
    changed = []
    for uuid, old in before.items():
        new = after.get(uuid)
        if new is None or new == old:
            continue
        fixed = [i for i in range(len(old)) if i not in (LEFT_AT, REVISION, SYNCED_AT)]
        same_content = all(old[i] == new[i] for i in fixed)
        closed_now = (
            old[LEFT_AT] is None and new[LEFT_AT] is not None and new[REVISION] > old[REVISION]
        )
        acked_now = (
            old[SYNCED_AT] is None
            and new[LEFT_AT] == old[LEFT_AT]
            and new[REVISION] == old[REVISION]
        )
        if not (same_content and (closed_now or acked_now)):
            changed.append(uuid)
    return lost, changed


def check_outbox(rows: Snapshot, remote: dict[str, Row]) -> tuple[list[str], int]:
    """Problems with the outbox against the collector, and how many queued rows the collector
    already has as they are (their acknowledgement was lost with the kill: sent again)."""
    problems = []
    resent = 0
    for uuid, row in rows.items():
        origin, synced_at, sync_error = (
            row[COLUMNS.index("origin")],
            row[SYNCED_AT],
            row[COLUMNS.index("sync_error")],
        )
        if origin != "live" or sync_error is not None:
            problems.append(f"{uuid}: not in the outbox (origin {origin}, refused: {sync_error})")
        elif synced_at is not None and remote.get(uuid) != as_sent(row):
            problems.append(
                f"{uuid}: acknowledged but the collector has {remote.get(uuid)}, not {as_sent(row)}"
            )
        elif synced_at is None and remote.get(uuid) == as_sent(row):
            resent += 1
    problems += [
        f"{uuid}: at the collector, not on the unit" for uuid in remote.keys() - rows.keys()
    ]
    return problems, resent


# -- the unit and its daemon -------------------------------------------------------------------


def device_config(work: Path, server: Collector) -> Path:
    """A unit enrolled with the collector, syncing often in small batches."""
    config = work / "device" / "checkpoint.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[checkpoint]\nagency = "(not enrolled)"\n'
        '[storage]\ndatabase = "data/visits.db"\nruntime_dir = "run"\n'
        '[privacy]\nkey_file = "province.key"\n'
        '[ble]\nsource = "simulate"\n[gpio]\nenabled = false\n'
        "[sync]\ninterval_s = 5.0\nbatch_size = 5\nheartbeat_s = 10.0\nmax_backoff_s = 10.0\n",
        encoding="utf-8",
    )
    enrolled = subprocess.run(
        [sys.executable, "-m", "appliance", "enroll", "--server", server.url,
         "--code", server.code(), "--ca", str(server.tls.ca_file), "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if enrolled.returncode != 0:
        raise RuntimeError(f"enroll failed: {enrolled.stderr}")
    return config


@contextmanager
def notify_socket(work: Path) -> Iterator[socket.socket]:
    """Where the daemon says READY=1, as it would to systemd."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(work / "notify.sock"))
    try:
        yield sock
    finally:
        sock.close()


class Unit:
    def __init__(self, config: Path, notify: socket.socket, speed: float, work: Path) -> None:
        self.config = config
        self.notify = notify
        self.speed = speed
        self.log = work / "daemon.log"
        self.env = {**os.environ, LIVE_SIMULATION_ENV: "1", "NOTIFY_SOCKET": notify.getsockname(),
                    "CHECKPOINT_LOG_LEVEL": "WARNING"}  # fmt: skip
        self.database = config.parent / "data" / "visits.db"
        self.status = status_path(load_config(config))  # one file per database

    def start(self) -> subprocess.Popen[bytes]:
        """The daemon, once it said READY=1."""
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "appliance", "run", "--simulate-live",
                 "--speed", str(self.speed), "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env,
            )  # fmt: skip
        # Waits on the socket a little at a time, so that a daemon that exits at once (a bad
        # option, a bad configuration) is reported at once.
        self.notify.settimeout(0.5)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                lines = self.notify.recv(4096).decode().splitlines()
            except TimeoutError:
                lines = []
            if "READY=1" in lines and f"MAINPID={proc.pid}" in lines:
                return proc
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"the daemon never said READY=1: {self.log_tail()}")

    def drained(self, since: float) -> bool:
        """The daemon's last push, after ``since``, left nothing to send."""
        try:
            sync = json.loads(self.status.read_text())["health"]["sync"]
        except (OSError, ValueError, KeyError):
            return False
        return sync.get("backlog") == 0 and (sync.get("last_success") or 0) > since

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


# -- the run -----------------------------------------------------------------------------------


def kill_moment(rng: random.Random, window_s: float) -> float:
    """Seconds after READY=1: half the kills in its first half second, while the uploader
    sends the backlog (it starts at once, in batches of 5) and the first commit is made, the
    rest anywhere in the window."""
    return rng.uniform(0.0, min(EARLY_S, window_s) if rng.random() < 0.5 else window_s)


def kill_cycles(
    unit: Unit, server: Collector, figures: Figures, kills: int, rng: random.Random, window_s: float
) -> Snapshot:
    before: Snapshot = {}
    for _ in range(kills):
        proc = unit.start()
        time.sleep(kill_moment(rng, window_s))  # the random moment is the point: not a wait
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        figures.kills += 1
        rows, integrity, doubled = read_device(unit.database)
        remote, remote_doubled = read_collector(server)
        lost, changed = compare(before, rows)
        problems, resent = check_outbox(rows, remote)
        figures.lost += len(lost)
        figures.changed += len(changed)
        figures.duplicates += doubled + remote_doubled
        figures.resent += resent
        if integrity != "ok":
            figures.integrity = integrity
        figures.problems += [f"kill {figures.kills}: lost {u}" for u in lost]
        figures.problems += [
            f"kill {figures.kills}: changed {u}: {before[u]} -> {rows[u]}" for u in changed
        ]
        figures.problems += [f"kill {figures.kills}: {p}" for p in problems]
        before = rows
    return before


def drain(unit: Unit, server: Collector, figures: Figures, before: Snapshot) -> None:
    """The daemon sends everything, stops cleanly, and the rest goes with `sync --now`."""
    proc = unit.start()
    started = time.time()
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while not unit.drained(started):
        if time.monotonic() > deadline:
            figures.problems.append("the daemon did not drain its outbox")
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    if proc.wait(60) != 0:
        figures.problems.append(f"the daemon exited {proc.returncode}: {unit.log_tail()}")
    sent = subprocess.run(
        [sys.executable, "-m", "appliance", "sync", "--now", "--config", str(unit.config)],
        capture_output=True, text=True, timeout=120, env=unit.env,
    )  # fmt: skip
    if sent.returncode != 0:
        figures.problems.append(f"sync --now exited {sent.returncode}: {sent.stderr.strip()}")
    rows, integrity, doubled = read_device(unit.database)
    remote, remote_doubled = read_collector(server)
    lost, changed = compare(before, rows)
    problems, _ = check_outbox(rows, remote)
    queued = [u for u, row in rows.items() if row[SYNCED_AT] is None]
    figures.problems += [f"end: lost {u}" for u in lost] + [f"end: changed {u}" for u in changed]
    figures.problems += [f"end: {p}" for p in problems] + [f"end: {u} never sent" for u in queued]
    figures.lost += len(lost) + len(set(rows) - set(remote))
    figures.changed += len(changed)
    figures.duplicates += doubled + remote_doubled
    if integrity != "ok":
        figures.integrity = integrity
    figures.committed = len(rows)
    figures.at_collector = len(remote)


def crash_test(kills: int, *, seed: int, window_s: float, speed: float, work: Path) -> Figures:
    figures = Figures()
    started = time.monotonic()
    rng = random.Random(seed)
    server = Collector(f"sqlite:///{work / 'collector.db'}", make_tls(work), work,
                       province_key=os.urandom(32))  # fmt: skip
    server.start()
    try:
        config = device_config(work, server)
        with notify_socket(work) as notify:
            unit = Unit(config, notify, speed, work)
            before = kill_cycles(unit, server, figures, kills, rng, window_s)
            drain(unit, server, figures, before)
    finally:
        server.stop()
    if figures.committed == 0:
        figures.problems.append("nothing was committed: the lobby recorded no entry")
    figures.seconds = time.monotonic() - started
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.crash", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kills", type=int, default=int(os.environ.get("CRASH_KILLS", "200")))
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--window", type=float, default=2.5, help="kill within S seconds of READY=1"
    )
    parser.add_argument("--speed", type=float, default=20.0, help="the simulated lobby's speed")
    parser.add_argument(
        "--workdir", type=Path, help="keep the files here (default: a temporary directory)"
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        figures = crash_test(
            args.kills, seed=args.seed, window_s=args.window, speed=args.speed, work=args.workdir
        )
    else:
        with tempfile.TemporaryDirectory(prefix="checkpoint-crash-") as work:
            figures = crash_test(
                args.kills, seed=args.seed, window_s=args.window, speed=args.speed, work=Path(work)
            )
    print(figures.line(), flush=True)
    for problem in figures.problems[:20]:
        print(problem, file=sys.stderr)
    return 1 if figures.problems or figures.integrity != "ok" else 0


if __name__ == "__main__":
    sys.exit(main())
