"""Capture replay: a btsnoop file through decode → tracker → doorway → visit log, on the
capture's own timestamps, with GPIO and sync off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from appliance.ble.btsnoop import CaptureReader, CaptureStats
from appliance.core.doorway import DoorTuning, Doorway
from appliance.core.pipeline import TICK_S, Pipeline, PipelineCounters
from appliance.core.presence import PresenceTracker
from appliance.core.tokens import TokenMaker
from appliance.errors import CaptureError
from appliance.models import Sighting
from appliance.protocols.registry import Classifier
from appliance.store import VisitLog

FLUSH_EVERY = 5000  # reports between commits: a long capture is not held in memory
NO_RSSI = -127  # a report without RSSI: heard, but never near enough to enter


@dataclass
class ReplaySummary:
    capture: CaptureStats
    counters: PipelineCounters
    app_phones: int = 0
    first_time: float | None = None
    last_time: float | None = None
    error: CaptureError | None = None
    entries: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

        return {
            "records": self.capture.records,
            "advertising_reports": self.capture.reports,
            "extended_reports": self.capture.extended_reports,
            "bad_events": self.capture.bad_events,
            "malformed_reports": self.counters.malformed_reports,
            "app_reports": self.counters.app_reports,
            "app_reports_by_protocol": dict(self.counters.by_protocol),
            "app_phones": self.app_phones,
            "entries": self.entries,
            "first": iso(self.first_time),
            "last": iso(self.last_time),
            "error": str(self.error) if self.error else None,
        }


def replay_capture(
    path: str | os.PathLike[str],
    store: VisitLog,
    secret: bytes,
    classifier: Classifier | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Replay one capture into ``store``; a damaged file still counts what was read before."""
    tokens = TokenMaker(secret)
    tracker = PresenceTracker(
        lambda scheme, raw, when: tokens.token(scheme, raw, datetime.fromtimestamp(when, UTC))
    )
    # A capture has no door sensor: every app presence is an entry.
    pipeline = Pipeline(
        classifier or Classifier(), tracker, Doorway(DoorTuning(sensor=False)), store
    )
    reader = CaptureReader(path)
    summary = ReplaySummary(reader.stats, pipeline.counters)
    next_tick = None
    try:
        for report in reader.reports():
            now = report.time
            if summary.first_time is None:
                summary.first_time = now
            summary.last_time = now
            if next_tick is None or now >= next_tick:
                pipeline.tick(now)
                next_tick = now + TICK_S
            rssi = report.rssi if report.rssi is not None else NO_RSSI
            pipeline.on_sighting(Sighting(now, report.address, rssi, report.data))
            if pipeline.counters.reports % FLUSH_EVERY == 0:
                store.flush()
                if progress is not None:
                    progress(pipeline.counters.reports)
    except CaptureError as exc:
        summary.error = exc
    summary.capture = reader.stats  # the reader starts fresh counts for each pass
    if summary.last_time is not None:
        pipeline.close(summary.last_time)
    store.flush()
    summary.entries = dict(pipeline.counters.entries)
    summary.app_phones = tracker.phones_seen
    return summary
