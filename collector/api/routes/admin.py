"""What administrators call: enrollment codes for new doors (provisioning asks for one per
unit)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from collector import models
from collector.api.deps import AppSettings, require_role
from collector.api.errors import refusals
from collector.api.routing import CONTENT_ENCODING, GzipRoute
from collector.services import enrollment
from collector.services.base import iso

router = APIRouter(route_class=GzipRoute, tags=["admin"])


@router.post(
    "/v1/admin/codes",
    response_model=models.CodeReply,
    dependencies=[require_role("admin")],
    responses=refusals(400, 401, 403, 409, 413, 415, 422),
    openapi_extra=CONTENT_ENCODING,
)
def create_code(body: models.CodeRequest, settings: AppSettings) -> dict[str, Any]:
    """A one-time enrollment code for a door (provisioning asks for one per unit)."""
    code = enrollment.create_code(
        settings.db,
        agency=body.agency,
        door=body.door,
        checkpoint_id=body.checkpoint_id,
        expires_s=body.expires_in_s,
        now=settings.clock(),
    )
    return {
        "code": code.code,
        "agency": code.agency,
        "door": code.door,
        "checkpoint_id": code.checkpoint_id,
        "expires_at": iso(code.expires_at),
    }
