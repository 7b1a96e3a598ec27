"""A simulated lobby: phones, people and a door, with the ground truth of who came in.

It puts real advertising frames on an imaginary air (``appliance.protocols.frames``), so the
simulation runs through exactly the parser, decoders, tracker and doorway that real Bluetooth
feeds. Android Bluezone phones rotate their IDs at UTC quarter-hours with the app's real
derivation and, in the background, advertise 15 s on / 15 s off with a new MAC each time;
iPhones hide in Apple's overflow area; Exposure Notification phones change RPI and MAC together
every 10–20 minutes. Staff arrive in the morning and stay all day (some at the reception desk,
in range all day), visitors come and go through the door, some without the app, and passers-by
walk past outside at weak signal. A two-beam door says which way people cross.

Pure: ``events()`` is a time-ordered iterator over virtual time; the daemon paces it against
the wall clock, tests run a whole office day in seconds.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from appliance.core.days import DEFAULT_TIMEZONE
from appliance.models import SensorEvent, Sighting
from appliance.protocols import bluezone_keys, frames, gaen_keys

OUT_OF_RANGE_DBM = -100.0  # below what a Pi hears: the phone is silent
DOOR_DBM = -60.0  # a phone in a pocket passing the door
APPROACH_S = 25.0  # walking up to the door from where the scanner first hears the phone
ANDROID_DUTY_S = 15.0  # Bluezone in the background: 15 s on, 15 s off
IPHONE_MAC_PERIOD_S = 15 * 60.0  # iOS rotates its random address about this often
GAEN_ROTATION_S = (10 * 60.0, 20 * 60.0)
NOISE_DB = 4.0  # standard deviation of RSSI around the path

APP_KINDS = (
    # kind, share among app phones
    ("android-bg", 0.35),
    ("android-fg", 0.10),
    ("android-307", 0.10),  # also sends the Bluezone iBeacon
    ("iphone-bg", 0.15),
    ("iphone-fg", 0.05),
    ("gaen-android", 0.15),
    ("gaen-iphone", 0.10),
)
PROTOCOL_OF_KIND = {
    "android-bg": "bluezone",
    "android-fg": "bluezone",
    "android-307": "bluezone",
    "iphone-bg": "bluezone-ios",
    "iphone-fg": "bluezone-ios",
    "gaen-android": "gaen",
    "gaen-iphone": "gaen",
}


@dataclass(frozen=True)
class LobbyScenario:
    """An office day. Times are local hours of ``day`` in ``timezone``."""

    day: date = date(2020, 8, 20)
    timezone: str = DEFAULT_TIMEZONE
    opens_h: float = 7.5
    closes_h: float = 17.0
    visitors: int = 300
    staff: int = 40
    reception_staff: int = 4  # of the staff: at the desk by the door, in range all day
    no_app_share: float = 0.30  # of visitors
    passers_by: int = 400
    report_interval_s: float = 1.0  # how often the scanner hears a phone, on average
    gaen_report_interval_s: float = 0.5  # GAEN advertises every ~250 ms
    staff_arrival_min: tuple[float, float] = (-45.0, 30.0)  # around opening time
    visitors_from_s: float = 600.0  # after opening
    seed: int = 1

    def local_time(self, hours: float) -> float:
        midnight = datetime(
            self.day.year, self.day.month, self.day.day, tzinfo=ZoneInfo(self.timezone)
        )
        return midnight.timestamp() + hours * 3600


@dataclass(frozen=True, slots=True)
class TruthEntry:
    time: float
    kind: str  # "app" | "no_app"
    person: int
    role: str  # "staff" | "visitor"
    protocol: str | None


@dataclass
class GroundTruth:
    entries: list[TruthEntry] = field(default_factory=list)
    exits: int = 0
    # person → every (scheme, raw ID) their phone sent while in range (memory only)
    identifiers: dict[int, set[tuple[str, bytes]]] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)

    def count(self, kind: str, role: str | None = None) -> int:
        return sum(1 for e in self.entries if e.kind == kind and (role is None or e.role == role))


@dataclass
class _Segment:
    start: float
    end: float
    rssi_start: float
    rssi_end: float

    def rssi(self, t: float) -> float:
        if self.end <= self.start:
            return self.rssi_start
        return self.rssi_start + (self.rssi_end - self.rssi_start) * (t - self.start) / (
            self.end - self.start
        )


class _Phone:
    """One phone's advertising behaviour: what it sends at a given moment, from which MAC."""

    def __init__(self, kind: str, rng: random.Random, day: date) -> None:
        self.kind = kind
        self.rng = rng
        self.base_key = rng.randbytes(32)
        self.base_day = day
        self.tek = rng.randbytes(16)
        self.duty_phase = rng.uniform(0, 2 * ANDROID_DUTY_S)
        self.mac_epoch = -1
        self.mac = self._new_mac()
        self.next_gaen_rotation = -1.0
        self.rpi = b""
        self.sent: set[tuple[str, bytes]] = set()
        self._day_ids: dict[date, list[bytes]] = {}
        self.nearby_status = rng.randrange(256)

    def _new_mac(self) -> str:
        octets = self.rng.randbytes(6)
        first = (octets[0] & 0x3F) | 0x40  # resolvable private address, as phones use
        return ":".join(f"{b:02X}" for b in bytes([first]) + octets[1:])

    def interval(self, scenario: LobbyScenario) -> float:
        if self.kind.startswith("gaen"):
            return scenario.gaen_report_interval_s
        return scenario.report_interval_s

    def on_air(self, t: float) -> bool:
        if self.kind in ("android-bg", "android-307"):
            return (t - self.duty_phase) % (2 * ANDROID_DUTY_S) < ANDROID_DUTY_S
        return True

    def _bluezone_id(self, t: float) -> bytes:
        when = datetime.fromtimestamp(t, UTC)
        day = when.date()
        ids = self._day_ids.get(day)
        if ids is None:
            key = bluezone_keys.daily_key(self.base_key, (day - self.base_day).days % 30)
            ids = self._day_ids[day] = bluezone_keys.day_ids(key)
        return ids[bluezone_keys.slot_of(when)]

    def frame(self, t: float) -> tuple[str, bytes]:
        """(MAC, advertising data) sent at time ``t``."""
        if self.kind.startswith("android"):
            return self._android_frame(t)
        if self.kind.startswith("iphone"):
            return self._iphone_frame(t)
        if self.kind.startswith("gaen"):
            return self._gaen_frame(t)
        # No app: an iPhone's Continuity messages, or an Android's Fast Pair / nothing useful.
        if self.kind == "plain-iphone":
            return self.mac, frames.apple_nearby_info(self.nearby_status)
        return self.mac, frames.flags() + frames.uuid16_list(0xFE2C) + frames.service_data16(
            0xFE2C, b"\x00\xb7\x27"
        )

    def _android_frame(self, t: float) -> tuple[str, bytes]:
        kind = self.kind
        # A new MAC whenever advertising restarts: each duty cycle, or every 15 min.
        epoch = (
            int((t - self.duty_phase) // (2 * ANDROID_DUTY_S))
            if kind != "android-fg"
            else int(t // IPHONE_MAC_PERIOD_S)
        )
        if epoch != self.mac_epoch:
            self.mac_epoch, self.mac = epoch, self._new_mac()
        if kind == "android-307" and self.rng.random() < 0.3:
            return self.mac, frames.bluezone_beacon()
        raw = self._bluezone_id(t)
        self.sent.add(("bluezone", raw))
        return self.mac, frames.bluezone_android(raw)

    def _iphone_frame(self, t: float) -> tuple[str, bytes]:
        epoch = int((t + self.duty_phase * 20) // IPHONE_MAC_PERIOD_S)
        if epoch != self.mac_epoch:
            self.mac_epoch, self.mac = epoch, self._new_mac()
        if self.rng.random() < 0.4:  # the iPhone's own Continuity chatter
            return self.mac, frames.apple_nearby_info(self.nearby_status)
        if self.kind == "iphone-fg":
            return self.mac, frames.bluezone_ios_foreground()
        return self.mac, frames.bluezone_ios_background()

    def _gaen_frame(self, t: float) -> tuple[str, bytes]:
        if t >= self.next_gaen_rotation:
            self.next_gaen_rotation = t + self.rng.uniform(*GAEN_ROTATION_S)
            self.mac = self._new_mac()
            self.rpi = gaen_keys.rpis(
                self.tek, gaen_keys.interval_of(datetime.fromtimestamp(t, UTC)), 1
            )[0]
        self.sent.add(("gaen", self.rpi))
        if self.kind == "gaen-iphone" and self.rng.random() < 0.3:
            return self.mac, frames.apple_nearby_info(self.nearby_status)
        return self.mac, frames.gaen(self.rpi)


class Lobby:
    """Generates one office day of sightings and door crossings, and knows the truth."""

    def __init__(self, scenario: LobbyScenario | None = None) -> None:
        self.scenario = scenario or LobbyScenario()
        self.truth = GroundTruth()
        self._plans: list[tuple[int, _Phone | None, list[_Segment], list[SensorEvent]]] = []
        self._plan()

    @property
    def start(self) -> float:
        return min(seg.start for _, _, segs, _ in self._plans for seg in segs) - 1

    @property
    def end(self) -> float:
        return max(seg.end for _, _, segs, _ in self._plans for seg in segs) + 1

    def _app_kind(self, rng: random.Random) -> str:
        r = rng.random()
        for kind, share in APP_KINDS:
            r -= share
            if r <= 0:
                return kind
        return APP_KINDS[-1][0]

    def _plan(self) -> None:
        sc = self.scenario
        rng = random.Random(sc.seed)
        opens, closes = sc.local_time(sc.opens_h), sc.local_time(sc.closes_h)
        person = 0

        def door_path(
            t_in: float, t_out: float, desk_dbm: float | None, dwell: float
        ) -> list[_Segment]:
            level = DOOR_DBM + rng.uniform(-4, 4)
            path = [_Segment(t_in - APPROACH_S, t_in, -97.0, level)]
            if desk_dbm is not None:  # stays in range near the door until leaving
                path.append(_Segment(t_in, t_out - 10, desk_dbm, desk_dbm))
                path.append(_Segment(t_out - 10, t_out, desk_dbm, level))
            else:
                path.append(_Segment(t_in, t_in + dwell, level, level - 3))
                path.append(_Segment(t_in + dwell, t_in + dwell + 12, level - 3, -98.0))
                path.append(_Segment(t_out - 12, t_out, -98.0, level))
            path.append(_Segment(t_out, t_out + 15, level, -98.0))
            return path

        def add(
            role: str, has_app: bool, t_in: float, t_out: float, desk: float | None, dwell: float
        ) -> None:
            nonlocal person
            person += 1
            kind = self._app_kind(rng) if has_app else rng.choice(["plain-iphone", "plain-android"])
            phone = _Phone(kind, random.Random(rng.random()), sc.day)
            crossings = [SensorEvent(t_in, "in"), SensorEvent(t_out, "out")]
            self._plans.append((person, phone, door_path(t_in, t_out, desk, dwell), crossings))
            self.truth.roles[person] = role
            self.truth.entries.append(
                TruthEntry(
                    t_in, "app" if has_app else "no_app", person, role, PROTOCOL_OF_KIND.get(kind)
                )
            )
            self.truth.exits += 1

        for i in range(sc.staff):
            t_in = opens + rng.uniform(*sc.staff_arrival_min) * 60
            t_out = closes + rng.uniform(-30, 45) * 60
            desk = -58.0 + rng.uniform(-5, 5) if i < sc.reception_staff else None
            add("staff", True, t_in, t_out, desk, rng.uniform(20, 90))
        for _ in range(sc.visitors):
            t_in = rng.uniform(opens + sc.visitors_from_s, closes - 1800)
            t_out = t_in + rng.uniform(10, 90) * 60
            add("visitor", rng.random() >= sc.no_app_share, t_in, t_out, None, rng.uniform(30, 300))
        for _ in range(sc.passers_by):
            person += 1
            t = rng.uniform(opens, closes)
            peak = rng.uniform(-92, -84)
            kind = self._app_kind(rng) if rng.random() < 0.6 else "plain-iphone"
            phone = _Phone(kind, random.Random(rng.random()), sc.day)
            walk = rng.uniform(20, 40)
            path = [
                _Segment(t, t + walk / 2, -99.0, peak),
                _Segment(t + walk / 2, t + walk, peak, -99.0),
            ]
            self._plans.append((person, phone, path, []))
            self.truth.roles[person] = "passer-by"
        self._plans.sort(key=lambda plan: plan[2][0].start)

    def _person_events(
        self,
        person: int,
        phone: _Phone | None,
        path: list[_Segment],
        crossings: list[SensorEvent],
        rng: random.Random,
    ) -> Iterator[tuple[float, int, Sighting | SensorEvent]]:
        pending = list(crossings)
        sequence = 0
        t = path[0].start
        for segment in path:
            t = max(t, segment.start)
            if phone is None:
                continue
            interval = phone.interval(self.scenario)
            while t < segment.end:
                t += interval * rng.uniform(0.5, 1.5)
                while pending and pending[0].time <= t:
                    crossing = pending.pop(0)
                    yield crossing.time, -1, crossing
                mean = segment.rssi(min(t, segment.end))
                if mean <= OUT_OF_RANGE_DBM + 2 or not phone.on_air(t):
                    continue
                rssi = mean + rng.gauss(0, NOISE_DB)
                if rssi < -100:
                    continue  # below the receiver's sensitivity: not heard
                mac, data = phone.frame(t)
                sequence += 1
                yield t, person, Sighting(t, mac, max(-100, min(-20, round(rssi))), data)
        for crossing in pending:
            yield crossing.time, -1, crossing
        if phone is not None and phone.sent:
            self.truth.identifiers.setdefault(person, set()).update(phone.sent)

    def events(self) -> Iterator[Sighting | SensorEvent]:
        """Every sighting and door crossing of the day, in time order."""
        rng = random.Random(self.scenario.seed + 1)
        streams = [
            self._person_events(person, phone, path, crossings, random.Random(rng.random()))
            for person, phone, path, crossings in self._plans
        ]
        for _t, _person, event in heapq.merge(*streams, key=lambda item: item[0]):
            yield event


def busy_scenario(start: float, hours: float = 2.0, seed: int = 7) -> LobbyScenario:
    """A lively lobby starting at ``start`` (UNIX seconds) for the demo: people every minute."""
    local = datetime.fromtimestamp(start, ZoneInfo(DEFAULT_TIMEZONE))
    opens = local.hour + local.minute / 60 + local.second / 3600
    return LobbyScenario(
        day=local.date(),
        opens_h=opens,
        closes_h=opens + hours + 0.5,
        visitors=max(10, math.ceil(hours * 50)),
        staff=6,
        reception_staff=2,
        staff_arrival_min=(0.05, 10.0),
        visitors_from_s=5.0,
        passers_by=int(hours * 60),
        seed=seed,
    )
