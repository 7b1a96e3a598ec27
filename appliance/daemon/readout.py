"""What the console shows, read for it: the daemon's status file, the beacon's, the inbox, and
the visit log (read-only: the console never takes a write lock). The console itself (an
adapter around rich) gets plain ``Snapshot``s and never touches the log.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

from appliance.config import Config
from appliance.console.snapshot import ALERT_SHOWN_DAYS, FEED_MAX, FeedRow, Snapshot
from appliance.core.days import local_day_bounds
from appliance.daemon.clocks import real_wall
from appliance.errors import StoreError
from appliance.inbox import rejected_requests, waiting_visitors, writer_problem
from appliance.status import FOREIGN, UNREADABLE, read_beacon_status, read_unit_status
from appliance.store import VisitLog

ALERTS_SHOWN = 5


def read_snapshot(config: Config, visits: VisitLog | None, now: float) -> Snapshot:
    """Everything on the screen at the wall time ``now``; without a visit log (none yet, or
    unreadable), the status and the inbox only."""
    today: dict[str, int] = {}
    feed: list[FeedRow] = []
    alerts: list[dict[str, Any]] = []
    store_error = None
    if visits is not None:
        start, end = local_day_bounds(now, config.checkpoint.timezone)
        try:
            today = visits.counts(start, end)
            feed = [
                FeedRow(row.uuid, row.kind, row.protocol, row.entered_at, row.clock_synced, token)
                for row, token in visits.recent_feed(FEED_MAX)
            ]
            alerts = visits.alerts(ALERTS_SHOWN, since=now - ALERT_SHOWN_DAYS * 86400)
        except Exception as exc:  # the daemon may be migrating, or the file was replaced
            store_error = str(exc)
    database = config.storage.database
    # Only this unit's status is shown; an unreadable or another unit's file is said as such.
    reading = read_unit_status(config, now)
    return Snapshot(
        now,
        config.checkpoint.timezone,
        config.checkpoint.agency,
        config.checkpoint.door or config.checkpoint.id,
        reading.status,
        today=today,
        feed=feed,
        alerts=alerts,
        beacon=read_beacon_status(config, now),
        waiting=waiting_visitors(database),
        rejected=rejected_requests(database),
        view_only=writer_problem(database),
        store_error=store_error,
        status_problem=reading.problem if reading.problem in (UNREADABLE, FOREIGN) else None,
    )


class ScreenReader:
    """``read_snapshot`` for a running console: opens the visit log read-only as soon as it
    can (it may not exist yet when the console starts before the daemon) and keeps it open."""

    def __init__(self, config: Config, wall: Callable[[], float] = real_wall) -> None:
        self.config = config
        self.wall = wall
        self.visits: VisitLog | None = None

    def __call__(self) -> Snapshot:
        if self.visits is None:
            try:
                self.visits = VisitLog(self.config.storage.database, readonly=True, check=False)
            except StoreError:
                self.visits = None
        return read_snapshot(self.config, self.visits, self.wall())

    def close(self) -> None:
        if self.visits is not None:
            self.visits.close()
            self.visits = None

    def __enter__(self) -> ScreenReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
