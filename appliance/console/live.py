"""The receptionist's live screen, built from pure functions of a snapshot.

``snapshot()`` reads the daemon's status file, the beacon's, and the visit log (read-only: the
console never takes a write lock); ``render(snapshot, language, width, height)`` is pure and
returns a rich renderable that fits the screen exactly, so tests render it to a recorded
console at 80×25 and 120×40. Designed for the Linux console's 16 colours. Keys: ``n`` opens the
visitor form, ``m`` mutes the buzzer, ``q`` quits; both requests go to the daemon through its
inbox (appliance.inbox), since the daemon is the visit log's only writer.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appliance.config import Config
from appliance.core.doorway import adoption_rate
from appliance.errors import StoreError
from appliance.i18n import text
from appliance.status import read_beacon_status, read_status, status_path
from appliance.store import VisitLog
from appliance.store.visits import EntryRow

REFRESH_S = 1.0
SIGNAL_SHOWN_S = 6.0  # how long "greeting…" / "prompting…" stays on screen
NOTICE_SHOWN_S = 6.0
MAX_ALERT_LINES = 4
ALERT_SHOWN_DAYS = 14  # an exposure alert matters for an incubation period, then goes
FEED_MAX = 40
SHORT_TOKEN = 8  # hex digits of a token shown: enough to tell entries apart, nothing more
HEALTH_PARTS = ("scanner", "beacon", "sync", "clock", "disk")  # always shown, in this order


@dataclass
class Snapshot:
    now: float
    timezone: str
    agency: str
    door: str
    status: dict[str, Any] | None
    today: dict[str, int] = field(default_factory=dict)
    feed: list[tuple[EntryRow, str | None]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    beacon: dict[str, Any] = field(default_factory=lambda: {"state": "off"})
    waiting: int = 0  # visitors in the daemon's inbox, not yet recorded
    rejected: int = 0  # requests the daemon could not apply (kept in inbox/rejected/)
    store_error: str | None = None
    notice: str | None = None  # what the console just did ("visitor recorded")


def snapshot(config: Config, store: VisitLog | None, now: float | None = None) -> Snapshot:
    from appliance.core.days import local_day_bounds
    from appliance.inbox import rejected_requests, waiting_visitors

    now = time.time() if now is None else now
    snap = Snapshot(
        now,
        config.checkpoint.timezone,
        config.checkpoint.agency,
        config.checkpoint.door or config.checkpoint.id,
        read_status(status_path(config), now),
        beacon=read_beacon_status(config, now),
        waiting=waiting_visitors(config.storage.database),
        rejected=rejected_requests(config.storage.database),
    )
    if store is not None:
        start, end = local_day_bounds(now, config.checkpoint.timezone)
        try:
            snap.today = store.counts(start, end)
            snap.feed = store.recent_feed(FEED_MAX)
            snap.alerts = store.alerts(5, since=now - ALERT_SHOWN_DAYS * 86400)
        except Exception as exc:  # the daemon may be migrating, or the file was replaced
            snap.store_error = str(exc)
    return snap


# -- pure rendering ----------------------------------------------------------------------------


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


def _alerts(snap: Snapshot, lang: str, zone: ZoneInfo) -> list[Text]:
    """Faults first (with the action to take), then the collector's alerts."""
    lines: list[Text] = []
    status = snap.status
    if status is None or not status.get("running"):
        lines.append(Text(text("fault_daemon", lang), style="bold white on red"))
    else:
        health = status.get("health", {})
        scanner = _state_of("scanner", health.get("scanner", {}))
        if scanner not in ("ok", "starting"):
            message = text("fault_scanner", lang).format(state=text(scanner, lang))
            lines.append(Text(message, style="bold red"))
        store = health.get("store", {})
        if _state_of("store", store) != "ok":
            message = store.get("message") or text("error", lang)
            lines.append(Text(text("fault_store", lang).format(message=message), style="bold red"))
        if _state_of("disk", health.get("disk", {})) not in ("ok", "off"):
            lines.append(Text(text("fault_disk", lang), style="bold red"))
        clock = health.get("clock", {})
        if _state_of("clock", clock) != "ok":
            waiting = clock.get("awaiting_correction")
            if isinstance(waiting, int) and not isinstance(waiting, bool) and waiting > 0:
                message = text("fault_clock_waiting", lang).format(n=waiting)
            else:
                message = text("fault_clock", lang)
            lines.append(Text(message, style="yellow"))
        if _state_of("gpio", health.get("gpio", {})) == "error":
            lines.append(Text(text("fault_gpio", lang), style="bold red"))
        sync = health.get("sync", {})
        sync_state = _state_of("sync", sync)
        if sync_state == "unauthorised":
            lines.append(Text(text("fault_sync_auth", lang), style="bold red"))
        elif sync_state == "tls":
            lines.append(Text(text("fault_sync_tls", lang), style="bold red"))
        elif sync_state in ("offline", "error") and sync.get("backlog"):
            message = text("fault_sync_offline", lang).format(n=sync["backlog"])
            lines.append(Text(message, style="yellow"))
    if snap.beacon.get("state") in ("error", "stopped"):
        lines.append(Text(text("fault_beacon", lang), style="yellow"))
    if snap.store_error:
        message = text("fault_store", lang).format(message=snap.store_error)
        lines.append(Text(message, style="bold red"))
    if snap.rejected:
        message = text("fault_rejected", lang).format(n=snap.rejected)
        lines.append(Text(message, style="bold red"))
    exposures: list[Text] = []  # newest first, above every fault
    for alert in snap.alerts:
        if alert.get("kind") == "exposure":
            details = _dict(alert.get("details"))
            visits = [v for v in details.get("visits") or [] if isinstance(v, dict)]
            times = ", ".join(
                _when(v.get("entered_at"), zone) for v in visits[:3] if v.get("entered_at")
            )
            message = text("alert_exposure", lang).format(when=times or "?")
            exposures.append(Text(message, style="bold white on red"))
        else:
            message = text("alert_other", lang).format(kind=alert.get("kind"))
            lines.append(Text(message, style="yellow"))
    lines = exposures + lines
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
        state.append(f" {text('not_running', lang)} ", style="bold white on red")
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
    for entry, token in snap.feed[:rows]:
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


# -- the interactive screen --------------------------------------------------------------------


class Keys:
    """Single key presses from a terminal, without echo (cbreak); cooked again for the form."""

    def __init__(self) -> None:
        import termios
        import tty

        self.fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)

    def read(self, timeout: float) -> str:
        """Every key pressed since the last call (waits up to ``timeout`` for the first)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return ""
        data = os.read(self.fd, 64)
        return data.decode("utf-8", "replace")

    @contextlib.contextmanager
    def cooked(self) -> Iterator[None]:
        import termios
        import tty

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        try:
            yield
        finally:
            tty.setcbreak(self.fd)

    def close(self) -> None:
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


def ask_visitor(lang: str, ask: Callable[[str], str], say: Callable[[str], None]) -> Any:
    """The `n` form: asks each field until it is valid; None when cancelled (Ctrl+C, EOF)."""
    from appliance.errors import VisitorError
    from appliance.visitors import validate

    say(text("form_title", lang))
    fields = [("f_name", True), ("f_org", False), ("f_phone", False), ("f_purpose", False)]
    answers: dict[str, str | None] = {}
    try:
        for name, required in fields:
            label = text(name, lang) + ("" if required else f" ({text('optional', lang)})")
            while True:
                try:
                    answers[name] = ask(f"{label}: ")
                except UnicodeDecodeError:  # not UTF-8 (Backspace on a tty without iutf8…)
                    say(text("err_control", lang).format(field=text(name, lang)))
                    continue
                try:
                    visitor = validate(
                        answers.get("f_name") or "",
                        answers.get("f_org"),
                        answers.get("f_phone"),
                        answers.get("f_purpose"),
                        lang=lang,
                    )
                except VisitorError as exc:
                    if exc.field == name:
                        say(str(exc))
                        continue
                break
    except (KeyboardInterrupt, EOFError):
        return None
    return visitor


def export_screen(config: Config, path: str, *, lang: str | None = None, width: int = 80,
                  height: int = 25) -> None:  # fmt: skip
    """One screen saved with rich's export: SVG (``.svg``), HTML (``.html``) or text."""
    language = lang or config.checkpoint.language
    store: VisitLog | None = None
    try:
        store = VisitLog(config.storage.database, readonly=True, check=False)
    except StoreError:
        store = None
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, height=height, color_system="standard",
                          force_terminal=True, file=sink)  # fmt: skip
        try:
            console.print(render(snapshot(config, store), language, width, height))
        finally:
            if store is not None:
                store.close()
    title = text("title", language)
    if path.endswith(".svg"):
        console.save_svg(path, title=title)
    elif path.endswith(".html"):
        console.save_html(path)
    else:
        console.save_text(path)


def run_console(
    config: Config, *, once: bool = False, duration: float | None = None, lang: str | None = None
) -> int:

    language = lang or config.checkpoint.language
    console = Console()
    store: VisitLog | None = None
    notice: tuple[str, float] | None = None

    def current() -> RenderableType:
        nonlocal store
        if store is None:
            try:
                store = VisitLog(config.storage.database, readonly=True, check=False)
            except StoreError:
                store = None
        snap = snapshot(config, store)
        if notice is not None and time.monotonic() - notice[1] < NOTICE_SHOWN_S:
            snap.notice = notice[0]
        size = console.size
        return render(snap, language, size.width, size.height if console.is_terminal else 25)

    if once:
        try:
            console.print(current())
        finally:
            if store is not None:
                store.close()
        return 0
    keys = Keys() if sys.stdin.isatty() else None
    deadline = None if duration is None else time.monotonic() + duration

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)  # unwinds through `finally`: the terminal is given back

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        with Live(
            current(), console=console, screen=console.is_terminal, auto_refresh=False
        ) as live:
            while deadline is None or time.monotonic() < deadline:
                pressed = keys.read(REFRESH_S) if keys is not None else ""
                if keys is None:
                    time.sleep(REFRESH_S)
                quit_now = False
                if "\x1b" in pressed:  # a function or cursor key: its letters are no command
                    pressed = pressed[: pressed.index("\x1b")]
                for key in pressed.replace("N", "n").replace("M", "m").replace("Q", "q"):
                    if key == "q":
                        quit_now = True
                        break
                    if key == "n" and keys is not None:
                        notice = _visitor_form(config, language, console, keys, live)
                        break  # what was typed after `n` belonged to the form
                    if key == "m":
                        notice = _mute(config, language)
                if quit_now:
                    break
                live.update(current(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        if keys is not None:
            keys.close()
        if store is not None:
            store.close()
    return 0


def _visitor_form(
    config: Config, language: str, console: Console, keys: Keys, live: Live
) -> tuple[str, float]:
    from appliance.visitors import submit_visitor

    live.stop()
    console.clear()
    with keys.cooked():
        visitor = ask_visitor(language, console.input, console.print)
    console.clear()  # the visitor's details must not stay on the screen or in scrollback
    try:
        if visitor is None:
            return text("form_cancelled", language), time.monotonic()
        try:
            submit_visitor(config.storage.database, visitor)
        except OSError as exc:
            message = text("form_failed", language).format(error=exc.strerror or exc)
            return message, time.monotonic()
        running = (read_status(status_path(config)) or {}).get("running")
        return text("form_saved" if running else "form_queued", language), time.monotonic()
    finally:
        live.start(refresh=True)


def _mute(config: Config, language: str) -> tuple[str, float]:
    from appliance.inbox import submit

    minutes = config.gpio.mute_minutes
    # The time goes with it: a request the daemon reads late mutes only for what is left.
    try:
        submit(config.storage.database, "mute", {"minutes": minutes, "at": time.time()})
    except OSError as exc:
        message = text("form_failed", language).format(error=exc.strerror or exc)
        return message, time.monotonic()
    return text("muted_notice", language).format(n=f"{minutes:g}"), time.monotonic()
