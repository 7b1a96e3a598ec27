"""``checkpoint sync``: what the outbox holds for the collector, or (``--now``) send it."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.commands._options import Subparsers, add_command, add_json, config_of, print_json


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers,
        "sync",
        help="the outbox: what waits for the collector; --now sends it",
        description="Without --now: what is waiting, what the collector refused, and the "
        "daemon's uploader. With --now: send everything now, with a progress bar.",
    )
    p.add_argument("--now", action="store_true", help="send the outbox now")
    p.add_argument(
        "--retry-rejected", action="store_true", help="put records the collector refused back"
    )
    add_json(p, "one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from appliance.status import unit_status
    from appliance.store.outbox import Outbox

    config = config_of(args)
    if args.retry_rejected:
        outbox = Outbox(config.storage.database)
        try:
            print(f"{outbox.retry_rejected()} refused record(s) back in the outbox")
        finally:
            outbox.close()
    if not args.now:
        status = unit_status(config) or {}
        sync = status.get("health", {}).get("sync") if status.get("running") else None
        outbox = Outbox(config.storage.database)
        try:
            summary: dict[str, Any] = {
                "configured": config.sync is not None and bool(config.sync.url),
                "url": config.sync.url if config.sync else None,
                "backlog": outbox.backlog(),
                "rejected": outbox.rejected(),
                "daemon": sync,
                "alerts": outbox.alerts(5),
            }
        finally:
            outbox.close()
        if args.json:
            print_json(summary)
            return 0
        print(f"collector: {summary['url'] or 'none (sync off)'}")
        print(
            f"waiting to be sent: {summary['backlog']}; refused by the collector: "
            f"{summary['rejected']}"
        )
        if sync:
            print(
                f"daemon's uploader: {sync.get('state')}"
                + (f" ({sync['last_error']})" if sync.get("last_error") else "")
            )
        for alert in summary["alerts"]:
            print(f"alert {alert['created_at']}: {alert['kind']}")
        return 0
    return _sync_now(config, args.json)


def _sync_now(config: Any, as_json: bool) -> int:
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from appliance.status import unit_status
    from appliance.store.outbox import Outbox
    from appliance.sync import build_uploader

    database = config.storage.database
    uploader = build_uploader(config, outbox=lambda: Outbox(database), pace_s=0.0)
    interactive = sys.stderr.isatty() and not as_json
    try:
        with Progress(
            TextColumn("sync"),
            BarColumn(),
            MofNCompleteColumn(),
            transient=True,
            disable=not interactive,
        ) as bar:
            task = bar.add_task("sync", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
                if not interactive and not as_json:
                    print(f"sent {done}/{total}", file=sys.stderr)

            result = uploader.push(progress)
        # A running daemon heartbeats itself (with its real health); only report for it
        # when it is not running.
        status = unit_status(config) or {}
        alerts = [] if status.get("running") else uploader.heartbeat()
        backlog = uploader.outbox.backlog()
    finally:
        uploader.close()
    if as_json:
        print_json(
            {
                "sent": result.sent,
                "new": result.new,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "batches": result.batches,
                "backlog": backlog,
                "alerts": len(alerts),
            }
        )
    else:
        print(
            f"sent {result.sent} record(s) in {result.batches} batch(es): {result.new} new,"
            f" {result.duplicates} already there; refused {result.rejected}; left {backlog}"
        )
        if alerts:
            print(f"{len(alerts)} alert(s) from the collector: checkpoint sync shows them")
    return 0
