"""Rotation linking: whether a new identifier is a known phone's next one, or a new phone.

Identifiers rotate (Bluezone at every UTC quarter-hour, GAEN with its MAC every 10–20 min,
iPhones' MACs too). A new identifier that takes over from one that just went quiet, at a similar
signal, is the same phone and the same stay. Bluezone phones all rotate together at the
boundary, so a new Bluezone ID is held just past it and paired with a phone whose ID belongs to
the previous slot; for other schemes the new identifier is held for a few seconds to see whether
the old one really stopped.

The tracker (core/presence.py) asks ``hold`` about every identifier it has not seen, registers
with ``add`` / ``remove`` the phones it knows, and at each tick takes the held identifiers that
are due (``take_due``) and asks each one's ``predecessor``. Pure: times come in as arguments.
"""

from __future__ import annotations

from appliance.core.phone import ANY_TIME, SLOT_ROTATION, Key, Phone, PresenceTuning
from appliance.protocols.bluezone_keys import SLOT_SECONDS

# How far after an identifier first appeared a quiet phone may still have been heard and count
# as having stopped before it: reports of one instant arrive in any order.
_SAME_INSTANT_S = 0.05


class RotationLinker:
    """Holds new identifiers until it can tell whether they continue a known phone."""

    def __init__(self, tuning: PresenceTuning) -> None:
        self.tuning = tuning
        # What to add to the times given here for UTC: Bluezone phones rotate at UTC
        # quarter-hours. Zero for wall times; the daemon's session clock (which never steps)
        # gets the wall clock's step here once NTP has set it.
        self.utc_offset_s = 0.0
        self._held: dict[Key, Phone] = {}
        # Known phones by (rotation, scheme, protocol): a new identifier can only continue one
        # of its own kind, so rotation checks look at one group, not at every phone.
        self._groups: dict[tuple[str, str, str], set[Phone]] = {}

    # -- the phones the tracker knows ----------------------------------------------------------

    def add(self, phone: Phone) -> None:
        self._groups.setdefault(phone.group, set()).add(phone)

    def remove(self, phone: Phone) -> None:
        group = self._groups.get(phone.group)
        if group is not None:
            group.discard(phone)
            if not group:
                del self._groups[phone.group]

    def _known(self, phone: Phone) -> bool:
        return phone in self._groups.get(phone.group, ())

    # -- held identifiers ----------------------------------------------------------------------

    def held(self, key: Key) -> Phone | None:
        return self._held.get(key)

    def held_phones(self) -> list[Phone]:
        return list(self._held.values())

    def __len__(self) -> int:
        return len(self._held)

    def clear(self) -> None:
        self._held.clear()

    def hold(self, key: Key, phone: Phone, now: float) -> bool:
        """Whether ``phone``, a first report of ``key``, may continue a known phone: then it is
        held until ``take_due`` returns it. Otherwise it is a new phone at once."""
        tuning = self.tuning
        # The level is compared when the held identifier is resolved, on a median of several
        # reports; here only what cannot possibly be the same phone is left out. The new
        # phone's level is its one report so far.
        loose = 2 * tuning.rotation_rssi_tolerance_db
        level = phone.smoothed
        if phone.rotation == SLOT_ROTATION:
            candidates = [
                other
                for other in self._bluezone_predecessors(now)
                if abs(other.smoothed - level) <= loose
            ]
            if not candidates:
                return False
            phone.candidates = candidates
        elif phone.rotation == ANY_TIME:
            # Hold it if any phone of its kind was heard just now at a similar level; which
            # one it may continue is decided on resolution (see ``predecessor``).
            recent = now - tuning.recent_s(phone.scheme)
            if not any(
                other.current_last_seen >= recent and abs(other.smoothed - level) <= loose
                for other in self._groups.get(phone.group, ())
            ):
                return False
        else:
            return False
        self._held[key] = phone
        return True

    def take_due(self, now: float) -> list[tuple[Key, Phone]]:
        """The held identifiers whose time to be decided has come, no longer held."""
        if not self._held:
            return []
        due = [(key, held) for key, held in self._held.items() if now >= self._decision_time(held)]
        if any(held.rotation == SLOT_ROTATION for _, held in due):
            self._pair_at_boundary()
        for key, _ in due:
            del self._held[key]
        return due

    def predecessor(self, pending: Phone) -> Phone | None:
        """The known phone whose identifier ``pending``'s continues, if one went quiet as it
        appeared at a level close to its own; None: a new phone."""
        started = pending.first_seen
        tolerance = self.tuning.rotation_rssi_tolerance_db
        if pending.rotation == SLOT_ROTATION:
            boundary = self._bluezone_boundary(started)
            quiet = [
                p for p in pending.candidates if self._known(p) and self._may_precede(p, boundary)
            ]
            # Every Bluezone phone changes ID at the boundary and ``_pair_at_boundary`` has
            # paired all of a boundary's new IDs together, closest levels first: desk phones at
            # similar levels may still be paired crosswise, which leaves the last pair further
            # apart than one phone's noise. It is still a rotation, not a new phone.
            tolerance *= 2
        else:
            # A phone of its kind that was heard shortly before this identifier appeared, and
            # not since: its identifier stopped when this one started.
            recent = started - self.tuning.recent_s(pending.scheme)
            quiet = [
                p
                for p in self._groups.get(pending.group, ())
                if recent <= p.current_last_seen <= started + _SAME_INSTANT_S
            ]
        pending.candidates = []
        close = [p for p in quiet if abs(p.smoothed - pending.smoothed) <= tolerance]
        if not close:
            return None
        best = min(close, key=lambda p: abs(p.smoothed - pending.smoothed))
        if best.rotation == SLOT_ROTATION:
            best.boundary = self._bluezone_boundary(started)
        return best

    # -- Bluezone's quarter-hours --------------------------------------------------------------

    def _decision_time(self, pending: Phone) -> float:
        tuning = self.tuning
        when = pending.first_seen + tuning.confirm_s(pending.rotation, pending.scheme)
        if pending.rotation == SLOT_ROTATION:
            # Pair a boundary's new IDs only once the phones paused in the background have
            # had the chance to show theirs too: pairing with half the picture swaps phones.
            boundary = self._bluezone_boundary(pending.first_seen)
            when = max(when, boundary + tuning.bluezone_pairing_window_s)
        return when

    def _bluezone_boundary(self, now: float) -> float:
        """The quarter-hour boundary a Bluezone ID first heard at ``now`` may follow."""
        skew = self.tuning.bluezone_clock_skew_s
        utc = now + self.utc_offset_s
        return (utc + skew) // SLOT_SECONDS * SLOT_SECONDS - self.utc_offset_s

    def _bluezone_predecessors(self, now: float) -> list[Phone]:
        """Phones whose previous-slot ID a new Bluezone ID seen at ``now`` may replace."""
        boundary = self._bluezone_boundary(now)
        if now - boundary > self.tuning.bluezone_rotation_gap_s:
            return []  # far from any boundary: a new phone
        group = self._groups.get((SLOT_ROTATION, "bluezone", ""), ())
        return [other for other in group if self._may_precede(other, boundary)]

    def _may_precede(self, other: Phone, boundary: float) -> bool:
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

    def _pair_at_boundary(self) -> None:
        """Pair every held Bluezone ID with its most likely predecessor, all at once.

        Taken one by one, the first new ID to be decided could take the old phone that a later
        one fits better (desk phones sit at similar levels); pairing the closest levels first
        over all of them avoids that. Each held ID keeps only its partner as candidate.
        """
        held = [p for p in self._held.values() if p.rotation == SLOT_ROTATION]
        pairs = sorted(
            (abs(old.smoothed - new.smoothed), i, j)
            for i, new in enumerate(held)
            for j, old in enumerate(new.candidates)
            if self._known(old) and self._may_precede(old, self._bluezone_boundary(new.first_seen))
        )
        partner: dict[int, Phone] = {}
        taken: set[int] = set()
        for _diff, i, j in pairs:
            old = held[i].candidates[j]
            if i in partner or id(old) in taken:
                continue
            partner[i] = old
            taken.add(id(old))
        for i, new in enumerate(held):
            new.candidates = [partner[i]] if i in partner else []
