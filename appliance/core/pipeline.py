"""The door pipeline: decode → presence tracker → doorway → visit log and signals.

One synchronous object that the daemon, capture replay, the accuracy tests and the benchmark all
drive the same way: ``on_sighting``, ``on_sensor`` and ``tick`` with the time inside the events
(the wall clock in the daemon, a capture's timestamps on replay, virtual time in tests).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from appliance.core.doorway import APP, NO_APP, Decision, Doorway, Entry, EntryUpdate, Signal
from appliance.core.presence import PresenceTracker
from appliance.models import Detection, PresenceEvent, SensorEvent, Sighting
from appliance.protocols.adstructs import parse
from appliance.protocols.registry import Classifier

log = logging.getLogger("checkpoint")

# How often the pipeline's clock is advanced (tracker timeouts, doorway windows): fine enough for
# its shortest window (1 s debounce) at a negligible cost.
TICK_S = 0.5
DECODE_CACHE_SIZE = 16_384  # addresses whose last decoding is remembered (memory only)


class EntrySink(Protocol):
    def record(self, decision: Entry | EntryUpdate, *, clock_synced: bool = True) -> None: ...


@dataclass
class PipelineCounters:
    reports: int = 0
    app_reports: int = 0
    malformed_reports: int = 0
    sensor_events: int = 0
    entries: Counter[str] = field(default_factory=Counter)
    signals: Counter[str] = field(default_factory=Counter)
    by_protocol: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        return {
            "reports": self.reports,
            "app_reports": self.app_reports,
            "malformed_reports": self.malformed_reports,
            "sensor_events": self.sensor_events,
            "entries": dict(self.entries),
            "signals": dict(self.signals),
            "app_reports_by_protocol": dict(self.by_protocol),
        }


class Pipeline:
    """Wires the pure parts together; decisions go to ``sink`` and ``on_signal``."""

    def __init__(
        self,
        classifier: Classifier,
        tracker: PresenceTracker,
        doorway: Doorway,
        sink: EntrySink,
        on_signal: Callable[[Signal], None] | None = None,
        clock_synced: Callable[[], bool] = lambda: True,
    ) -> None:
        self.classifier = classifier
        self.tracker = tracker
        self.doorway = doorway
        self.sink = sink
        self.on_signal = on_signal
        self.clock_synced = clock_synced
        self.counters = PipelineCounters()
        self.last_time = 0.0
        self._decoded: dict[str, tuple[bytes, Detection | None, bool]] = {}
        # Called with (address, time) for reports whose ID must be read over GATT (iPhones).
        self.on_needs_gatt: Callable[[str, float], None] | None = None

    def on_sighting(self, sighting: Sighting) -> None:
        counters = self.counters
        counters.reports += 1
        self.last_time = sighting.time
        data = sighting.data
        # A phone repeats the same advertisement many times a second with only the RSSI
        # moving: decode each address's content once, until it changes.
        cached = self._decoded.get(sighting.address)
        if cached is not None and (cached[0] is data or cached[0] == data):
            detection, malformed = cached[1], cached[2]
        else:
            adv = parse(data)
            detection, malformed = self.classifier.classify(adv), adv.malformed
            if len(self._decoded) >= DECODE_CACHE_SIZE:
                self._decoded.clear()
            self._decoded[sighting.address] = (data, detection, malformed)
        if malformed:
            counters.malformed_reports += 1
        if detection is None:
            return
        counters.app_reports += 1
        counters.by_protocol[detection.protocol] += 1
        if detection.needs_gatt and self.on_needs_gatt is not None:
            self.on_needs_gatt(sighting.address, sighting.time)
        events = self.tracker.observe(sighting, detection)
        if events:
            self._presence(events)

    def identify(self, protocol: str, address: str, raw_id: bytes, now: float) -> None:
        """An ID read out of band (over GATT) for the phone at ``address``."""
        self._presence(self.tracker.identify(protocol, address, raw_id, now))

    def on_sensor(self, event: SensorEvent) -> None:
        self.counters.sensor_events += 1
        self.last_time = event.time
        self._decide(self.doorway.on_sensor(event))

    def tick(self, now: float) -> None:
        """Advance time: end silent phones, decide crossings whose window has passed."""
        self.last_time = max(self.last_time, now)
        events = self.tracker.tick(now)
        if events:
            self._presence(events)
        tracker = self.tracker
        self._decide(
            self.doorway.tick(now, hold=tracker.undecided_near(), still_near=tracker.still_near)
        )

    def close(self, now: float) -> None:
        """End everything still open, as at shutdown or the end of a capture.

        The doorway decides first, while the phones heard after a crossing are still there to
        explain it; only then do the stays end.
        """
        self.tick(now)
        self._decide(self.doorway.close(now))
        self._presence(self.tracker.close(now))

    def _presence(self, events: list[PresenceEvent]) -> None:
        doorway = self.doorway
        for event in events:
            decisions = doorway.on_presence(event)
            if decisions:
                self._decide(decisions)

    def _decide(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Signal):
                self.counters.signals[decision.intent] += 1
                if self.on_signal is not None:
                    try:
                        self.on_signal(decision)
                    except Exception:  # lights failing must never cost an entry
                        log.exception("signal %s failed", decision.intent)
                continue
            if isinstance(decision, Entry):
                self.counters.entries[decision.kind] += 1
            self.sink.record(decision, clock_synced=self.clock_synced())


__all__ = ["APP", "NO_APP", "Pipeline", "PipelineCounters"]
