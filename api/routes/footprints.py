"""``POST /api/footprints``: page views from a browser tracker or another service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from api.deps import ProducerDep, SettingsDep
from api.enrich import enrich
from schemas.footprint import FootprintIn
from schemas.timepolicy import TimePolicy

router = APIRouter(prefix="/api/footprints", tags=["footprints"])

_ONE = TypeAdapter(FootprintIn)
_MANY = TypeAdapter(list[FootprintIn])
# Inlined: the body is parsed by hand (one or a list), so FastAPI does not register the model.
_ITEM = FootprintIn.model_json_schema()
_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_ITEM, {"type": "array", "items": _ITEM}]},
                "example": {
                    "method": "GET",
                    "link": "/posts/42",
                    "footprint_time": "2026-11-22T09:30:00Z",
                },
            }
        },
    }
}


def _client_ip(request: Request, trust_forwarded: bool) -> str:
    if trust_forwarded:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else ""


def _check_times(items: list[FootprintIn], policy: TimePolicy, many: bool) -> None:
    """422 naming each footprint dated outside the event-time policy (against now)."""
    now = datetime.now(UTC)
    errors = []
    for i, item in enumerate(items):
        reason = policy.violation(item.footprint_time, now)
        if reason:
            loc = ("body", i, "footprint_time") if many else ("body", "footprint_time")
            errors.append({"type": "event_time", "loc": loc, "msg": reason})
    if errors:
        raise RequestValidationError(errors)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_SCHEMA,
    responses={
        413: {
            "description": "Body over FOOTPRINT_MAX_BODY_BYTES (1 MiB by default) "
            "or more than FOOTPRINT_MAX_BATCH_FOOTPRINTS footprints"
        }
    },
)
async def post_footprints(
    request: Request, producer: ProducerDep, settings: SettingsDep
) -> dict[str, Any]:
    """Accept one footprint or a list; they are counted and stored asynchronously."""
    raw = await request.body()
    # pydantic's own JSON parser: strict about escapes, number ranges and nesting depth.
    many = raw.lstrip()[:1] == b"["
    try:
        items = _MANY.validate_json(raw) if many else [_ONE.validate_json(raw)]
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        ) from None
    if len(items) > settings.max_batch_footprints:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"at most {settings.max_batch_footprints} footprints per request "
            "(FOOTPRINT_MAX_BATCH_FOOTPRINTS)",
        )
    _check_times(items, settings.time_policy, many)
    ip = _client_ip(request, settings.trust_forwarded_for)
    agent = request.headers.get("user-agent", "")
    ids = []
    for item in items:
        footprint = enrich(item, ip=ip, user_agent=agent, secret=settings.visitor_salt_secret)
        producer.offer(footprint)
        ids.append(str(footprint.event_id))
    return {"accepted": len(ids), "event_ids": ids}
