"""The ``checkpoint`` command: thin subcommands over library functions.

Each command parses its arguments, calls one library function, and prints. Expected errors
(``CheckpointError``) become one line on stderr and the error's exit code; anything else is a bug
and keeps its traceback. Adapters (bleak, gpiozero, sqlite-utils, requests, rich) are imported
lazily inside the commands that need them, so ``decode`` works on any laptop.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Any, TextIO

from appliance import __version__
from appliance.config import Config, load_config, load_secret
from appliance.core.tokens import SECRET_LENGTH
from appliance.errors import CheckpointError, UsageError, run_command

Handler = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------------
# Argument values


def hex_bytes(name: str, text: str, length: int | None = None) -> bytes:
    """Parse a hex argument, with a one-line error naming the option."""
    from appliance.protocols.adstructs import parse_hex

    try:
        value = parse_hex(text)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None
    if length is not None and len(value) != length:
        raise UsageError(
            f"{name} must be {length} bytes ({2 * length} hex digits), got {len(value)}"
        )
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(name: str, text: str) -> date:
    if not _DATE.fullmatch(text):
        raise UsageError(f"{name} must be a date like 2020-08-20, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{name}: {text!r} is not a valid date ({exc})") from None


def print_json(obj: dict[str, Any], out: TextIO | None = None) -> None:
    print(json.dumps(obj, ensure_ascii=False), file=out or sys.stdout)


def config_of(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


# ---------------------------------------------------------------------------------------------
# decode


def _decode_inputs(values: Sequence[str]) -> Iterable[tuple[str, str]]:
    for position, value in enumerate(values, 1):
        if value == "-":
            for number, line in enumerate(sys.stdin, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    yield f"stdin line {number}", line
        else:
            yield f"argument {position}", value


def cmd_decode(args: argparse.Namespace) -> int:
    from appliance.protocols.adstructs import parse
    from appliance.protocols.others import describe
    from appliance.protocols.registry import Classifier, DecodeOptions

    config = config_of(args)
    classifier = Classifier(
        DecodeOptions(
            ios_overflow_byte=config.protocols.bluezone_ios_overflow_byte,
            ios_overflow_mask=config.protocols.bluezone_ios_overflow_mask,
        )
    )
    # Validate everything first, so that a typo in the tenth argument prints nothing half-done.
    reports = [(where, hex_bytes(where, text)) for where, text in _decode_inputs(args.hex)]
    for _where, data in reports:
        adv = parse(data)
        detection = classifier.classify(adv)
        other = describe(adv) if detection is None else None
        if args.json:
            print_json(
                {
                    "data": data.hex().upper(),
                    "protocol": detection.protocol if detection else None,
                    "id": detection.id_hex if detection else None,
                    "needs_gatt": detection.needs_gatt if detection else False,
                    "id_scheme": detection.id_scheme if detection else None,
                    "malformed": adv.malformed,
                    "other": other,
                }
            )
        elif detection is None:
            note = f" ({other})" if other else ""
            flag = " [malformed]" if adv.malformed else ""
            print(f"{'-':<16} not an app{note}{flag}")
        else:
            if detection.id_hex:
                what = f"ID {detection.id_hex}"
            elif detection.needs_gatt:
                what = "no ID in the air: read it over GATT"
            else:
                what = "no ID"
            flag = " [malformed]" if adv.malformed else ""
            print(f"{detection.protocol:<16} {what}{flag}")
    return 0


# ---------------------------------------------------------------------------------------------
# exposure


def cmd_exposure_ids(args: argparse.Namespace) -> int:
    from appliance.core import exposure

    case = exposure_case(args)
    for item in exposure.case_identifiers(case):
        if args.json:
            print_json(item.as_json())
        else:
            print(item.as_text())
    return 0


def exposure_case(args: argparse.Namespace) -> Any:
    """Build the confirmed case's key description from the command line."""
    from appliance.core import exposure

    if args.protocol == "bluezone":
        if args.daily_key is None or args.date is None:
            raise UsageError("--protocol bluezone needs --daily-key HEX and --date YYYY-MM-DD")
        if not 1 <= args.days <= exposure.MAX_DAYS:
            raise UsageError(f"--days must be 1..{exposure.MAX_DAYS}, got {args.days}")
        first_day = iso_date("--date", args.date)
        if first_day > date.max - timedelta(days=args.days):
            raise UsageError(f"--date {args.date} plus --days {args.days} runs past the calendar")
        return exposure.BluezoneCase(
            daily_key=hex_bytes("--daily-key", args.daily_key, 32),
            first_day=first_day,
            days=args.days,
        )
    if args.tek is None or args.interval is None:
        raise UsageError("--protocol gaen needs --tek HEX and --interval N")
    if not 0 <= args.interval < 2**32 - exposure.GAEN_PERIOD:
        raise UsageError(f"--interval must be a rolling start interval number, got {args.interval}")
    return exposure.GaenCase(tek=hex_bytes("--tek", args.tek, 16), first_interval=args.interval)


def cmd_exposure_check(args: argparse.Namespace) -> int:
    from appliance.exposure_check import check_exposure
    from appliance.store import VisitLog

    case = exposure_case(args)
    config = config_of(args)
    secret = load_secret(config)
    store = VisitLog(database_of(args, config), readonly=True)
    try:
        matches = check_exposure(store, secret, case)
    finally:
        store.close()
    timezone = config.checkpoint.timezone
    for match in matches:
        row = match.as_json(timezone)
        if args.json:
            print_json(row)
        else:
            entered = row["entered_local"][:19].replace("T", " ")
            left = row["left_local"][11:19] if row["left_local"] else "?"
            dwell = f"{row['dwell_s'] // 60} min" if row["dwell_s"] is not None else "still open"
            print(
                f"{entered} → {left}  {dwell:>10}  {row['protocol']:<12} "
                f"{match.overlapping} other app visitor(s) overlapped"
            )
    if not args.json:
        print(f"{len(matches)} matching visit(s)", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# run, status, replay, console


def database_of(args: argparse.Namespace, config: Config) -> Any:
    from pathlib import Path

    explicit = getattr(args, "database", None)
    return Path(explicit) if explicit else config.storage.database


def cmd_run(args: argparse.Namespace) -> int:
    from appliance.daemon import run_daemon

    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UsageError(f"--speed must be a positive number, got {args.speed}")
    return run_daemon(config_of(args), simulate=args.simulate, speed=args.speed)


def cmd_status(args: argparse.Namespace) -> int:
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


def cmd_enroll(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.config import config_path
    from appliance.sync.enroll import enroll

    path, _explicit = config_path(args.config)
    config = config_of(args)
    result = enroll(
        path,
        config,
        server=args.server,
        code=args.code,
        ca=Path(args.ca) if args.ca else None,
    )
    print(f"enrolled as {result.checkpoint_id} ({result.agency} · {result.door})")
    print(f"  token: {result.token_file} (mode 0600)")
    if result.ca_file is not None:
        print(f"  pinned CA: {result.ca_file} (mode 0600)")
    else:
        print("  no CA pinned (--ca): the system's CAs are trusted for the collector")
    if result.key_file is not None:
        print(f"  province key: {result.key_file} (mode 0600)")
    if result.key_note:
        print(f"  note: {result.key_note}")
    print(f"  configuration updated: {path}")
    print("  restart the daemon to start syncing (systemctl restart checkpoint)")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from appliance.status import read_status, status_path
    from appliance.store.outbox import Outbox

    config = config_of(args)
    if args.retry_rejected:
        outbox = Outbox(config.storage.database)
        try:
            print(f"{outbox.retry_rejected()} refused record(s) back in the outbox")
        finally:
            outbox.close()
    if not args.now:
        status = read_status(status_path(config)) or {}
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

    from appliance.status import read_status, status_path
    from appliance.sync import build_uploader

    uploader = build_uploader(config, pace_s=0.0)
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
        status = read_status(status_path(config)) or {}
        alerts = [] if status.get("running") else uploader.heartbeat()
        backlog = uploader.outbox.backlog()
    finally:
        if uploader._outbox is not None:
            uploader._outbox.close()
        uploader.client.close()
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


def _exporter(args: argparse.Namespace) -> Any:
    from appliance.exports import Exporter, period
    from appliance.store import VisitLog

    config = config_of(args)
    lang = args.lang or config.checkpoint.language
    span = period(
        iso_date("--from", args.first), iso_date("--to", args.last), config.checkpoint.timezone
    )
    log = VisitLog(database_of(args, config), readonly=True, check=False)
    try:
        exporter = Exporter(
            log,
            span,
            lang=lang,
            kind=getattr(args, "kind", None),
            include_simulated=args.include_simulated,
        )
    except BaseException:
        log.close()
        raise
    return config, log, exporter


def cmd_export(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from appliance.exports import check_target, write_export

    target = args.output
    check_target(args.format, target)
    _config, log, exporter = _exporter(args)
    try:
        total = exporter.count()
        left_out = exporter.left_out()
        shown = sys.stderr.isatty() and not (target == "-" and sys.stdout.isatty())
        with Progress(
            TextColumn(args.format.upper()),
            BarColumn(),
            MofNCompleteColumn(),
            transient=True,
            disable=not shown,
            console=Console(stderr=True),  # the terminal checked above, never the data's stdout
        ) as bar:
            task = bar.add_task("export", total=total)
            count = write_export(exporter, args.format, target, lambda n: bar.advance(task, n))
    finally:
        log.close()
    lang = exporter.lang
    if target != "-":
        print(text_of("exported", lang).format(n=count, target=target), file=sys.stderr)
    if left_out:
        print(text_of("left_out", lang).format(n=left_out), file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import csv
    import sys

    from appliance.exports import total_row
    from appliance.formats.cells import BOM

    config, log, exporter = _exporter(args)
    try:
        days = exporter.days()
    finally:
        log.close()
    totals = total_row(days)
    lang = exporter.lang
    if args.format == "json":
        print_json(
            {
                "agency": config.checkpoint.agency,
                "checkpoint": config.checkpoint.id,
                "from": args.first,
                "to": args.last,
                "timezone": config.checkpoint.timezone,
                "days": days,
                "total": totals,
            }
        )
        return 0
    keys = ("exp_day", "with_app", "no_app", "manual", "exp_total", "adoption")
    names = [text_of(k, lang) for k in keys]

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    rows = [
        [d["day"], d["app"], d["no_app"], d["manual"], d["total"], rate(d["adoption_rate"])]
        for d in days
    ]
    last = [text_of("exp_total", lang), totals["app"], totals["no_app"], totals["manual"],
            totals["total"], rate(totals["adoption_rate"])]  # fmt: skip
    if args.format == "csv":
        sys.stdout.write(BOM)
        writer = csv.writer(sys.stdout, lineterminator="\r\n")
        writer.writerow(names)
        writer.writerows(rows)
        writer.writerow(last)
        return 0
    from rich.console import Console
    from rich.table import Table

    title = text_of("report_title", lang).format(
        agency=config.checkpoint.agency or config.checkpoint.id, first=args.first, last=args.last
    )
    table = Table(title=title, show_footer=True)
    for i, name in enumerate(names):
        table.add_column(name, footer=str(last[i]), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)
    return 0


REPLAY_DATABASE = "replay.db"


def cmd_replay(args: argparse.Namespace) -> int:
    from appliance.replay import replay_capture
    from appliance.store import VisitLog

    config = config_of(args)
    # Never into the live visit log: a capture's visits are not this door's, and must never
    # be uploaded. By default a scratch log beside it.
    database = (
        database_of(args, config)
        if args.database
        else (config.storage.database.parent / REPLAY_DATABASE)
    )
    if config.privacy.key_file.exists():
        secret = load_secret(config)
    else:
        # A replay on a laptop: tokens under a throwaway key, linkable to nothing.
        secret = os.urandom(SECRET_LENGTH)
        print(f"checkpoint: no province key at {config.privacy.key_file}; "
              "tokens use a throwaway key", file=sys.stderr)  # fmt: skip
    store = VisitLog(database, origin="replay")

    def progress(reports: int) -> None:
        print(f"\rreplaying… {reports:,} reports", end="", file=sys.stderr, flush=True)

    try:
        summary = replay_capture(
            args.capture, store, secret, progress=progress if sys.stderr.isatty() else None
        )
    finally:
        store.close()
        if sys.stderr.isatty():
            print("\r\033[K", end="", file=sys.stderr)
    data = summary.as_json()
    if args.json:
        print_json(data)
    else:
        print(f"records read:        {data['records']}")
        print(
            f"advertising reports: {data['advertising_reports']}"
            f" ({data['extended_reports']} extended, {data['bad_events']} corrupt events)"
        )
        by_protocol = ", ".join(f"{k} {v}" for k, v in summary.counters.by_protocol.items())
        print(
            f"app reports:         {data['app_reports']}"
            + (f" ({by_protocol})" if by_protocol else "")
        )
        print(f"app phones:          {data['app_phones']}")
        entries = ", ".join(f"{k} {v}" for k, v in summary.entries.items()) or "0"
        print(f"entries:             {entries}")
        if data["first"]:
            print(f"capture time:        {data['first']} → {data['last']}")
        print(f"visit log:           {database}")
    if summary.error is not None:
        print(
            f"checkpoint: {summary.error} (what was read before it was replayed)", file=sys.stderr
        )
        return 1
    return 0


def cmd_beacon(args: argparse.Namespace) -> int:
    from appliance.ble.beacon import (
        CheckpointBeacon,
        content_at,
        create_beacon_key,
        load_beacon_key,
    )
    from appliance.config import BeaconSection

    config = config_of(args)
    section = config.beacon or BeaconSection()
    if args.new_key:
        create_beacon_key(section.key_file)
        print(f"beacon key made: {section.key_file}")
    key = load_beacon_key(section.key_file) if section.format == "bluezone" else None
    ibeacon = (section.ibeacon_uuid, section.ibeacon_major, section.ibeacon_minor, -59)

    def content(when: Any) -> Any:
        return content_at(key, when, section.format, ibeacon)

    from appliance.logs import logging_setup
    from appliance.status import beacon_status_path, write_status

    logging_setup()
    where = beacon_status_path(config)
    return CheckpointBeacon(
        config.ble.adapter, content, on_state=lambda state: write_status(where, state)
    ).run()


def cmd_doctor(args: argparse.Namespace) -> int:
    from appliance.doctor import run_doctor

    return run_doctor(config_of(args), json_lines=args.json)


def cmd_maintenance(args: argparse.Namespace) -> int:
    from appliance.maintenance import run_maintenance

    return run_maintenance(config_of(args), json_lines=args.json)


def cmd_console(args: argparse.Namespace) -> int:
    from appliance.console.live import run_console

    if args.export:
        from appliance.console.live import export_screen

        width, height = args.size
        export_screen(config_of(args), args.export, lang=args.lang, width=width, height=height)
        return 0
    return run_console(config_of(args), once=args.once, duration=args.duration, lang=args.lang)


def screen_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not match or not (60 <= int(match[1]) <= 400 and 20 <= int(match[2]) <= 200):
        raise argparse.ArgumentTypeError(f"{text!r}: give COLUMNSxROWS, e.g. 80x25")
    return int(match[1]), int(match[2])


def cmd_log_visitor(args: argparse.Namespace) -> int:
    """A visitor recorded by hand: through the daemon when it runs (its only writer), else
    straight into the visit log."""
    from appliance.inbox import REJECTED, inbox_dir
    from appliance.status import read_status, status_path
    from appliance.store import VisitLog
    from appliance.visitors import submit_visitor, validate

    config = config_of(args)
    lang = args.lang or config.checkpoint.language
    visitor = validate(args.name, args.org, args.phone, args.purpose, lang=lang)
    database = config.storage.database
    status = read_status(status_path(config))
    if status is not None and status.get("running"):
        entry_uuid, request = submit_visitor(database, visitor)
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and request.exists():
            time.sleep(0.1)
        if _recorded(database, entry_uuid):
            print(text_of("form_saved", lang) + f" ({entry_uuid})")
            return 0
        if (inbox_dir(database) / REJECTED / request.name).exists():
            raise CheckpointError(
                f"the daemon refused the entry (see its log); it is kept in"
                f" {inbox_dir(database) / REJECTED / request.name}"
            )
        print(text_of("form_queued", lang) + f" ({entry_uuid})")
        return 0
    log = VisitLog(database)
    try:
        from appliance import clock

        entry_uuid = log.add_manual(
            visitor.name,
            organisation=visitor.organisation,
            phone=visitor.phone,
            purpose=visitor.purpose,
            clock_synced=clock.is_synchronized(),
        )
    finally:
        log.close()
    print(text_of("form_saved", lang) + f" ({entry_uuid})")
    return 0


def text_of(key: str, lang: str) -> str:
    from appliance.i18n import text

    return text(key, lang)


def _recorded(database: Any, entry_uuid: str) -> bool:
    from appliance.store import VisitLog

    try:
        log = VisitLog(database, readonly=True, check=False)
    except CheckpointError:
        return False
    try:
        return log.has_entry(entry_uuid)
    finally:
        log.close()


# ---------------------------------------------------------------------------------------------
# Parser


def _add_exposure_case_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=("bluezone", "gaen"), required=True)
    parser.add_argument(
        "--daily-key", metavar="HEX", help="bluezone: the case's daily key of --date"
    )
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="bluezone: the UTC day of --daily-key")
    parser.add_argument(
        "--days", type=int, default=1, help="bluezone: days from --date (default 1)"
    )
    parser.add_argument("--tek", metavar="HEX", help="gaen: the Temporary Exposure Key")
    parser.add_argument("--interval", type=int, metavar="N", help="gaen: rolling start interval")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="F",
        help="configuration file (default: $CHECKPOINT_CONFIG or /etc/checkpoint/checkpoint.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="checkpoint",
        description="Checkpoint door unit: contact-tracing app check-in at an office entrance.",
    )
    parser.add_argument("--version", action="version", version=f"checkpoint {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "decode",
        parents=[common],
        help="classify raw advertising data",
        description="Classify advertising data (AD structures as hex, optionally followed by the "
        "scan response). Spaces and colons are ignored; '-' reads one report per line from stdin.",
    )
    p.add_argument("hex", nargs="+", metavar="HEX")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_decode)

    p = sub.add_parser("exposure", help="a confirmed case's identifiers")
    exposure_sub = p.add_subparsers(dest="exposure_command", metavar="ACTION", required=True)
    q = exposure_sub.add_parser(
        "ids",
        parents=[common],
        help="derive a confirmed case's identifiers from a published key",
        description="bluezone: one line per 15-minute UTC slot (start, slot, ID); "
        "gaen: the 144 RPIs from the rolling start interval.",
    )
    _add_exposure_case_options(q)
    q.set_defaults(handler=cmd_exposure_ids)
    q = exposure_sub.add_parser(
        "check",
        parents=[common],
        help="find a confirmed case's visits in the local visit log",
        description="Derive the case's identifiers, recompute their visit tokens and list the "
        "matching entries (local time in and out, dwell, overlapping app visitors).",
    )
    _add_exposure_case_options(q)
    q.add_argument("--database", metavar="F", help="visit log (default: from the config)")
    q.set_defaults(handler=cmd_exposure_check)

    p = sub.add_parser("run", parents=[common], help="the daemon")
    p.add_argument("--simulate", action="store_true", help="a simulated lobby instead of BlueZ")
    p.add_argument("--speed", type=float, default=1.0, help="simulation: times real time")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("status", parents=[common], help="the daemon's health and today's counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser(
        "replay",
        parents=[common],
        help="run a btsnoop capture through the pipeline",
        description="Replay a btsnoop capture (btmon -w, Android HCI snoop log) through decode, "
        "tracker, doorway and visit log, using the capture's timestamps; GPIO and sync off.",
    )
    p.add_argument("capture", metavar="CAPTURE")
    p.add_argument(
        "--database",
        metavar="F",
        help=f"visit log to write (default: {REPLAY_DATABASE} beside the configured one)",
    )
    p.add_argument("--json", action="store_true", help="the summary as one JSON object")
    p.set_defaults(handler=cmd_replay)

    p = sub.add_parser(
        "beacon",
        parents=[common],
        help="advertise the checkpoint's own beacon",
        description="Advertise the checkpoint's beacon ([beacon] section) until stopped: "
        "Bluezone's Android format with the checkpoint's own rotating ID, or an iBeacon.",
    )
    p.add_argument("--new-key", action="store_true", help="make the beacon key first")
    p.set_defaults(handler=cmd_beacon)

    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check the installation: PASS / WARN / FAIL lines",
        description="Checks the configuration, the secrets' file modes, the state directory, "
        "the visit log, disk, clock, GPIO chip and pins, the collector over TLS and, with [ble] "
        "source = bluez, BlueZ, the adapter, passive scanning and the beacon. Each FAIL says "
        "what to do. Exit code 1 on any FAIL (WARN alone: 0).",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object per check, then a summary object"
    )
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser(
        "maintenance",
        parents=[common],
        help="daily upkeep of the visit log (the maintenance timer)",
        description="Once: quick_check, retention (postponed while the clock is not "
        "synchronised), a WAL checkpoint and PRAGMA optimize. Safe while the daemon runs. "
        "Exit code 1 when the visit log fails its check.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per step")
    p.set_defaults(handler=cmd_maintenance)

    for name, text_help in (
        ("export", "the entry log for officials: CSV, XLSX or JSON lines"),
        ("report", "entries per day: with app, no app, manual, adoption rate"),
    ):
        p = sub.add_parser(name, parents=[common], help=text_help)
        p.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD")
        p.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD")
        p.add_argument("--lang", choices=("vi", "en"), help="default: [checkpoint] language")
        p.add_argument("--database", metavar="F", help="visit log (default: from the config)")
        p.add_argument(
            "--include-simulated",
            action="store_true",
            help="also entries of the simulated lobby (the demo)",
        )
        if name == "export":
            p.add_argument("--kind", choices=("app", "no_app", "manual"), help="only these")
            p.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv")
            p.add_argument("-o", "--output", default="-", metavar="F", help="file, or - (stdout)")
            p.set_defaults(handler=cmd_export)
        else:
            p.add_argument("--format", choices=("table", "csv", "json"), default="table")
            p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "enroll",
        parents=[common],
        help="join the provincial collector with a one-time code",
        description="Exchange a one-time enrollment code for this unit's ID and token. The token "
        "(and the CA, and the province key when the collector hands it out) are stored with "
        "mode 0600 beside the configuration, which records the collector's URL.",
    )
    p.add_argument(
        "--server", required=True, metavar="URL", help="the collector, https://host:port"
    )
    p.add_argument("--code", required=True, help="the one-time code (dashes optional)")
    p.add_argument("--ca", metavar="FILE", help="the province CA to pin (PEM)")
    p.set_defaults(handler=cmd_enroll)

    p = sub.add_parser(
        "sync",
        parents=[common],
        help="the outbox: what waits for the collector; --now sends it",
        description="Without --now: what is waiting, what the collector refused, and the "
        "daemon's uploader. With --now: send everything now, with a progress bar.",
    )
    p.add_argument("--now", action="store_true", help="send the outbox now")
    p.add_argument(
        "--retry-rejected", action="store_true", help="put records the collector refused back"
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(handler=cmd_sync)

    p = sub.add_parser(
        "console",
        parents=[common],
        help="the receptionist's live screen",
        description="Full screen: health, today's counts, the latest entries, alerts. Keys: n "
        "records a visitor, m mutes the buzzer, q quits. Reads the visit log read-only.",
    )
    p.add_argument("--once", action="store_true", help="print one screen and exit")
    p.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    p.add_argument("--lang", choices=("vi", "en"), help="default: [checkpoint] language")
    p.add_argument(
        "--export", metavar="F", help="save one screen with rich's export (.svg, .html or text)"
    )
    p.add_argument(
        "--size", type=screen_size, default=(80, 25), metavar="WxH", help="for --export (80x25)"
    )
    p.set_defaults(handler=cmd_console)

    p = sub.add_parser(
        "log-visitor",
        parents=[common],
        help="record a visitor by hand (the receptionist)",
        description="A manual entry: the details stay on this unit (only the count and time are "
        "synced) and are deleted after retention_days.",
    )
    p.add_argument("--name", required=True, help="full name, as written (diacritics kept)")
    p.add_argument("--org", help="organisation")
    p.add_argument("--phone", help="phone number")
    p.add_argument("--purpose", help="purpose of the visit")
    p.add_argument("--lang", choices=("vi", "en"), help="language of messages")
    p.add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for the daemon to record it"
    )
    p.set_defaults(handler=cmd_log_visitor)

    from appliance.provision.commands import add_provision_parser

    add_provision_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return run_command("checkpoint", handler, args)
