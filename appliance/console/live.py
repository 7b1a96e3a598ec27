"""The live screen, built from pure functions of a snapshot (status file + visit log).

``snapshot()`` reads; ``render(snapshot, language)`` is pure and returns a rich renderable, so
tests render it to a recorded console. The console opens the database read-only and keeps
working while the daemon is stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appliance.config import Config
from appliance.console.messages import text
from appliance.core.doorway import adoption_rate
from appliance.errors import StoreError
from appliance.status import read_status, status_path
from appliance.store import VisitLog
from appliance.store.visits import EntryRow

REFRESH_S = 1.0
FEED_ROWS = 8
SIGNAL_SHOWN_S = 6.0  # how long "greeting…" / "prompting…" stays on screen


@dataclass
class Snapshot:
    now: float
    timezone: str
    agency: str
    door: str
    status: dict[str, Any] | None
    today: dict[str, int] = field(default_factory=dict)
    recent: list[EntryRow] = field(default_factory=list)
    store_error: str | None = None


def snapshot(config: Config, store: VisitLog | None, now: float | None = None) -> Snapshot:
    from appliance.daemon import local_day_bounds

    now = time.time() if now is None else now
    status = read_status(status_path(config), now)
    snap = Snapshot(
        now,
        config.checkpoint.timezone,
        config.checkpoint.agency,
        config.checkpoint.door or config.checkpoint.id,
        status,
    )
    if store is not None:
        start, end = local_day_bounds(now, config.checkpoint.timezone)
        try:
            snap.today = store.counts(start, end)
            snap.recent = store.recent(FEED_ROWS)
        except Exception as exc:  # the daemon may be migrating or the file replaced
            snap.store_error = str(exc)
    return snap


def _health_line(snap: Snapshot, lang: str) -> Text:
    line = Text()
    status = snap.status
    if status is None or not status.get("running"):
        line.append(f" {text('not_running', lang)} ", style="bold white on red")
        return line
    line.append(f"● {text('running', lang)}", style="bold green")
    if status.get("simulated"):
        line.append(f" ({text('simulated', lang)})", style="yellow")
    for part, info in status.get("health", {}).items():
        if part == "clock":
            state = "ok" if info.get("synchronized") else "unsynchronised"
        else:
            state = info.get("state", "ok")
        style = {"ok": "green", "off": "white", "starting": "yellow", "offline": "yellow"}.get(
            state, "bold red"
        )
        label = text(str(state), lang)  # an unknown state shows as itself
        line.append(f"  {text(part, lang)}: ", style="white")
        line.append(label, style=style)
    return line


def render(snap: Snapshot, lang: str = "vi") -> RenderableType:
    zone = ZoneInfo(snap.timezone)
    local_now = datetime.fromtimestamp(snap.now, zone)
    header = Table.grid(expand=True)
    header.add_column(ratio=1)
    header.add_column(justify="right", no_wrap=True)
    header.add_row(
        Text(text("title", lang), style="bold"),
        Text(local_now.strftime("%d/%m/%Y %H:%M:%S"), style="bold"),
    )
    header.add_row(Text(f"{snap.agency} · {snap.door}", style="cyan", overflow="ellipsis"), "")

    counts = Table.grid(padding=(0, 3))
    app, no_app, manual = (snap.today.get(k, 0) for k in ("app", "no_app", "manual"))
    rate = adoption_rate(snap.today)
    counts.add_row(
        Text(f"{text('with_app', lang)}: {app}", style="bold green"),
        Text(f"{text('no_app', lang)}: {no_app}", style="bold red"),
        Text(f"{text('manual', lang)}: {manual}", style="bold yellow"),
        Text(f"{text('adoption', lang)}: {'-' if rate is None else f'{rate:.0%}'}", style="bold"),
    )

    doing = text("idle", lang)
    style = "white"
    status = snap.status or {}
    signal = status.get("last_signal")
    if status.get("running") and signal and status.get("now", 0) - signal["at"] < SIGNAL_SHOWN_S:
        doing = text(signal["intent"], lang)
        style = "bold green" if signal["intent"] == "greet" else "bold red"
    activity = Text(f"{doing}   ·   {text('near', lang)}: {status.get('present', 0)}", style=style)

    feed = Table(expand=True, box=None, header_style="bold")
    feed.add_column(text("time", lang), width=8)
    feed.add_column(text("kind", lang))
    feed.add_column(text("protocol", lang))
    kinds = {
        "app": ("with_app", "green"),
        "no_app": ("no_app", "red"),
        "manual": ("manual", "yellow"),
    }
    for row in snap.recent:
        key, colour = kinds.get(row.kind, ("manual", "white"))
        when = datetime.fromtimestamp(row.entered_at, zone).strftime("%H:%M:%S")
        feed.add_row(when, Text(text(key, lang), style=colour), row.protocol or "")
    body: list[RenderableType] = [header, _health_line(snap, lang), Text(""), counts, activity]
    title = f"{text('feed', lang)}"
    feed_panel: RenderableType = feed if snap.recent else Text(text("empty", lang), style="dim")
    body.append(Panel(feed_panel, title=title, border_style="blue"))
    if snap.store_error:
        body.append(Text(f"{text('store', lang)}: {snap.store_error}", style="bold red"))
    body.append(Text(text("quit", lang), style="dim"))
    return Group(*body)


def run_console(
    config: Config, *, once: bool = False, duration: float | None = None, lang: str | None = None
) -> int:
    language = lang or config.checkpoint.language
    console = Console()
    store: VisitLog | None = None

    def current() -> RenderableType:
        nonlocal store
        if store is None:
            try:
                store = VisitLog(config.storage.database, readonly=True, check=False)
            except StoreError:
                store = None
        return render(snapshot(config, store), language)

    try:
        if once:
            console.print(current())
            return 0
        deadline = None if duration is None else time.monotonic() + duration
        with Live(
            current(), console=console, screen=console.is_terminal, auto_refresh=False
        ) as live:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(REFRESH_S)
                live.update(current(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        if store is not None:
            store.close()
    return 0
