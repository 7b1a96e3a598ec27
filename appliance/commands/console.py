"""``checkpoint console``: the receptionist's live screen, or one screen saved to a file."""

from __future__ import annotations

import argparse
import re

from appliance.commands._options import Subparsers, add_command, add_lang, config_of


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "console",
        help="the receptionist's live screen",
        description="Full screen: health, today's counts, the latest entries, alerts. Keys: n "
        "records a visitor, m mutes the buzzer, q quits. Reads the visit log read-only.",
    )
    p.add_argument("--once", action="store_true", help="print one screen and exit")
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    add_lang(p)
    p.add_argument(
        "--export", metavar="F", help="save one screen with rich's export (.svg, .html or text)"
    )
    p.add_argument(
        "--size", type=screen_size, default=(80, 25), metavar="WxH", help="for --export (80x25)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.console.live import export_screen, run_console
    from appliance.daemon.readout import ScreenReader

    config = config_of(args)
    with ScreenReader(config) as read:
        if args.export:
            width, height = args.size
            export_screen(config, read(), args.export, lang=args.lang, width=width, height=height)
            return 0
        return run_console(config, read, once=args.once, duration=args.duration, lang=args.lang)


def screen_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or not (60 <= int(match[1]) <= 400 and 20 <= int(match[2]) <= 200):
        raise argparse.ArgumentTypeError(f"{text!r}: give COLUMNSxROWS, e.g. 80x25")
    return int(match[1]), int(match[2])
