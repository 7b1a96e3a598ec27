"""What the receptionist's screen shows, as plain data: one ``Snapshot`` a second.

The console never reads the visit log itself: the feature that runs it (appliance.daemon's
``readout``) fills a snapshot from the status files, the inbox and the log (read-only), and
the screen is a pure function of it (appliance.console.screen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FEED_MAX = 40  # entries read for the feed; the screen shows what fits
ALERT_SHOWN_DAYS = 14  # an exposure alert matters for an incubation period, then goes


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One entry of the feed: nothing that identifies a visitor, only a token to tell
    entries apart (the screen shows its first digits)."""

    uuid: str
    kind: str  # app | no_app | manual
    protocol: str | None
    entered_at: float
    clock_synced: bool  # False: taken before the clock was synchronised, not yet corrected
    token: str | None = None


def _off() -> dict[str, Any]:
    return {"state": "off"}


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    timezone: str
    agency: str
    door: str
    status: dict[str, Any] | None
    today: dict[str, int] = field(default_factory=dict)
    feed: list[FeedRow] = field(default_factory=list)  # newest first
    alerts: list[dict[str, Any]] = field(default_factory=list)
    beacon: dict[str, Any] = field(default_factory=_off)
    waiting: int = 0  # visitors in the daemon's inbox, not yet recorded
    rejected: int = 0  # requests the daemon could not apply (kept in inbox/rejected/)
    # This console's user cannot write the inbox: (user, group to join); the form is off.
    view_only: tuple[str, str] | None = None
    store_error: str | None = None
    notice: str | None = None  # what the console just did ("visitor recorded")
    # Why ``status`` is None although a file is there: "unreadable" (this account may not read
    # it) or "foreign" (another unit's): neither means the daemon is not running.
    status_problem: str | None = None
