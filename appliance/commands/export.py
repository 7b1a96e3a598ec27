"""``checkpoint export`` and ``checkpoint report``: the entry log for officials, and entries per
day; both read a period of the visit log through one exporter."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.commands._options import (
    Subparsers,
    add_command,
    add_database,
    add_lang,
    add_period,
    config_of,
    database_of,
    iso_date,
    print_json,
    text_of,
)


def register(subparsers: Subparsers) -> None:
    p = add_command(
        subparsers, "export", help="the entry log for officials: CSV, XLSX or JSON lines"
    )
    _add_span_options(p)
    p.add_argument("--kind", choices=("app", "no_app", "manual"), help="only these")
    p.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv")
    p.add_argument("-o", "--output", default="-", metavar="F", help="file, or - (stdout)")
    p.set_defaults(handler=run_export)

    p = add_command(
        subparsers, "report", help="entries per day: with app, no app, manual, adoption rate"
    )
    _add_span_options(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(handler=run_report)


def _add_span_options(parser: argparse.ArgumentParser) -> None:
    """Which entries: the period, the language of headers, the visit log, the demo's too."""
    add_period(parser)
    add_lang(parser)
    add_database(parser)
    parser.add_argument(
        "--include-simulated",
        action="store_true",
        help="also entries of the simulated lobby (the demo)",
    )


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


def run_export(args: argparse.Namespace) -> int:
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


def run_report(args: argparse.Namespace) -> int:
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
