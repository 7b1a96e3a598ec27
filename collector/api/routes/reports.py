"""What officials call: the adoption report and the province's entry export, in JSON or as the
CSV Excel opens."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from collector.api.deps import AppSettings, require_role
from collector.api.errors import refusals
from collector.api.routing import GzipRoute
from collector.services import report_files, reports

Fmt = Annotated[Literal["json", "csv"], Query(description="json or csv")]
Lang = Annotated[Literal["vi", "en"], Query(description="CSV headers: vi (default) or en")]
From = Annotated[date, Query(alias="from", description="first local day, YYYY-MM-DD")]
To = Annotated[
    date,
    Query(
        alias="to",
        description="last local day, YYYY-MM-DD: not before `from`, and at most ten years"
        f" ({reports.MAX_REPORT_DAYS} days) after it, or the request is refused with 422",
    ),
]
TEXT = {"schema": {"type": "string"}}
CSV = {"text/csv": TEXT}  # UTF-8 with a BOM, for Excel

router = APIRouter(route_class=GzipRoute, tags=["officials"])


@router.get(
    "/v1/reports/adoption",
    dependencies=[require_role("official", "health")],
    responses={
        200: {"description": "the report, as JSON or CSV", "content": CSV},
        **refusals(401, 403, 422),
    },
)
def adoption(
    first: From, last: To, settings: AppSettings, format: Fmt = "json", lang: Lang = "vi"
) -> Response:
    """Entries per agency and day: with app, no app detected, manual, adoption rate."""
    rows = reports.adoption(settings.db, first, last)
    if format == "csv":
        return Response(report_files.adoption_csv(rows, lang), media_type="text/csv; charset=utf-8")
    return JSONResponse(report_files.adoption_json(rows, first, last))


@router.get(
    "/v1/exports/entries",
    dependencies=[require_role("official")],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "every entry, as CSV or JSON lines",
            "content": {**CSV, "application/x-ndjson": TEXT},
        },
        **refusals(401, 403, 422),
    },
)
def export(
    first: From, last: To, settings: AppSettings, format: Fmt = "csv", lang: Lang = "vi"
) -> StreamingResponse:
    """Every entry of the province (no tokens, no personal data), streamed in time order."""
    reports.check_days(first, last)  # refused now: once streaming, the status is sent
    rows = reports.entries(settings.db, first, last)
    if format == "csv":
        return StreamingResponse(
            report_files.export_csv(rows, settings.zone, lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="entries-{first}.csv"'},
        )
    return StreamingResponse(
        report_files.export_jsonl(rows, settings.zone), media_type="application/x-ndjson"
    )
