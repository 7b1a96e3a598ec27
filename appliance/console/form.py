"""What the receptionist asks of the daemon from the console: a visitor typed in (the ``n``
form) and "mute" (``m``). Both go through the daemon's inbox (appliance.inbox), since the
daemon is the visit log's only writer; the console writes nothing else."""

from __future__ import annotations

import errno
import time
from collections.abc import Callable

from appliance.config import Config
from appliance.errors import VisitorError
from appliance.i18n import text
from appliance.inbox import submit_mute
from appliance.status import unit_status
from appliance.visitors import Visitor, submit_visitor, validate

FORM_FIELDS = (("f_name", True), ("f_org", False), ("f_phone", False), ("f_purpose", False))


def ask_visitor(lang: str, ask: Callable[[str], str], say: Callable[[str], None]) -> Visitor | None:
    """The `n` form: asks each field until it is valid; None when cancelled (Ctrl+C, EOF)."""
    say(text("form_title", lang))
    answers: dict[str, str | None] = {}
    visitor: Visitor | None = None
    try:
        for name, required in FORM_FIELDS:
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


def hand_over(config: Config, language: str, visitor: Visitor | None) -> str:
    """Give a visitor from the form to the daemon; the notice to show for it."""
    if visitor is None:
        return text("form_cancelled", language)
    try:
        submit_visitor(config.storage.database, visitor)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return text("err_card_full", language)
        return text("form_failed", language).format(error=exc.strerror or exc)
    running = (unit_status(config) or {}).get("running")
    return text("form_saved" if running else "form_queued", language)


def ask_mute(config: Config, language: str) -> str:
    """Ask the daemon to mute the buzzer for ``[gpio] mute_minutes``; the notice to show."""
    minutes = config.gpio.mute_minutes
    # The time goes with it: a request the daemon reads late mutes only for what is left.
    try:
        submit_mute(config.storage.database, minutes, time.time())
    except OSError as exc:
        return text("form_failed", language).format(error=exc.strerror or exc)
    return text("muted_notice", language).format(n=f"{minutes:g}")
