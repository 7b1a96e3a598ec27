"""``checkpoint-collector``: the provincial server and its admin commands.

    checkpoint-collector serve --database URL [--host H --port P --tls-cert F --tls-key F]
    checkpoint-collector codes create --database URL --agency A --door D [--expires 7d]
    checkpoint-collector tokens create --database URL --role admin|official|health
    checkpoint-collector report --database URL --from D --to D --format json|csv
    checkpoint-collector export --database URL --from D --to D --format csv|json [-o F]
    checkpoint-collector devices --database URL

``--database`` is a path or ``sqlite:///path`` (SQLite) or ``postgresql://…`` (PostgreSQL);
``CHECKPOINT_COLLECTOR_DATABASE`` may give it instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.core.days import DEFAULT_TIMEZONE
from appliance.errors import ServiceError, UsageError, run_command
from collector.db import PostgresDatabase, SqliteDatabase, open_database
from collector.services import auth, enrollment, report_files, reports
from collector.services.base import iso

Handler = Callable[[argparse.Namespace], int]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Parser(argparse.ArgumentParser):
    """Bad usage is one line naming the command and the argument, and exit 2 (argparse would
    print its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def duration(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s`` or plain seconds: a code's lifetime, 1 s to 366 days."""
    match = _DURATION.match(text.lower())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 7d, 12h or 30m")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 1 <= seconds <= enrollment.MAX_CODE_LIFETIME_S:
        raise argparse.ArgumentTypeError(f"{text!r}: a code lasts from 1 s to 366 days")
    return seconds


def _whole(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: give {what} {low}..{high}")
    return value


def token_days(text: str) -> int:
    return _whole(text, 1, enrollment.MAX_TOKEN_DAYS, "days")


def port(text: str) -> int:
    return _whole(text, 1, 65535, "a port")


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r}") from None


def _database(args: argparse.Namespace) -> SqliteDatabase | PostgresDatabase:
    url = args.database or os.environ.get("CHECKPOINT_COLLECTOR_DATABASE")
    if not url:
        raise UsageError("no database: pass --database PATH|sqlite:///…|postgresql://…")
    return open_database(url)


def _read_key(path: Path) -> bytes:
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the province key {path}: {exc.strerror}") from None
    from appliance.core.tokens import SECRET_LENGTH

    if len(secret) != SECRET_LENGTH:
        raise UsageError(
            f"the province key {path} must be {SECRET_LENGTH} bytes, it has {len(secret)}"
        )
    return secret


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    # Imported here, not at the top: the admin commands need no web stack, and an older
    # release's models can be put in place before the routes are built (tests do).
    from collector.api import Settings, create_app

    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (args.tls_cert, args.tls_key):
        if path is not None and not path.is_file():
            raise UsageError(f"no such file: {path}")
    secret = _read_key(args.province_key) if args.province_key else None
    db = _database(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not args.tls_cert:
        print(
            "checkpoint-collector: serving plain HTTP; door units need HTTPS"
            " (--tls-cert/--tls-key, or a TLS reverse proxy in front)",
            file=sys.stderr,
        )
    app = create_app(Settings(db=db, zone=args.timezone, province_secret=secret))
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
            ssl_keyfile=str(args.tls_key) if args.tls_key else None,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_graceful_shutdown=5,
        )
    finally:
        db.close()
    return 0


def cmd_codes_create(args: argparse.Namespace) -> int:
    db = _database(args)
    try:
        code = enrollment.create_code(
            db,
            agency=args.agency,
            door=args.door,
            checkpoint_id=args.id,
            expires_s=args.expires,
            token_days=args.token_days,
            now=time.time(),
        )
    finally:
        db.close()
    if args.json:
        print(
            json.dumps(
                {
                    "code": code.code,
                    "agency": code.agency,
                    "door": code.door,
                    "checkpoint_id": code.checkpoint_id,
                    "expires_at": iso(code.expires_at),
                },
                ensure_ascii=False,
            )
        )
    else:
        print(code.code)
        print(
            f"for {code.agency} · {code.door}, valid until {iso(code.expires_at)}, usable once",
            file=sys.stderr,
        )
    return 0


def cmd_codes_reenroll(args: argparse.Namespace) -> int:
    db = _database(args)
    try:
        code = enrollment.reenroll_code(db, args.id, now=time.time(), expires_s=args.expires)
    finally:
        db.close()
    print(code.code)
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    db = _database(args)
    try:
        token = auth.create_role_token(
            db, args.role, label=args.label or args.role, now=time.time(), days=args.days
        )
    finally:
        db.close()
    print(token)
    print(f"a {args.role} token; it is shown only now", file=sys.stderr)
    return 0


def _days(args: argparse.Namespace) -> None:
    """A range the service would refuse is bad usage, said before the database is opened."""
    try:
        reports.check_days(args.first, args.last)
    except ServiceError as exc:
        raise UsageError(str(exc)) from None


def cmd_report(args: argparse.Namespace) -> int:
    _days(args)
    db = _database(args)
    try:
        rows = reports.adoption(db, args.first, args.last)
    finally:
        db.close()
    if args.format == "csv":
        sys.stdout.write(report_files.adoption_csv(rows, args.lang))
    else:
        report = report_files.adoption_json(rows, args.first, args.last)
        print(json.dumps(report, ensure_ascii=False))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    _days(args)
    db = _database(args)
    try:
        rows = reports.entries(db, args.first, args.last)
        chunks = (
            report_files.export_csv(rows, args.timezone, args.lang)
            if args.format == "csv"
            else report_files.export_jsonl(rows, args.timezone)
        )
        if args.output in (None, "-"):
            for chunk in chunks:
                sys.stdout.write(chunk)
        else:
            target = Path(args.output)
            partial = target.with_name(target.name + ".part")
            with partial.open("w", encoding="utf-8", newline="") as out:
                for chunk in chunks:
                    out.write(chunk)
            partial.replace(target)  # never a half-written file under the final name
    finally:
        db.close()
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    db = _database(args)
    try:
        units = reports.units(db)
    finally:
        db.close()
    for item in units:
        print(json.dumps(item, ensure_ascii=False))
    return 0


Subparsers = Any  # argparse's _SubParsersAction, which it does not export


def _with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument(
        "--database",
        metavar="URL",
        help="a path or sqlite:///path (SQLite), or postgresql://… (PostgreSQL)",
    )
    return p


def _add_serve(sub: Subparsers) -> None:
    p = _with_db(sub.add_parser("serve", help="run the collector (uvicorn)"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=port, default=8443, help="port (8443)")
    p.add_argument("--tls-cert", type=Path, metavar="F", help="server certificate chain (PEM)")
    p.add_argument("--tls-key", type=Path, metavar="F", help="its private key (PEM)")
    p.add_argument(
        "--province-key", type=Path, metavar="F", help="the province secret, for exposure checks"
    )
    p.add_argument(
        "--timezone", type=zone, default=ZoneInfo(DEFAULT_TIMEZONE), help="for local days"
    )
    p.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(handler=cmd_serve)


def _add_codes(sub: Subparsers) -> None:
    p = sub.add_parser("codes", help="one-time enrollment codes")
    codes = p.add_subparsers(dest="codes_command", metavar="ACTION", required=True)
    lifetime = enrollment.DEFAULT_CODE_LIFETIME_S
    q = _with_db(codes.add_parser("create", help="a code for one door unit"))
    q.add_argument("--agency", required=True)
    q.add_argument("--door", required=True)
    q.add_argument("--id", help="the checkpoint ID to assign (default: generated)")
    q.add_argument("--expires", type=duration, default=lifetime, help="lifetime (7d)")
    q.add_argument(
        "--token-days",
        type=token_days,
        default=enrollment.DEFAULT_TOKEN_DAYS,
        help=f"how long the unit's token lasts ({enrollment.DEFAULT_TOKEN_DAYS} days)",
    )
    q.add_argument("--json", action="store_true", help="one JSON object instead of the code")
    q.set_defaults(handler=cmd_codes_create)
    q = _with_db(codes.add_parser("reenroll", help="a code giving an enrolled unit a new token"))
    q.add_argument("--id", required=True, help="the checkpoint ID")
    q.add_argument("--expires", type=duration, default=lifetime, help="lifetime (7d)")
    q.set_defaults(handler=cmd_codes_reenroll)


def _add_tokens(sub: Subparsers) -> None:
    p = sub.add_parser("tokens", help="tokens for officials, the health authority, admins")
    tokens = p.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    q = _with_db(tokens.add_parser("create", help="print a new role token"))
    q.add_argument("--role", required=True, choices=auth.ROLES)
    q.add_argument("--label", help="who holds it")
    q.add_argument(
        "--days",
        type=token_days,
        help=f"lifetime, 1..{enrollment.MAX_TOKEN_DAYS} days (default: until revoked)",
    )
    q.set_defaults(handler=cmd_tokens_create)


def _add_report_and_export(sub: Subparsers) -> None:
    for name, handler, formats, default, text in (
        ("report", cmd_report, ("json", "csv"), "json", "adoption per agency and day"),
        ("export", cmd_export, ("csv", "json"), "csv", "every entry of the province"),
    ):
        p = _with_db(sub.add_parser(name, help=text))
        p.add_argument("--from", dest="first", type=day, required=True, metavar="YYYY-MM-DD")
        p.add_argument("--to", dest="last", type=day, required=True, metavar="YYYY-MM-DD")
        p.add_argument("--format", choices=formats, default=default)
        p.add_argument(
            "--lang", choices=("vi", "en"), default="vi", help="CSV headers (vi by default)"
        )
        if name == "export":
            p.add_argument("-o", "--output", metavar="F", help="file (default: stdout)")
            p.add_argument("--timezone", type=zone, default=ZoneInfo(DEFAULT_TIMEZONE))
        p.set_defaults(handler=handler)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="checkpoint-collector",
        description="The provincial server of Checkpoint door units, and its admin commands.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_serve(sub)
    _add_codes(sub)
    _add_tokens(sub)
    _add_report_and_export(sub)
    p = _with_db(sub.add_parser("devices", help="enrolled units, one JSON object per line"))
    p.set_defaults(handler=cmd_devices)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    return run_command("checkpoint-collector", handler, args)


if __name__ == "__main__":
    sys.exit(main())
