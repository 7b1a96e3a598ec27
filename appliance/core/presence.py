"""Presence tracking: which app phones are near the door, from a stream of noisy sightings.

Pure and synchronous: ``observe(sighting, detection)`` and ``tick(now)`` take the time from
their arguments and return ``PresenceEvent``s; nothing sleeps, reads a clock or does I/O.

- RSSI is smoothed with a short windowed median; a phone *enters* when the smoothed signal
  reaches ``entry_rssi_dbm`` and *leaves* when it falls below the weaker ``exit_rssi_dbm``
  (hysteresis) or when it has been silent longer than the apps' advertising gaps.
- Identifiers rotate (Bluezone at every UTC quarter-hour, GAEN with its MAC every 10–20 min,
  iPhones' MACs too). A new identifier that takes over from one that just went quiet, at a
  similar signal, is the same phone and the same stay, so a staff phone at the reception desk
  all day is one presence, not 96. Bluezone phones all rotate together at the boundary, so a
  new Bluezone ID is linked at once to a phone whose ID belongs to the previous slot; for other
  schemes the new identifier is held for a few seconds to see whether the old one really stopped.
- A phone that is gone is forgotten entirely: its identifiers leave memory with it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

from appliance.models import Detection, PresenceEvent, Sighting
from appliance.protocols.bluezone_keys import SLOT_SECONDS

# "Still near the door": heard within the last few seconds (longer than one Android background
# pause would be too long to tell someone leaving), well above the exit level.
STILL_NEAR_S = 16.0
STILL_NEAR_MARGIN_DB = 6.0

# Reports that only corroborate a phone that also advertises its ID (Android Bluezone ≥ 3.0.7
# sends a plain iBeacon beside its own advertisement, often from another MAC): counting them
# would count that phone twice.
CORROBORATING = frozenset({"bluezone-beacon"})

Tokenize = Callable[[str, bytes, float], str]

# How a phone's identifier changes, which decides how a new identifier may be linked to it.
SLOT_ROTATION = "slot"  # Bluezone IDs: all phones at once, at every UTC quarter-hour
STATIC = "static"  # Bluezone v1 IDs never change
ANY_TIME = "any-time"  # GAEN RPIs and MAC-keyed reports: whenever the phone decides


def rotation_of(scheme: str, raw_id: bytes | None) -> str:
    if raw_id is None:
        return ANY_TIME  # keyed by a MAC address, which rotates on its own schedule
    if scheme == "bluezone":
        return SLOT_ROTATION
    if scheme == "bluezone-legacy":
        return STATIC
    return ANY_TIME


@dataclass(frozen=True, slots=True)
class PresenceTuning:
    """Every threshold of the tracker, with the reason for its value."""

    # A phone in a visitor's pocket at the door reads about -55 to -70 dBm on a Pi's antenna;
    # passers-by on the pavement outside read -85 and weaker.
    entry_rssi_dbm: float = -72.0
    # Hysteresis: leave only well below the entry level, so a phone hovering near the
    # threshold does not enter and leave over and over.
    exit_rssi_dbm: float = -84.0
    # Longer than Android Bluezone's background pause (15 s off) plus lost reports.
    absence_timeout_s: float = 40.0
    # Windowed median: kills single multipath spikes while following a walk within seconds.
    smoothing_samples: int = 5
    smoothing_max_age_s: float = 30.0
    # Two reports at the entry level before a phone counts, so one spike cannot greet a
    # passer-by; phones report several times a second, so this costs well under a second.
    entry_min_samples: int = 2
    # A rotated identifier comes back at about the same level (the phone did not move).
    rotation_rssi_tolerance_db: float = 12.0
    # Bluezone: the old ID may have been heard up to one Android background pause before the
    # boundary, and the new one up to one pause after it; phone clocks drift a few seconds.
    bluezone_rotation_gap_s: float = 40.0
    bluezone_clock_skew_s: float = 20.0
    # An ID first heard this shortly before a boundary may already be a fast-clocked phone's
    # next ID, so it is not taken as an old one. Phones keep network time within a second or
    # two; a visitor who just walked up keeps their old ID for the rotation check.
    bluezone_early_rotation_s: float = 2.0
    # A new Bluezone ID just after a boundary is held this long, so that its level is a
    # median of several reports rather than one noisy sample when it is compared.
    bluezone_confirm_s: float = 3.0
    # …and new IDs that appear just after a boundary are paired together once this long has
    # passed since it: one Android background pause (15 s) and a little more.
    bluezone_pairing_window_s: float = 17.0
    # Other schemes rotate at any moment: hold a new identifier for a while and link it only if
    # a candidate's identifier has gone quiet meanwhile. GAEN advertises every ~250 ms, so a
    # couple of seconds of silence is telling; iPhones in the background and ID-less reports
    # (keyed by a MAC that rotates too) are heard far less often and need longer.
    gaen_confirm_s: float = 2.5
    gaen_recent_s: float = 8.0  # how recently a candidate's old identifier must have been heard
    other_confirm_s: float = 8.0
    other_recent_s: float = 15.0

    def confirm_s(self, rotation: str, scheme: str) -> float:
        if rotation == SLOT_ROTATION:
            return self.bluezone_confirm_s
        return self.gaen_confirm_s if scheme == "gaen" else self.other_confirm_s

    def recent_s(self, scheme: str) -> float:
        return self.gaen_recent_s if scheme == "gaen" else self.other_recent_s


class _Phone:
    """One physical phone as far as we can tell, across its identifier rotations."""

    __slots__ = (
        "boundary",
        "candidates",
        "current",
        "current_first_seen",
        "current_last_seen",
        "entered",
        "first_seen",
        "group",
        "keys",
        "last_seen",
        "presence_id",
        "protocol",
        "raw_id",
        "rotation",
        "samples",
        "scheme",
        "smoothed",
        "strong",
    )

    def __init__(
        self, key: tuple[object, ...], scheme: str, protocol: str, raw_id: bytes | None, now: float
    ) -> None:
        self.keys = [key]
        self.current = key
        self.current_first_seen = now
        self.current_last_seen = now
        self.scheme = scheme
        self.protocol = protocol
        self.raw_id = raw_id
        self.rotation = rotation_of(scheme, raw_id)
        # Bluezone IDs read over GATT from iPhones rotate with Android ones: one group.
        self.group = (self.rotation, scheme, "" if self.rotation == SLOT_ROTATION else protocol)
        self.samples: list[tuple[float, int]] = []
        self.smoothed = -127.0
        self.strong = 0  # samples at or above the entry level in the current window
        self.first_seen = now
        self.last_seen = now
        self.entered = False
        self.presence_id = 0
        self.boundary = -1.0  # the Bluezone boundary at which it last rotated
        self.candidates: list[_Phone] = []  # while pending: phones this may be a rotation of

    def add_sample(self, now: float, rssi: int, tuning: PresenceTuning) -> None:
        # The hot path of the whole pipeline (once per app report): kept to a few list ops.
        samples = self.samples
        samples.append((now, rssi))
        if len(samples) > tuning.smoothing_samples:
            del samples[0]
        horizon = now - tuning.smoothing_max_age_s
        while samples[0][0] < horizon:
            del samples[0]
        values = sorted([r for _, r in samples])
        n = len(values)
        half = n >> 1
        self.smoothed = values[half] if n & 1 else (values[half - 1] + values[half]) / 2
        self.strong = n - bisect_left(values, tuning.entry_rssi_dbm)
        self.last_seen = now


class PresenceTracker:
    """Turns (sighting, detection) pairs into enter / identifier / leave events."""

    def __init__(
        self, tokenize: Tokenize | None = None, tuning: PresenceTuning | None = None
    ) -> None:
        self.tuning = tuning or PresenceTuning()
        self._tokenize = tokenize
        # What to add to the times given here for UTC: Bluezone phones rotate at UTC
        # quarter-hours. Zero for wall times; the daemon's session clock (which never steps)
        # gets the wall clock's step here once NTP has set it.
        self.utc_offset_s = 0.0
        self._by_key: dict[tuple[object, ...], _Phone] = {}
        self._pending: dict[tuple[object, ...], _Phone] = {}
        self._phones: set[_Phone] = set()
        # Phones by (rotation, scheme, protocol): a new identifier can only continue one of
        # its own kind, so rotation checks look at one group, not at every phone.
        self._groups: dict[tuple[str, str, str], set[_Phone]] = {}
        self._present: dict[int, _Phone] = {}  # presence id → phone, while near the door
        self._ids = count(1)
        self.rotations = 0
        self.phones_seen = 0  # distinct app phones heard, near or not (rotations not counted)
        self.ignored_corroborating = 0

    # -- queries -------------------------------------------------------------------------------

    @property
    def tracked(self) -> int:
        """Phones in memory (near or not), pending identifiers included."""
        return len(self._phones) + len(self._pending)

    @property
    def present(self) -> int:
        """Phones currently near the door."""
        return len(self._present)

    @property
    def known_identifiers(self) -> int:
        return len(self._by_key) + len(self._pending)

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
        return any(p.smoothed >= level for p in self._pending.values())

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
        key: tuple[object, ...] = (
            (scheme, raw_id) if raw_id is not None else (protocol, sighting.address)
        )

        phone = self._by_key.get(key)
        if phone is not None:
            if phone.current == key:
                phone.current_last_seen = now
            phone.add_sample(now, sighting.rssi, self.tuning)
            return self._check_level(phone, now)

        pending = self._pending.get(key)
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
        phone = self._by_key.get(key) or self._pending.get(key)
        if phone is None or phone.raw_id == raw_id:
            return []
        phone.raw_id = raw_id
        if phone.entered:
            return [self._event("identifier", phone, now, with_token=True)]
        return []

    def tick(self, now: float) -> list[PresenceEvent]:
        """Resolve held identifiers and end phones that went silent."""
        events: list[PresenceEvent] = []
        tuning = self.tuning
        if self._pending:
            ready = [
                (key, pending)
                for key, pending in self._pending.items()
                if now >= self._decision_time(pending)
            ]
            if any(pending.rotation == SLOT_ROTATION for _, pending in ready):
                self._pair_at_boundary(now)
            for key, pending in ready:
                del self._pending[key]
                events += self._resolve(key, pending, now)
        horizon = now - tuning.absence_timeout_s
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
        self._pending.clear()
        return events

    # -- internals -----------------------------------------------------------------------------

    def _event(
        self, kind: str, phone: _Phone, when: float, with_token: bool = False
    ) -> PresenceEvent:
        token = None
        if with_token and phone.raw_id is not None and self._tokenize is not None:
            token = self._tokenize(phone.scheme, phone.raw_id, when)
        return PresenceEvent(kind, phone.presence_id, when, phone.protocol, token, phone.smoothed)

    def _check_level(self, phone: _Phone, now: float) -> list[PresenceEvent]:
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
        key: tuple[object, ...],
        scheme: str,
        protocol: str,
        raw_id: bytes | None,
        sighting: Sighting,
        now: float,
    ) -> list[PresenceEvent]:
        tuning = self.tuning
        rssi = sighting.rssi
        phone = _Phone(key, scheme, protocol, raw_id, now)
        phone.add_sample(now, rssi, tuning)
        # The level is compared when the held identifier is resolved, on a median of several
        # reports; here only what cannot possibly be the same phone is left out.
        loose = 2 * tuning.rotation_rssi_tolerance_db
        if phone.rotation == SLOT_ROTATION:
            candidates = [
                other
                for other in self._bluezone_predecessors(now)
                if abs(other.smoothed - rssi) <= loose
            ]
            if candidates:
                phone.candidates = candidates
                self._pending[key] = phone
                return []
        elif phone.rotation == ANY_TIME:
            # Hold it if any phone of its kind was heard just now at a similar level; which
            # one it may continue is decided on resolution (see ``_resolve``).
            recent = now - tuning.recent_s(scheme)
            if any(
                other.current_last_seen >= recent and abs(other.smoothed - rssi) <= loose
                for other in self._groups.get(phone.group, ())
            ):
                self._pending[key] = phone
                return []
        return self._register(key, phone, now)

    def _bluezone_boundary(self, now: float) -> float:
        """The quarter-hour boundary a Bluezone ID first heard at ``now`` may follow."""
        skew = self.tuning.bluezone_clock_skew_s
        utc = now + self.utc_offset_s
        return (utc + skew) // SLOT_SECONDS * SLOT_SECONDS - self.utc_offset_s

    def _bluezone_predecessors(self, now: float) -> list[_Phone]:
        """Phones whose previous-slot ID a new Bluezone ID seen at ``now`` may replace."""
        tuning = self.tuning
        boundary = self._bluezone_boundary(now)
        if now - boundary > tuning.bluezone_rotation_gap_s:
            return []  # far from any boundary: a new phone
        group = self._groups.get((SLOT_ROTATION, "bluezone", ""), ())
        return [other for other in group if self._may_precede(other, boundary)]

    def _may_precede(self, other: _Phone, boundary: float) -> bool:
        tuning = self.tuning
        skew = tuning.bluezone_clock_skew_s
        return (
            other.rotation == SLOT_ROTATION
            and other.boundary != boundary  # each phone rotates once per boundary
            and other.current_first_seen < boundary - tuning.bluezone_early_rotation_s
            and boundary - tuning.bluezone_rotation_gap_s - skew
            <= other.current_last_seen
            <= boundary + skew
        )

    def _resolve(self, key: tuple[object, ...], pending: _Phone, now: float) -> list[PresenceEvent]:
        """After ``confirm_s``: a rotation if a candidate's identifier went quiet meanwhile."""
        started = pending.first_seen
        if pending.rotation == SLOT_ROTATION:
            boundary = self._bluezone_boundary(started)
            quiet = [
                p
                for p in pending.candidates
                if p in self._phones and self._may_precede(p, boundary)
            ]
        else:
            # A phone of its kind that was heard shortly before this identifier appeared, and
            # not since: its identifier stopped when this one started.
            recent = started - self.tuning.recent_s(pending.scheme)
            quiet = [
                p
                for p in self._groups.get(pending.group, ())
                if recent <= p.current_last_seen <= started + 0.05
            ]
        pending.candidates = []
        tolerance = self.tuning.rotation_rssi_tolerance_db
        if pending.rotation == SLOT_ROTATION:
            # Every Bluezone phone changes ID at the boundary and ``_pair_at_boundary`` has
            # paired all of a boundary's new IDs together, closest levels first: desk phones at
            # similar levels may still be paired crosswise, which leaves the last pair further
            # apart than one phone's noise. It is still a rotation, not a new phone.
            tolerance *= 2
        close = [p for p in quiet if abs(p.smoothed - pending.smoothed) <= tolerance]
        if close:
            best = min(close, key=lambda p: abs(p.smoothed - pending.smoothed))
            if best.rotation == SLOT_ROTATION:
                best.boundary = self._bluezone_boundary(started)
            return self._link(best, key, pending, now)
        return self._register(key, pending, now)

    def _decision_time(self, pending: _Phone) -> float:
        tuning = self.tuning
        when = pending.first_seen + tuning.confirm_s(pending.rotation, pending.scheme)
        if pending.rotation == SLOT_ROTATION:
            # Pair a boundary's new IDs only once the phones paused in the background have
            # had the chance to show theirs too: pairing with half the picture swaps phones.
            boundary = self._bluezone_boundary(pending.first_seen)
            when = max(when, boundary + tuning.bluezone_pairing_window_s)
        return when

    def _pair_at_boundary(self, now: float) -> None:
        """Pair every held Bluezone ID with its most likely predecessor, all at once.

        Taken one by one, the first new ID to be decided could take the old phone that a later
        one fits better (desk phones sit at similar levels); pairing the closest levels first
        over all of them avoids that. Each held ID keeps only its partner as candidate.
        """
        held = [p for p in self._pending.values() if p.rotation == SLOT_ROTATION]
        pairs = sorted(
            (abs(old.smoothed - new.smoothed), i, j)
            for i, new in enumerate(held)
            for j, old in enumerate(new.candidates)
            if old in self._phones
            and self._may_precede(old, self._bluezone_boundary(new.first_seen))
        )
        partner: dict[int, _Phone] = {}
        taken: set[int] = set()
        for _diff, i, j in pairs:
            old = held[i].candidates[j]
            if i in partner or id(old) in taken:
                continue
            partner[i] = old
            taken.add(id(old))
        for i, new in enumerate(held):
            new.candidates = [partner[i]] if i in partner else []

    def _register(self, key: tuple[object, ...], phone: _Phone, now: float) -> list[PresenceEvent]:
        self._by_key[key] = phone
        self._phones.add(phone)
        self._groups.setdefault(phone.group, set()).add(phone)
        self.phones_seen += 1
        return self._check_level(phone, now)

    def _link(
        self, phone: _Phone, key: tuple[object, ...], newer: _Phone, now: float
    ) -> list[PresenceEvent]:
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

    def _forget(self, phone: _Phone) -> None:
        self._present.pop(phone.presence_id, None)
        for key in phone.keys:
            self._by_key.pop(key, None)
        phone.keys = []
        phone.samples = []
        self._phones.discard(phone)
        group = self._groups.get(phone.group)
        if group is not None:
            group.discard(phone)
            if not group:
                del self._groups[phone.group]
