"""``checkpoint status``: the daemon's health and today's counts, from its status file."""

from __future__ import annotations

import argparse

from appliance.commands._options import Subparsers, add_command, add_json, config_of, print_json


def register(subparsers: Subparsers) -> None:
    p = add_command(subparsers, "status", help="the daemon's health and today's counts")
    add_json(p, None)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.core.doorway import adoption_rate
    from appliance.status import read_status, status_path

    config = config_of(args)
    status = read_status(status_path(config))
    if args.json:
        print_json(status or {"running": False})
        return 0 if status and status["running"] else 3
    if status is None:
        print(f"daemon: not running (no readable status at {status_path(config)})")
        return 3
    health = status.get("health", {})
    print(
        f"daemon: {'running' if status['running'] else 'NOT RUNNING'}"
        f" (pid {status.get('pid')}, door {status.get('checkpoint', {}).get('id')})"
    )
    for part, info in health.items():
        state = info.get("state", "ok" if info.get("synchronized", True) else "unsynchronised")
        print(f"  {part:<8} {state}")
    today = status.get("today", {})
    app, no_app, manual = today.get("app", 0), today.get("no_app", 0), today.get("manual", 0)
    total = app + no_app + manual
    rate = adoption_rate(today)
    rate_text = "-" if rate is None else f"{100 * rate:.0f} %"
    print(
        f"today: {total} entries: {app} with app, {no_app} no app, {manual} manual;"
        f" adoption {rate_text}"
    )
    print(f"phones near the door: {status.get('present', 0)}")
    return 0 if status["running"] else 3
