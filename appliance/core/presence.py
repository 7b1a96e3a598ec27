"""Presence tracking: which app phones are near the door, from a stream of noisy sightings.

Pure and synchronous: ``observe(sighting, detection)`` and ``tick(now)`` take the time from
their arguments and return ``PresenceEvent``s; nothing sleeps, reads a clock or does I/O.

- RSSI is smoothed with a short windowed median; a phone *enters* when the smoothed signal
  reaches ``entry_rssi_dbm`` and *leaves* when it falls below the weaker ``exit_rssi_dbm``
  (hysteresis) or when it has been silent longer than the apps' advertising gaps.
- Identifiers rotate; a new identifier that continues a known phone is the same phone and the
  same stay, so a staff phone at the reception desk all day is one presence, not 96. Which one
  it continues is decided by the rotation linker (core/rotation.py).
- A phone that is gone is forgotten entirely: its identifiers leave memory with it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from appliance.core.phone import Key, Phone, PresenceTuning
from appliance.core.rotation import RotationLinker
from appliance.models import Detection, PresenceEvent, Sighting

# Re-exported: the tracker's tuning is part of its interface.
__all__ = ["CORROBORATING", "PresenceTracker", "PresenceTuning", "Tokenize"]

# "Still near the door": heard within the last few seconds (longer than one Android background
# pause would be too long to tell someone leaving), well above the exit level.
STILL_NEAR_S = 16.0
STILL_NEAR_MARGIN_DB = 6.0

# Reports that only corroborate a phone that also advertises its ID (Android Bluezone ≥ 3.0.7
# sends a plain iBeacon beside its own advertisement, often from another MAC): counting them
# would count that phone twice.
CORROBORATING = frozenset({"bluezone-beacon"})

Tokenize = Callable[[str, bytes, float], str]


class PresenceTracker:
    """Turns (sighting, detection) pairs into enter / identifier / leave events."""

    def __init__(
        self, tokenize: Tokenize | None = None, tuning: PresenceTuning | None = None
    ) -> None:
        self.tuning = tuning or PresenceTuning()
        self._tokenize = tokenize
        self._linker = RotationLinker(self.tuning)
        self._by_key: dict[Key, Phone] = {}
        self._phones: set[Phone] = set()
        self._present: dict[int, Phone] = {}  # presence id → phone, while near the door
        self._ids = count(1)
        self.rotations = 0
        self.phones_seen = 0  # distinct app phones heard, near or not (rotations not counted)
        self.ignored_corroborating = 0

    @property
    def utc_offset_s(self) -> float:
        """What to add to the times given here for UTC (Bluezone phones rotate at UTC
        quarter-hours): zero for wall times; the daemon's session clock, which never steps,
        sets the wall clock's step here once NTP has set it."""
        return self._linker.utc_offset_s

    @utc_offset_s.setter
    def utc_offset_s(self, offset_s: float) -> None:
        self._linker.utc_offset_s = offset_s

    # -- queries -------------------------------------------------------------------------------

    @property
    def tracked(self) -> int:
        """Phones in memory (near or not), pending identifiers included."""
        return len(self._phones) + len(self._linker)

    @property
    def present(self) -> int:
        """Phones currently near the door."""
        return len(self._present)

    @property
    def known_identifiers(self) -> int:
        return len(self._by_key) + len(self._linker)

    def still_near(self, presence_id: int, now: float) -> bool:
        """Whether a present phone is still heard near the door: recently, and well above the
        level at which it would leave. Someone who walked out is far, or silent, within
        seconds."""
        phone = self._present.get(presence_id)
        return (
            phone is not None
            and now - phone.last_seen <= STILL_NEAR_S
            and phone.smoothed >= self.tuning.exit_rssi_dbm + STILL_NEAR_MARGIN_DB
        )

    def undecided_near(self) -> bool:
        """Whether a held (pending) identifier is strong enough that it may yet enter.

        The doorway waits for it before telling someone they have no app.
        """
        level = self.tuning.entry_rssi_dbm
        return any(p.smoothed >= level for p in self._linker.held_phones())

    # -- input ---------------------------------------------------------------------------------

    def observe(self, sighting: Sighting, detection: Detection) -> list[PresenceEvent]:
        """Account for one app sighting; returns the events it causes (often none)."""
        protocol = detection.protocol
        if protocol in CORROBORATING:
            self.ignored_corroborating += 1
            return []
        now = sighting.time
        raw_id = detection.raw_id
        scheme = detection.id_scheme or protocol
        key: Key = (scheme, raw_id) if raw_id is not None else (protocol, sighting.address)

        phone = self._by_key.get(key)
        if phone is not None:
            if phone.current == key:
                phone.current_last_seen = now
            phone.add_sample(now, sighting.rssi, self.tuning)
            return self._check_level(phone, now)

        pending = self._linker.held(key)
        if pending is not None:
            pending.add_sample(now, sighting.rssi, self.tuning)
            pending.current_last_seen = now
            return []

        return self._new_identifier(key, scheme, protocol, raw_id, sighting, now)

    def identify(
        self, protocol: str, address: str, raw_id: bytes, now: float
    ) -> list[PresenceEvent]:
        """An ID learnt out of band for a phone known by its address (an iPhone's Bluezone ID
        read over GATT): its visit gets the token from now on."""
        key = (protocol, address)
        phone = self._by_key.get(key) or self._linker.held(key)
        if phone is None or phone.raw_id == raw_id:
            return []
        phone.raw_id = raw_id
        if phone.entered:
            return [self._event("identifier", phone, now, with_token=True)]
        return []

    def tick(self, now: float) -> list[PresenceEvent]:
        """Resolve held identifiers and end phones that went silent."""
        events: list[PresenceEvent] = []
        # One at a time: a phone registered or linked here may be the next one's predecessor.
        for key, pending in self._linker.take_due(now):
            previous = self._linker.predecessor(pending)
            if previous is None:
                events += self._register(key, pending, now)
            else:
                events += self._link(previous, key, pending, now)
        horizon = now - self.tuning.absence_timeout_s
        gone = [phone for phone in self._phones if phone.last_seen < horizon]
        for phone in gone:
            if phone.entered:
                events.append(self._event("left", phone, phone.last_seen))
            self._forget(phone)
        return events

    def close(self, now: float) -> list[PresenceEvent]:
        """End every presence (shutdown or end of a capture)."""
        events = [self._event("left", p, p.last_seen) for p in self._phones if p.entered]
        for phone in list(self._phones):
            self._forget(phone)
        self._linker.clear()
        return events

    # -- internals -----------------------------------------------------------------------------

    def _event(
        self, kind: str, phone: Phone, when: float, with_token: bool = False
    ) -> PresenceEvent:
        token = None
        if with_token and phone.raw_id is not None and self._tokenize is not None:
            token = self._tokenize(phone.scheme, phone.raw_id, when)
        return PresenceEvent(kind, phone.presence_id, when, phone.protocol, token, phone.smoothed)

    def _check_level(self, phone: Phone, now: float) -> list[PresenceEvent]:
        tuning = self.tuning
        if not phone.entered:
            if phone.smoothed >= tuning.entry_rssi_dbm and phone.strong >= tuning.entry_min_samples:
                phone.entered = True
                phone.presence_id = next(self._ids)
                self._present[phone.presence_id] = phone
                return [self._event("entered", phone, now, with_token=True)]
        elif phone.smoothed < tuning.exit_rssi_dbm:
            phone.entered = False
            self._present.pop(phone.presence_id, None)
            return [self._event("left", phone, now)]
        return []

    def _new_identifier(
        self,
        key: Key,
        scheme: str,
        protocol: str,
        raw_id: bytes | None,
        sighting: Sighting,
        now: float,
    ) -> list[PresenceEvent]:
        phone = Phone(key, scheme, protocol, raw_id, now)
        phone.add_sample(now, sighting.rssi, self.tuning)
        if self._linker.hold(key, phone, now):
            return []  # the linker gives it back from take_due() once it can tell
        return self._register(key, phone, now)

    def _register(self, key: Key, phone: Phone, now: float) -> list[PresenceEvent]:
        self._by_key[key] = phone
        self._phones.add(phone)
        self._linker.add(phone)
        self.phones_seen += 1
        return self._check_level(phone, now)

    def _link(self, phone: Phone, key: Key, newer: Phone, now: float) -> list[PresenceEvent]:
        """``newer``'s identifier is ``phone``'s next one: same phone, same stay."""
        self.rotations += 1
        phone.keys.append(key)
        phone.current = key
        phone.current_first_seen = newer.first_seen
        phone.current_last_seen = newer.current_last_seen
        phone.raw_id = newer.raw_id
        for when, rssi in newer.samples:
            phone.add_sample(when, rssi, self.tuning)
        self._by_key[key] = phone
        events: list[PresenceEvent] = []
        if phone.entered and phone.raw_id is not None:
            events.append(self._event("identifier", phone, newer.first_seen, with_token=True))
        return events + self._check_level(phone, now)

    def _forget(self, phone: Phone) -> None:
        self._present.pop(phone.presence_id, None)
        for key in phone.keys:
            self._by_key.pop(key, None)
        phone.keys = []
        phone.samples = []
        self._phones.discard(phone)
        self._linker.remove(phone)
