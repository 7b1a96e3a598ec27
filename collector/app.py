"""The collector's HTTP API (FastAPI). ``/openapi.json`` is the sync protocol's specification.

Every refusal is a JSON ``{"detail": "one line"}`` with a 4xx status that says what to do; a
database that is down is a 503 with ``Retry-After`` (the device backs off and retries); a
malformed record is a 422 naming the record and the field, never a 500.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import time
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from appliance.core.exposure import BluezoneCase, Case, GaenCase
from appliance.errors import BodyError, DatabaseError, ServiceError
from appliance.formats.cells import BOM, csv_safe
from collector import models, service
from collector.db import PostgresDatabase, SqliteDatabase

log = logging.getLogger("collector")

API_VERSION = "1"
MAX_BODY = 8 * 1024 * 1024  # compressed, as sent
MAX_INFLATED = 32 * 1024 * 1024  # after gzip: a small bomb must not fill the server's memory


class GzipRequest(Request):
    """A request whose body may be gzip (``Content-Encoding: gzip``), inflated with a bound."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            too_big = BodyError(413, f"request body over {MAX_BODY} bytes: send smaller batches")
            length = self.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY:
                raise too_big
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():  # counted as it comes: chunked bodies too
                size += len(chunk)
                if size > MAX_BODY:
                    raise too_big
                chunks.append(chunk)
            raw = b"".join(chunks)
            encoding = self.headers.get("content-encoding", "identity").strip().lower()
            if encoding == "gzip":
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                try:
                    raw = inflater.decompress(raw, MAX_INFLATED)
                except zlib.error as exc:
                    raise BodyError(400, f"request body is not valid gzip: {exc}") from None
                if inflater.unconsumed_tail:
                    raise BodyError(413, f"request body inflates past {MAX_INFLATED} bytes")
                if not inflater.eof:
                    raise BodyError(400, "request body is truncated gzip")
            elif encoding not in ("identity", ""):
                raise BodyError(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
            self._body = raw
        return self._body


class GzipRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            wrapped = GzipRequest(request.scope, request.receive)
            if (
                request.method == "POST"
                and request.url.path != "/v1/enroll"
                and "authorization" not in request.headers
            ):
                # No credentials: refuse before reading (and inflating) anything.
                return JSONResponse(
                    {"detail": "no bearer token: enroll the unit, or ask for a role token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if request.method in ("POST", "PUT", "PATCH"):
                try:
                    await wrapped.body()  # inflate now, so a bad body gets its own message
                except BodyError as exc:
                    return JSONResponse({"detail": str(exc)}, status_code=exc.status)
            return await original(wrapped)

        return handler


bearer = HTTPBearer(auto_error=False, description="a device token or a role token")
Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
Fmt = Annotated[Literal["json", "csv"], Query(description="json or csv")]
Lang = Annotated[Literal["vi", "en"], Query(description="CSV headers: vi (default) or en")]
From = Annotated[date, Query(alias="from", description="first local day, YYYY-MM-DD")]
To = Annotated[date, Query(alias="to", description="last local day, YYYY-MM-DD")]


@dataclass
class Settings:
    db: SqliteDatabase | PostgresDatabase
    zone: ZoneInfo
    province_secret: bytes | None = None
    clock: Callable[[], float] = time.time


def _field(loc: tuple[Any, ...]) -> str:
    """``("body", "records", 3, "entered_at")`` → ``records[3].entered_at``."""
    text = ""
    for part in loc:
        if part in ("body", "query", "header", "path"):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Checkpoint collector",
        version=API_VERSION,
        summary="The provincial server of Checkpoint door units: the sync protocol.",
        description=(
            "Door units enroll with a one-time code, then send their visits in gzip JSON"
            " batches (idempotent by record UUID) and a heartbeat that returns their alerts."
            " Officials fetch the adoption report and the entry export; the health authority"
            " runs the exposure check. Every request but enrollment carries"
            " `Authorization: Bearer <token>`."
        ),
    )
    app.router.route_class = GzipRoute
    app.state.settings = settings

    def now() -> float:
        return settings.clock()

    @app.exception_handler(ServiceError)
    async def _refused(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        # Refused credentials are an operator's business (a unit to re-enroll, or a probe).
        level = logging.WARNING if exc.status in (401, 403, 409, 410) else logging.INFO
        client = request.client.host if request.client else "?"
        log.log(level, "refused %s %s from %s: %s %s", request.method, request.url.path, client,
                exc.status, exc)  # fmt: skip
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "body: not valid JSON", "errors": []}, status_code=422)
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        message = f"{_field(tuple(first.get('loc', ())))}: {first.get('msg', 'invalid')}"
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        detail = [
            {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg")} for e in errors[:20]
        ]
        return JSONResponse({"detail": message, "errors": detail}, status_code=422)

    @app.exception_handler(DatabaseError)
    async def _database(request: Request, exc: DatabaseError) -> JSONResponse:
        log.error("database: %s", exc)
        return JSONResponse(
            {"detail": "the collector's database is unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    def token_of(creds: HTTPAuthorizationCredentials | None) -> str | None:
        return creds.credentials if creds is not None else None

    def guarded(work: Callable[[], Any]) -> Any:
        """Turn a database outage into a 503 (retry later), not a 500."""
        try:
            return work()
        except (ServiceError, DatabaseError):
            raise
        except Exception as exc:
            if _is_conflict(exc):
                # Two requests raced for the same row (one code, one new ID): the loser is told.
                raise ServiceError(409, "a concurrent request changed this; retry") from exc
            if _is_database_error(exc):
                raise DatabaseError(str(exc)) from exc
            raise

    # -- devices ----------------------------------------------------------------------------

    @app.post("/v1/enroll", response_model=models.EnrollReply, tags=["device"])
    def enroll(body: models.EnrollRequest) -> dict[str, Any]:
        """Exchange a one-time enrollment code for the unit's ID and bearer token."""
        result = guarded(
            lambda: service.enroll(settings.db, body.code, now=now(), hostname=body.hostname)
        )
        log.info("enrolled %s (%s, %s)", result.checkpoint_id, result.agency, result.door)
        return {
            "checkpoint_id": result.checkpoint_id,
            "token": result.token,
            "agency": result.agency,
            "door": result.door,
            "token_expires_at": service.iso(result.token_expires_at),
            "province_key": (
                base64.b64encode(settings.province_secret).decode()
                if settings.province_secret is not None
                else None
            ),
        }

    @app.post(
        "/v1/visits",
        response_model=models.IngestReply,
        tags=["device"],
        openapi_extra={
            "parameters": [
                {
                    "name": "Content-Encoding",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "enum": ["gzip", "identity"]},
                    "description": "gzip is expected; the body may be up to 8 MiB compressed",
                }
            ]
        },
    )
    def visits(body: models.VisitBatch, creds: Creds) -> dict[str, int]:
        """Store a batch of visits. Idempotent: a UUID already stored counts as a duplicate."""
        checkpoint = guarded(lambda: service.device(settings.db, token_of(creds), now=now()))
        records = [
            service.VisitRecord(
                r.uuid,
                r.kind,
                r.protocol,
                r.entered_at,
                r.left_at,
                r.clock_synced,
                r.via_sensor,
                tuple(r.tokens),
                tuple((t, day.isoformat()) for t, day in r.key_days.items()),
            )
            for r in body.records
        ]
        result = guarded(
            lambda: service.ingest(settings.db, checkpoint, records, now=now(), zone=settings.zone)
        )
        return {"received": result.received, "new": result.new, "duplicates": result.duplicates}

    @app.get("/v1/device", response_model=models.DeviceReply, tags=["device"])
    def whoami(creds: Creds) -> dict[str, Any]:
        """Who this token belongs to and until when (for `checkpoint doctor`); changes nothing."""
        checkpoint = guarded(lambda: service.device(settings.db, token_of(creds), now=now()))
        return {
            "checkpoint_id": checkpoint.id,
            "agency": checkpoint.agency,
            "door": checkpoint.door,
            "token_expires_at": service.iso(checkpoint.token_expires_at),
        }

    @app.post("/v1/heartbeat", response_model=models.HeartbeatReply, tags=["device"])
    def heartbeat(body: models.HeartbeatRequest, creds: Creds) -> dict[str, Any]:
        """Report the unit's health and acknowledge alerts; the reply carries its alerts."""
        checkpoint = guarded(lambda: service.device(settings.db, token_of(creds), now=now()))
        if len(json.dumps(body.health)) > 64 * 1024:
            raise ServiceError(413, "health report over 64 KiB")
        alerts = guarded(
            lambda: service.heartbeat(
                settings.db,
                checkpoint,
                health=body.health,
                acked=body.acked_alerts,
                now=now(),
                hostname=body.hostname,
            )
        )
        return {"server_time": now(), "alerts": alerts}

    # -- administration ---------------------------------------------------------------------

    @app.post("/v1/admin/codes", response_model=models.CodeReply, tags=["admin"])
    def create_code(body: models.CodeRequest, creds: Creds) -> dict[str, Any]:
        """A one-time enrollment code for a door (provisioning asks for one per unit)."""
        guarded(lambda: service.role(settings.db, token_of(creds), ("admin",), now=now()))
        code = guarded(
            lambda: service.create_code(
                settings.db,
                agency=body.agency,
                door=body.door,
                checkpoint_id=body.checkpoint_id,
                expires_s=body.expires_in_s,
                now=now(),
            )
        )
        return {
            "code": code.code,
            "agency": code.agency,
            "door": code.door,
            "checkpoint_id": code.checkpoint_id,
            "expires_at": service.iso(code.expires_at),
        }

    # -- officials --------------------------------------------------------------------------

    @app.get("/v1/reports/adoption", tags=["officials"])
    def adoption(
        first: From, last: To, creds: Creds, format: Fmt = "json", lang: Lang = "vi"
    ) -> Response:
        """Entries per agency and day: with app, no app detected, manual, adoption rate."""
        guarded(
            lambda: service.role(settings.db, token_of(creds), ("official", "health"), now=now())
        )
        rows = guarded(lambda: service.adoption(settings.db, first, last))
        if format == "csv":
            return Response(adoption_csv(rows, lang), media_type="text/csv; charset=utf-8")
        return JSONResponse(adoption_json(rows, first, last))

    @app.get("/v1/exports/entries", tags=["officials"])
    def export(
        first: From, last: To, creds: Creds, format: Fmt = "csv", lang: Lang = "vi"
    ) -> StreamingResponse:
        """Every entry of the province (no tokens, no personal data), streamed in time order."""
        guarded(lambda: service.role(settings.db, token_of(creds), ("official",), now=now()))
        guarded(lambda: service.check_days(first, last))
        rows = service.entries(settings.db, first, last)
        if format == "csv":
            return StreamingResponse(
                export_csv(rows, settings.zone, lang),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="entries-{first}.csv"'},
            )
        return StreamingResponse(
            export_jsonl(rows, settings.zone), media_type="application/x-ndjson"
        )

    # -- health authority -------------------------------------------------------------------

    @app.post("/v1/exposure/check", response_model=models.ExposureReply, tags=["health"])
    def exposure(body: models.ExposureRequest, creds: Creds) -> dict[str, Any]:
        """Find a confirmed case's visits at every checkpoint, with who else was there; each
        checkpoint visited gets an exposure alert on its next heartbeat."""
        guarded(lambda: service.role(settings.db, token_of(creds), ("health",), now=now()))
        secret = settings.province_secret
        if secret is None:
            raise ServiceError(503, "the collector has no province key (serve --province-key FILE)")
        key = bytes.fromhex(body.key)
        case: Case
        if body.protocol == "bluezone":
            assert body.first_day is not None
            case = BluezoneCase(daily_key=key, first_day=body.first_day, days=body.days)
        else:
            assert body.interval is not None
            case = GaenCase(tek=key, first_interval=body.interval)
        matches = guarded(lambda: service.exposure_check(settings.db, secret, case, now=now()))
        return {
            "matches": [m.as_json(settings.zone) for m in matches],
            "checkpoints_alerted": len({m.checkpoint_id for m in matches}),
        }

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness, and whether the database answers."""
        with settings.db.transaction() as tx:
            tx.one("SELECT 1")
        return {"status": "ok", "database": settings.db.engine}

    return app


def _is_conflict(exc: BaseException) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.IntegrityError):
        return True
    try:
        import psycopg

        return isinstance(exc, psycopg.IntegrityError)
    except ImportError:  # pragma: no cover
        return False


def _is_database_error(exc: BaseException) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import psycopg
        import psycopg_pool

        return isinstance(exc, psycopg.Error | psycopg_pool.PoolTimeout)
    except ImportError:  # pragma: no cover - psycopg is a collector dependency
        return False


# -- report and export formats (shared with the admin commands) ------------------------------


def adoption_json(rows: list[service.AdoptionRow], first: date, last: date) -> dict[str, Any]:
    app = sum(r.app for r in rows)
    no_app = sum(r.no_app for r in rows)
    manual = sum(r.manual for r in rows)
    total = service.AdoptionRow("total", "", app, no_app, manual).as_json()
    del total["day"], total["agency"]
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "rows": [r.as_json() for r in rows],
        "total": total,
    }


ADOPTION_HEADERS = ("day", "agency", "app", "no_app", "manual", "total", "adoption_rate")
# What officials read in Excel: Vietnamese by default, English on request (lang=en).
CSV_HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "adoption": {
        "en": ADOPTION_HEADERS,
        "vi": ("Ngày", "Cơ quan", "Có ứng dụng", "Không phát hiện ứng dụng", "Ghi tay", "Tổng",
               "Tỷ lệ cài đặt"),
    },
    "entries": {
        "en": service.EXPORT_COLUMNS,
        "vi": ("Mã lượt vào", "Điểm kiểm soát", "Cơ quan", "Cửa", "Loại", "Ứng dụng", "Giờ vào",
               "Giờ ra", "Đồng hồ đã đồng bộ", "Qua cảm biến"),
    },
}  # fmt: skip
KIND_LABELS = {
    "en": {"app": "app", "no_app": "no_app", "manual": "manual"},
    "vi": {"app": "Có ứng dụng", "no_app": "Không phát hiện ứng dụng", "manual": "Ghi tay"},
}


def adoption_csv(rows: list[service.AdoptionRow], lang: str = "vi") -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS["adoption"][lang])
    for row in rows:
        data = row.as_json()
        writer.writerow([csv_safe(data[h]) for h in ADOPTION_HEADERS])
    return out.getvalue()


def _local(t: float | None, zone: ZoneInfo) -> str:
    return "" if t is None else datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def export_csv(rows: Iterator[tuple[Any, ...]], zone: ZoneInfo, lang: str = "vi") -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    yield BOM
    writer.writerow(CSV_HEADERS["entries"][lang])
    kinds = KIND_LABELS[lang]
    for n, row in enumerate(rows, 1):
        writer.writerow(
            [
                *(csv_safe(v) for v in row[:4]),
                kinds.get(row[4], row[4]),
                csv_safe(row[5]),
                _local(row[6], zone),
                _local(row[7], zone),
                int(row[8]),
                int(row[9]),
            ]
        )
        if n % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def export_jsonl(rows: Iterator[tuple[Any, ...]], zone: ZoneInfo) -> Iterator[str]:
    for row in rows:
        item = dict(zip(service.EXPORT_COLUMNS, row, strict=True))
        item["entered_at"] = datetime.fromtimestamp(row[6], UTC).isoformat()
        item["left_at"] = (
            None if row[7] is None else datetime.fromtimestamp(row[7], UTC).isoformat()
        )
        item["entered_local"] = _local(row[6], zone)
        item["clock_synced"] = bool(row[8])
        item["via_sensor"] = bool(row[9])
        yield json.dumps(item, ensure_ascii=False) + "\n"
