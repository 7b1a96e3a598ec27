"""The entry log as JSON lines, for machines: machine keys, UTC ISO 8601 times and local ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO, Any

from appliance.exports.cells import Progress, reported
from appliance.exports.exporter import Exporter

_TYPED = ("name", "organisation", "phone", "purpose")  # a manual entry's details


def _utc(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def write_jsonl(exporter: Exporter, out: IO[str], progress: Progress | None = None) -> int:
    """One JSON object per line; returns how many."""
    count = 0
    for r in reported(exporter.records(), progress, exporter.chunk):
        entered = exporter.local(r.entered_at)
        left = exporter.local(r.left_at)
        assert entered is not None
        item: dict[str, Any] = {
            "entry": r.uuid,
            "kind": r.kind,
            "protocol": r.protocol,
            "entered_at": _utc(r.entered_at),
            "left_at": _utc(r.left_at),
            "entered_local": entered.isoformat(timespec="seconds"),
            "left_local": left.isoformat(timespec="seconds") if left else None,
            "tokens": list(r.tokens),
            "clock_synced": r.clock_synced,
            "via_sensor": r.via_sensor,
        }
        if r.kind == "manual":
            for key in _TYPED:
                item[key] = getattr(r, key)
        out.write(json.dumps(item, ensure_ascii=False) + "\n")
        count += 1
    return count
