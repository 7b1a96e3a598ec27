"""The daemon's status file: a small JSON snapshot that ``status`` and the console read.

Written atomically (temporary file + rename) about once a second, so a reader never sees half a
file. It lives in ``[storage] runtime_dir`` when the configuration names one (an installed unit's
does: /run/checkpoint, so a console or `checkpoint status` started from a login shell finds the
same file as the daemon under systemd), else in ``$RUNTIME_DIRECTORY``, ``/run/checkpoint`` as
root, and beside the database otherwise.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from appliance.config import Config

STATUS_NAME = "status.json"
STALE_AFTER_S = 10.0  # the daemon writes every second; older than this, it is not running
BEACON_STATUS_NAME = "beacon.json"
BEACON_STALE_S = 30.0  # the beacon reports every 5 s


def status_path(config: Config) -> Path:
    if config.storage.runtime_dir is not None:
        return config.storage.runtime_dir / STATUS_NAME
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / STATUS_NAME
    if os.geteuid() == 0:
        return Path("/run/checkpoint") / STATUS_NAME
    return config.storage.database.parent / STATUS_NAME


def beacon_status_path(config: Config) -> Path:
    """Where `checkpoint beacon` (its own process) reports its state, beside the daemon's."""
    return status_path(config).with_name(BEACON_STATUS_NAME)


def read_beacon_status(config: Config, now: float | None = None) -> dict[str, Any]:
    """The beacon's state for the console: off (no [beacon]), ok, error, or not running."""
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
    return state


def write_status(path: Path, status: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_status(path: Path, now: float | None = None) -> dict[str, Any] | None:
    """The last snapshot, with ``running`` saying whether the daemon is alive; None if there
    is none or it is not a snapshot (a damaged file is the same as no file to a reader)."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
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
    now = time.time() if now is None else now
    status["running"] = status.get("state") == "running" and now - updated < STALE_AFTER_S
    return status
