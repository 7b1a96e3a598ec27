"""The daemon's status file: a small JSON snapshot that ``status`` and the console read, one per
visit log.

Written atomically (temporary file + rename) about once a second, so a reader never sees half a
file. Its directory is ``[storage] runtime_dir`` when the configuration names one (an installed
unit's does: /run/checkpoint, so a console or `checkpoint status` started from a login shell finds
the same file as the daemon under systemd), else ``$RUNTIME_DIRECTORY``, else the database's own
directory: never who asks (as root or not) decides. In it, the daemon's and the beacon's files are
named after the database (a digest of its resolved path), and each document says which database
and door it belongs to: a reader shows no other unit's status, and says so instead.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from appliance.config import Config

STALE_AFTER_S = 10.0  # the daemon writes every second; older than this, it is not running
BEACON_STALE_S = 30.0  # the beacon reports every 5 s
KEY_DIGITS: Final = 12  # hex digits of the database's digest in a file name: no collisions

# What a reader found instead of this database's status (StatusReading.problem).
MISSING, UNREADABLE, DAMAGED, FOREIGN = "missing", "unreadable", "damaged", "foreign"


def resolved_database(database: Path) -> str:
    """A database as every process names it: its resolved path."""
    return str(Path(os.path.realpath(database)))


def database_of(config: Config) -> str:
    """The database a status belongs to."""
    return resolved_database(config.storage.database)


def owner_of(config: Config) -> dict[str, Any]:
    """What a status document carries to say whose it is: the database and the door."""
    return {"database": database_of(config), "checkpoint": {"id": config.checkpoint.id}}


def status_dir(config: Config) -> Path:
    if config.storage.runtime_dir is not None:
        return config.storage.runtime_dir
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0])
    return config.storage.database.parent


def status_file_name(database: Path, kind: str = "status") -> str:
    """``status-<digest>.json`` (or ``beacon-…``): one database's file in a shared directory."""
    digest = hashlib.sha256(resolved_database(database).encode("utf-8")).hexdigest()
    return f"{kind}-{digest[:KEY_DIGITS]}.json"


def status_path(config: Config) -> Path:
    """The daemon's status file of this configuration's database."""
    return status_dir(config) / status_file_name(config.storage.database)


def beacon_status_path(config: Config) -> Path:
    """Where `checkpoint beacon` (its own process) reports its state, beside the daemon's."""
    return status_dir(config) / status_file_name(config.storage.database, "beacon")


def foreign_to(document: dict[str, Any], config: Config) -> str | None:
    """Why ``document`` is not this configuration's status (another database or door), or
    None when it is."""
    database = document.get("database")
    if database != database_of(config):
        return f"it belongs to the database {str(database)[:200]}"
    checkpoint = document.get("checkpoint")
    door = checkpoint.get("id") if isinstance(checkpoint, dict) else None
    if door != config.checkpoint.id:
        return f"it belongs to door {str(door)[:80]}, not {config.checkpoint.id}"
    return None


def read_beacon_status(config: Config, now: float | None = None) -> dict[str, Any]:
    """The beacon's state for the console: off (no [beacon]), ok, error, or not running (which
    is also what another unit's beacon file means for this one)."""
    if config.beacon is None:
        return {"state": "off"}
    try:
        state = json.loads(beacon_status_path(config).read_text(encoding="utf-8"))
        updated = float(state["updated_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return {"state": "stopped"}
    now = time.time() if now is None else now
    if not isinstance(state, dict) or now - updated > BEACON_STALE_S:
        return {"state": "stopped"}
    foreign = foreign_to(state, config)
    if foreign is not None:
        return {"state": "stopped", "foreign": foreign}
    return state


def write_status(path: Path, status: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _checked(status: Any, now: float) -> dict[str, Any] | None:
    """The document with ``running`` set, or None if it is not a snapshot."""
    if not isinstance(status, dict):
        return None
    updated = status.get("updated_at")
    if not isinstance(updated, int | float) or isinstance(updated, bool):
        return None
    for part in ("health", "today", "counters", "checkpoint"):
        if not isinstance(status.get(part, {}), dict):
            return None
    if any(not isinstance(v, dict) for v in status.get("health", {}).values()):
        return None
    status["running"] = status.get("state") == "running" and now - updated < STALE_AFTER_S
    return status


def read_status(path: Path, now: float | None = None) -> dict[str, Any] | None:
    """The last snapshot at ``path``, with ``running`` saying whether the daemon is alive; None
    if there is none or it is not a snapshot (a damaged file is the same as no file to a reader).
    It does not say whose it is: readers of a unit's status use ``read_unit_status``."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _checked(status, time.time() if now is None else now)


@dataclass(frozen=True, slots=True)
class StatusReading:
    """What a reader found at its unit's status path: the document (this unit's, checked), or
    the reason there is none to show: missing, unreadable (``detail``: the system's reason,
    which is not "not running"), damaged, or foreign (another database's or door's)."""

    path: Path
    status: dict[str, Any] | None
    problem: str | None = None
    detail: str = ""

    @property
    def running(self) -> bool:
        return self.status is not None and bool(self.status.get("running"))


def read_unit_status(config: Config, now: float | None = None) -> StatusReading:
    path = status_path(config)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return StatusReading(path, None, MISSING)
    except OSError as exc:
        # Another user than the daemon's group: its status exists but is not ours to read.
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        return StatusReading(path, None, UNREADABLE, reason)
    try:
        status = _checked(json.loads(raw), time.time() if now is None else now)
    except ValueError:
        status = None
    if status is None:
        return StatusReading(path, None, DAMAGED)
    foreign = foreign_to(status, config)
    if foreign is not None:
        return StatusReading(path, None, FOREIGN, foreign)
    return StatusReading(path, status)


def unit_status(config: Config, now: float | None = None) -> dict[str, Any] | None:
    """This unit's status document, or None (no status of its own to go by)."""
    return read_unit_status(config, now).status
