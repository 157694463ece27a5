"""``POST /api/footprints``: page views from a browser tracker or another service.

Each footprint's site (the body's ``site``, else the page's ``Origin``, else the ``Host``) must
be registered (``api/sites.py``), or the request is refused with a 422 naming ``site`` and
counted; with ``FOOTPRINT_AUTO_REGISTER_SITES`` it is registered instead. A browser (a request
with an ``Origin``) posts only its own site's footprints, unless ``FOOTPRINT_CORS_ORIGINS``
lists its origin (403 otherwise).
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from api.deps import ProducerDep, SaltsDep, SettingsDep
from api.ingest import check_ingest_sites
from api.models.errors import errors
from api.models.footprints import Accepted
from footprint.client_ip import client_ip, forwarded_for
from footprint.enrich import enrich, site_of
from footprint.schema import Footprint, FootprintIn
from footprint.timepolicy import TimePolicy

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


# Validating and enriching cost ~40 µs a footprint with a known user agent, ~70 µs with a new
# one (ua-parser): a batch of 1,000 would hold the event loop, and every other request, for
# 70 ms. Big bodies are handled in this one thread instead: the work holds the GIL, so more
# threads would only take more turns away from the loop; concurrent batches queue here.
_ENRICHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="footprint-enrich")
OFF_LOOP_BYTES = 8192  # ~30 footprints; below, the hop to the thread costs more than it saves


def _footprints(
    raw: bytes,
    *,
    max_items: int,
    policy: TimePolicy,
    ip: str,
    user_agent: str,
    site: str,
    salt: bytes,
) -> list[Footprint]:
    # pydantic's own JSON parser: strict about escapes, number ranges and nesting depth.
    many = raw.lstrip()[:1] == b"["
    items = _MANY.validate_json(raw) if many else [_ONE.validate_json(raw)]
    if len(items) > max_items:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"at most {max_items} footprints per request (FOOTPRINT_MAX_BATCH_FOOTPRINTS)",
        )
    _check_times(items, policy, many)
    return [enrich(i, ip=ip, user_agent=user_agent, site=site, salt=salt) for i in items]


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
    response_model=Accepted,
    openapi_extra=_SCHEMA,
    responses=errors(
        403,
        413,
        422,
        notes={
            413: "Body over FOOTPRINT_MAX_BODY_BYTES (1 MiB by default) "
            "or more than FOOTPRINT_MAX_BATCH_FOOTPRINTS footprints",
            403: "A page posting another site's footprints (its Origin is not the site)",
            422: "Invalid footprints, or a site that is not registered (loc names site)",
        },
    ),
)
async def post_footprints(
    request: Request, producer: ProducerDep, settings: SettingsDep, salts: SaltsDep
) -> dict[str, Any]:
    """Accept one footprint or a list; they are counted and stored asynchronously."""
    raw = await request.body()
    peer = request.client.host if request.client else ""
    headers = request.headers
    work = functools.partial(
        _footprints,
        raw,
        max_items=settings.max_batch_footprints,
        policy=settings.time_policy,
        ip=client_ip(peer, forwarded_for(headers.raw), settings.trusted_proxies),
        user_agent=headers.get("user-agent", ""),
        # The site the tracker runs on is the page's origin; a server posting has none.
        site=site_of(headers.get("origin") or headers.get("host", "")),
        salt=await salts.current(),
    )
    try:
        if len(raw) >= OFF_LOOP_BYTES:
            footprints = await asyncio.get_running_loop().run_in_executor(_ENRICHER, work)
        else:
            footprints = work()
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        ) from None
    check_ingest_sites(request, footprints, settings.cors_origins, raw.lstrip()[:1] == b"[")
    for footprint in footprints:
        producer.offer(footprint)
    return {"accepted": len(footprints), "event_ids": [str(f.event_id) for f in footprints]}
