"""The receptionist's screen as a pure function of a snapshot.

``render(snapshot, language, width, height)`` returns a rich renderable that fits the screen
exactly, so tests render it to a recorded console at 80×25 and 120×40. Designed for the Linux
console's 16 colours (8 foreground colours with a 512-glyph font).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appliance.console.snapshot import Snapshot
from appliance.core.doorway import adoption_rate
from appliance.i18n import text

SIGNAL_SHOWN_S = 6.0  # how long "greeting…" / "prompting…" stays on screen
MAX_ALERT_LINES = 4
SHORT_TOKEN = 8  # hex digits of a token shown: enough to tell entries apart, nothing more
HEALTH_PARTS = ("scanner", "beacon", "sync", "clock", "disk")  # always shown, in this order


def _state_of(part: str, info: dict[str, Any]) -> str:
    if part == "clock":
        return "ok" if info.get("synchronized", True) else "unsynchronised"
    return str(info.get("state", "ok"))


_STATE_STYLE = {"ok": "green", "off": "white", "starting": "yellow", "offline": "yellow",
                "unknown": "white"}  # fmt: skip


def _health(snap: Snapshot, lang: str, width: int) -> Text:
    """``Bluetooth: ok  Beacon: off  …``, broken between parts, never inside one."""
    line = Text()
    health = dict((snap.status or {}).get("health", {}))
    health["beacon"] = snap.beacon
    parts = [*HEALTH_PARTS] + [
        p
        for p, info in health.items()
        if p not in HEALTH_PARTS and _state_of(p, info) not in ("ok", "off")
    ]
    running = bool(snap.status and snap.status.get("running"))
    column = 0
    for part in parts:
        info = health.get(part, {"state": "off"})
        # A stopped daemon's last words are stale: only the beacon (its own process) is known.
        state = _state_of(part, info) if running or part == "beacon" else "unknown"
        item = Text(f"{text(part, lang)}: ", style="white")
        item.append(text(state, lang), style=_STATE_STYLE.get(state, "bold red"))
        if column and column + 2 + item.cell_len > width:
            line.append("\n")
            column = 0
        elif column:
            line.append("  ")
            column += 2
        line.append_text(item)
        column += item.cell_len
    return line


def _dict(value: Any) -> dict[str, Any]:
    """What a status or alert file says is a table, if it is one (files are not trusted)."""
    return value if isinstance(value, dict) else {}


def _when(value: Any, zone: ZoneInfo) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return moment.astimezone(zone).strftime("%H:%M %d/%m")
    except (ValueError, OverflowError):
        return str(value)[:20]


def _clock(value: Any, zone: ZoneInfo) -> str | None:
    """HH:MM of a UNIX time from a file, or None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, zone).strftime("%H:%M")
    except (ValueError, OverflowError, OSError):
        return None


def _clock_fault(clock: dict[str, Any], lang: str) -> Text | None:
    if _state_of("clock", clock) == "ok":
        return None
    waiting = clock.get("awaiting_correction")
    if isinstance(waiting, int) and not isinstance(waiting, bool) and waiting > 0:
        return Text(text("fault_clock_waiting", lang).format(n=waiting), style="yellow")
    return Text(text("fault_clock", lang), style="yellow")


def _sync_fault(sync: dict[str, Any], lang: str) -> Text | None:
    sync_state = _state_of("sync", sync)
    if sync_state == "unauthorised":
        return Text(text("fault_sync_auth", lang), style="bold red")
    if sync_state == "tls":
        return Text(text("fault_sync_tls", lang), style="bold red")
    if sync_state in ("offline", "error") and sync.get("backlog"):
        message = text("fault_sync_offline", lang).format(n=sync["backlog"])
        return Text(message, style="yellow")
    return None


def _count(value: Any) -> int:
    """A count from the status file (not trusted): 0 unless it is a whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _disk_full(store: dict[str, Any], lang: str) -> Text:
    """The daemon in degraded mode: how much it holds in memory, and what it had to drop."""
    held, dropped = _count(store.get("pending")), _count(store.get("dropped"))
    if dropped:
        message = text("fault_disk_dropped", lang).format(n=held, dropped=dropped)
        return Text(message, style="bold white on red")
    return Text(text("fault_disk_full", lang).format(n=held), style="bold red")


def _daemon_faults(
    status: dict[str, Any] | None, lang: str, problem: str | None = None
) -> list[Text]:
    """What the daemon's health says is wrong, each with the action to take."""
    if problem is not None:  # a status is there, but not one to show
        return [Text(text(f"fault_status_{problem}", lang), style="bold white on red")]
    if status is None or not status.get("running"):
        return [Text(text("fault_daemon", lang), style="bold white on red")]
    lines: list[Text | None] = []
    health = status.get("health", {})
    scanner = _state_of("scanner", health.get("scanner", {}))
    if scanner not in ("ok", "starting"):
        message = text("fault_scanner", lang).format(state=text(scanner, lang))
        lines.append(Text(message, style="bold red"))
    store = health.get("store", {})
    store_state = _state_of("store", store)
    if store_state == "full":
        lines.append(_disk_full(store, lang))
    elif store_state != "ok":
        message = store.get("message") or text("error", lang)
        lines.append(Text(text("fault_store", lang).format(message=message), style="bold red"))
    if store_state != "full" and _state_of("disk", health.get("disk", {})) not in ("ok", "off"):
        lines.append(Text(text("fault_disk", lang), style="bold red"))
    lines.append(_clock_fault(health.get("clock", {}), lang))
    if _state_of("gpio", health.get("gpio", {})) == "error":
        lines.append(Text(text("fault_gpio", lang), style="bold red"))
    lines.append(_sync_fault(health.get("sync", {}), lang))
    return [line for line in lines if line is not None]


def _console_faults(snap: Snapshot, lang: str) -> list[Text]:
    """What the console itself sees: that it cannot reach the daemon's inbox, the beacon, the
    visit log, refused requests."""
    lines: list[Text] = []
    if snap.view_only is not None:
        user, group = snap.view_only
        message = text("fault_view_only", lang).format(user=user, group=group)
        lines.append(Text(message, style="bold red"))
    if snap.beacon.get("state") in ("error", "stopped"):
        lines.append(Text(text("fault_beacon", lang), style="yellow"))
    if snap.store_error:
        message = text("fault_store", lang).format(message=snap.store_error)
        lines.append(Text(message, style="bold red"))
    if snap.rejected:
        message = text("fault_rejected", lang).format(n=snap.rejected)
        lines.append(Text(message, style="bold red"))
    return lines


def _exposure(alert: dict[str, Any], lang: str, zone: ZoneInfo) -> Text:
    details = _dict(alert.get("details"))
    visits = [v for v in details.get("visits") or [] if isinstance(v, dict)]
    times = ", ".join(_when(v.get("entered_at"), zone) for v in visits[:3] if v.get("entered_at"))
    message = text("alert_exposure", lang).format(when=times or "?")
    return Text(message, style="bold white on red")


def _alerts(snap: Snapshot, lang: str, zone: ZoneInfo) -> list[Text]:
    """Exposure alerts (newest first, above every fault), faults with the action to take,
    then the collector's other alerts; at most MAX_ALERT_LINES lines."""
    exposures: list[Text] = []
    others: list[Text] = []
    for alert in snap.alerts:
        if alert.get("kind") == "exposure":
            exposures.append(_exposure(alert, lang, zone))
        else:
            message = text("alert_other", lang).format(kind=alert.get("kind"))
            others.append(Text(message, style="yellow"))
    daemon = _daemon_faults(snap.status, lang, snap.status_problem)
    lines = exposures + daemon + _console_faults(snap, lang) + others
    if len(lines) > MAX_ALERT_LINES:
        hidden = len(lines) - (MAX_ALERT_LINES - 1)
        lines = lines[: MAX_ALERT_LINES - 1]
        lines.append(Text(text("more_alerts", lang).format(n=hidden), style="yellow"))
    return lines


def _activity(snap: Snapshot, lang: str, zone: ZoneInfo) -> Text:
    status = snap.status or {}
    running = bool(status.get("running"))
    doing, style = text("idle", lang), "white"
    signal = _dict(status.get("last_signal"))
    at, now = signal.get("at"), status.get("now", 0)
    if (
        running
        and isinstance(at, int | float)
        and isinstance(now, int | float)
        and now - at < SIGNAL_SHOWN_S
        and signal.get("intent") in ("greet", "prompt")
    ):
        doing = text(signal["intent"], lang)
        style = "bold green" if signal["intent"] == "greet" else "bold red"
    line = Text(doing, style=style)
    if not running:  # the rest would be the stopped daemon's last words
        if snap.waiting:
            message = text("waiting_inbox", lang).format(n=snap.waiting)
            line.append("   ·   " + message, style="yellow")
        return line
    line.append(f"   ·   {text('near', lang)}: {status.get('present', 0)}", style="white")
    door = _dict(status.get("door"))
    gpio = _dict(_dict(status.get("health")).get("gpio"))
    until = _clock(door.get("muted_until"), zone)
    if until is not None:
        line.append("   ·   " + text("muted_until", lang).format(time=until), style="yellow")
    elif gpio.get("muted"):
        line.append("   ·   " + text("muted", lang), style="yellow")
    if door.get("quiet_hours") or gpio.get("quiet_hours"):
        line.append("   ·   " + text("quiet_hours", lang), style="yellow")
    if snap.waiting:
        line.append("   ·   " + text("waiting_inbox", lang).format(n=snap.waiting), style="yellow")
    return line


def _lines(renderable: RenderableType, width: int) -> int:
    console = Console(width=width, color_system=None, force_terminal=False)
    return len(console.render_lines(renderable, console.options, pad=False))


def render(snap: Snapshot, lang: str = "vi", width: int = 80, height: int = 25) -> RenderableType:
    """The whole screen, exactly ``height`` lines at ``width`` columns (the feed takes what
    the rest leaves)."""
    zone = ZoneInfo(snap.timezone)
    local_now = datetime.fromtimestamp(snap.now, zone)
    running = bool(snap.status and snap.status.get("running"))

    header = Table.grid(expand=True)
    header.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    header.add_column(justify="right", no_wrap=True)
    header.add_row(
        Text(text("title", lang), style="bold"),
        Text(local_now.strftime("%d/%m/%Y %H:%M:%S"), style="bold"),
    )
    state = Text()
    if running:
        state.append(f"● {text('running', lang)}", style="bold green")
        if (snap.status or {}).get("simulated"):
            state.append(f" ({text('simulated', lang)})", style="yellow")
    else:
        stopped = "status_unknown" if snap.status_problem else "not_running"
        state.append(f" {text(stopped, lang)} ", style="bold white on red")
    header.add_row(Text(f"{snap.agency} · {snap.door}", style="cyan"), state)

    app, no_app, manual = (snap.today.get(k, 0) for k in ("app", "no_app", "manual"))
    rate = adoption_rate(snap.today)
    shown_rate = "-" if rate is None else f"{rate:.0%}"
    # Columns, not a grid: on a narrow screen a whole count moves to the next line, instead of
    # a number being wrapped away from its label.
    counts = Columns(
        [
            Text(f"{text('with_app', lang)}: {app}", style="bold green"),
            Text(f"{text('no_app', lang)}: {no_app}", style="bold red"),
            Text(f"{text('manual', lang)}: {manual}", style="bold yellow"),
            Text(f"{text('adoption', lang)}: {shown_rate}", style="bold"),
        ],
        padding=(0, 2),
    )
    top: list[RenderableType] = [
        header,
        _health(snap, lang, width),
        counts,
        _activity(snap, lang, zone),
    ]
    alerts = _alerts(snap, lang, zone)
    notice = Text(snap.notice or "", style="bold cyan", overflow="ellipsis", no_wrap=True)
    footer = Text(text("keys", lang), style="dim", overflow="ellipsis", no_wrap=True)
    fixed = sum(_lines(part, width) for part in top) + 2  # + notice and footer
    heights = [_lines(line, width) for line in alerts]
    while alerts and fixed + sum(heights) + 3 > height:  # a small screen: fewer alerts
        alerts.pop()
        heights.pop()
    top += alerts
    rows = max(0, height - fixed - sum(heights) - 3)  # the panel's borders and its header

    feed = Table(expand=True, box=None, header_style="bold", padding=(0, 1))
    feed.add_column(text("time", lang), width=11, no_wrap=True)
    feed.add_column(text("kind", lang), ratio=3, no_wrap=True, overflow="ellipsis")
    feed.add_column(text("protocol", lang), ratio=2, no_wrap=True, overflow="ellipsis")
    feed.add_column(text("token", lang), width=SHORT_TOKEN, no_wrap=True)
    kinds = {"app": ("with_app", "green"), "no_app": ("no_app", "red"),
             "manual": ("manual", "yellow")}  # fmt: skip
    for entry in snap.feed[:rows]:
        token = entry.token
        key, colour = kinds.get(entry.kind, ("manual", "white"))
        entered = datetime.fromtimestamp(entry.entered_at, zone)
        # An earlier day's entry says which day.
        today = entered.date() == local_now.date()
        when = entered.strftime("%H:%M:%S" if today else "%d/%m %H:%M")
        short = token[:SHORT_TOKEN] if token else ""
        # A time taken before the clock was synchronised, not (yet) corrected: in yellow.
        shown = Text(when, style="" if entry.clock_synced else "yellow")
        feed.add_row(shown, Text(text(key, lang), style=colour), entry.protocol or "", short)
    body: RenderableType = feed if snap.feed else Text(text("empty", lang), style="dim")
    panel_height = rows + 3 if snap.feed else max(3, rows + 3)
    panel = Panel(body, title=text("feed", lang), border_style="blue", height=panel_height)
    return Group(*top, panel, notice, footer)
