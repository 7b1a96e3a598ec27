"""One phone as the presence tracker knows it, and the thresholds the tracker works with.

Shared by the tracker (core/presence.py: levels, entries and exits) and by the rotation linker
(core/rotation.py: which new identifier continues which phone).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

Key = tuple[object, ...]  # (scheme, raw ID), or (protocol, MAC address) for ID-less reports

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


class Phone:
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
        self, key: Key, scheme: str, protocol: str, raw_id: bytes | None, now: float
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
        self.candidates: list[Phone] = []  # while pending: phones this may be a rotation of

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
