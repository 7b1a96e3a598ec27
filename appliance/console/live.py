"""The receptionist's live screen: a thin ``rich.live.Live`` loop over pure renders.

``run_console`` is handed ``read``, which returns the current ``Snapshot`` (the feature that
runs the console reads the daemon's files and the visit log for it); it renders the snapshot
once a second and answers keys: ``n`` opens the visitor form, ``m`` mutes the buzzer, ``q``
quits. Both requests go to the daemon through its inbox (appliance.console.form); a user who
cannot write the inbox gets a view-only screen that says why, and the two keys say so too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live

from appliance.config import Config
from appliance.console.form import ask_mute, ask_visitor, hand_over
from appliance.console.screen import render
from appliance.console.snapshot import Snapshot
from appliance.i18n import text
from appliance.inbox import writer_problem

REFRESH_S = 1.0
NOTICE_SHOWN_S = 6.0


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


def export_screen(
    config: Config, snap: Snapshot, path: str, *, lang: str | None = None, width: int = 80,
    height: int = 25,
) -> None:  # fmt: skip
    """One screen saved with rich's export: SVG (``.svg``), HTML (``.html``) or text."""
    language = lang or config.checkpoint.language
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, height=height, color_system="standard",
                          force_terminal=True, file=sink)  # fmt: skip
        console.print(render(snap, language, width, height))
    title = text("title", language)
    if path.endswith(".svg"):
        console.save_svg(path, title=title)
    elif path.endswith(".html"):
        console.save_html(path)
    else:
        console.save_text(path)


def commands(pressed: str) -> str:
    """The command keys in what was typed: case folded, nothing from a function or cursor key
    (its escape sequence's letters are no command)."""
    if "\x1b" in pressed:
        pressed = pressed[: pressed.index("\x1b")]
    return pressed.replace("N", "n").replace("M", "m").replace("Q", "q")


class Screen:
    """The console's state between refreshes: the notice shown, and how to draw a frame."""

    def __init__(self, config: Config, read: Callable[[], Snapshot], language: str) -> None:
        self.config = config
        self.read = read
        self.language = language
        self.console = Console()
        self.notice: tuple[str, float] | None = None

    def say(self, message: str) -> None:
        self.notice = (message, time.monotonic())

    def current(self) -> RenderableType:
        snap = self.read()
        if self.notice is not None and time.monotonic() - self.notice[1] < NOTICE_SHOWN_S:
            snap = dataclasses.replace(snap, notice=self.notice[0])
        size = self.console.size
        height = size.height if self.console.is_terminal else 25
        return render(snap, self.language, size.width, height)

    def visitor_form(self, keys: Keys, live: Live) -> None:
        live.stop()
        self.console.clear()
        try:
            with keys.cooked():
                visitor = ask_visitor(self.language, self.console.input, self.console.print)
            self.console.clear()  # the visitor's details must not stay on the screen
            self.say(hand_over(self.config, self.language, visitor))
        finally:
            live.start(refresh=True)

    def answer(self, pressed: str, keys: Keys | None, live: Live) -> bool:
        """Act on the keys pressed; False once ``q`` says to quit."""
        for key in commands(pressed):
            if key == "q":
                return False
            if key in "nm" and writer_problem(self.config.storage.database) is not None:
                # View-only (the alert says why and the fix): a form typed in for nothing
                # would lose the visitor.
                self.say(text("view_only_notice", self.language))
                continue
            if key == "n" and keys is not None:
                self.visitor_form(keys, live)
                break  # what was typed after `n` belonged to the form
            if key == "m":
                self.say(ask_mute(self.config, self.language))
        return True


def run_console(
    config: Config,
    read: Callable[[], Snapshot],
    *,
    once: bool = False,
    duration: float | None = None,
    lang: str | None = None,
) -> int:
    screen = Screen(config, read, lang or config.checkpoint.language)
    console = screen.console
    if once:
        console.print(screen.current())
        return 0
    keys = Keys() if sys.stdin.isatty() else None
    deadline = None if duration is None else time.monotonic() + duration

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)  # unwinds through `finally`: the terminal is given back

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        with Live(
            screen.current(), console=console, screen=console.is_terminal, auto_refresh=False
        ) as live:
            while deadline is None or time.monotonic() < deadline:
                pressed = keys.read(REFRESH_S) if keys is not None else ""
                if keys is None:
                    time.sleep(REFRESH_S)
                if not screen.answer(pressed, keys, live):
                    break
                live.update(screen.current(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        if keys is not None:
            keys.close()
    return 0
