"""``POST /api/event``: page views and custom events in the shape of Plausible's Events API.

Plausible's own tracker (npm ``@plausible-analytics/tracker``, ``endpoint`` pointed here) and
server-side clients written for Plausible send to Footprint unchanged. Each event becomes a
footprint through the same enrichment and producer as ``POST /api/footprints``: the visitor id
from the day's salt, the site, the IP (``X-Forwarded-For`` from a trusted proxy) and the
``User-Agent``; the referrer is cleaned the same way.

As Plausible: ``202 ok`` when taken, ``400`` when the body is not a valid event (here with
``{"detail": [{type, loc, msg}]}`` naming each field); Plausible's ``engagement`` events (time
on page, scroll depth) are answered ``202`` and not stored, they are not events of the site.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import TypeAdapter, ValidationError

from api.deps import ProducerDep, SaltsDep, SettingsDep
from api.ingest import check_ingest_sites
from api.models.events import PlausibleEvent
from footprint.client_ip import client_ip, forwarded_for
from footprint.enrich import enrich, utm_from_query
from footprint.schema import MAX_PROPS, FootprintIn

__all__ = ["ENGAGEMENT", "EventRefused", "footprint_in", "parse_event", "router"]

router = APIRouter(prefix="/api/event", tags=["events"])

ENGAGEMENT = "engagement"
_EVENT = TypeAdapter(PlausibleEvent)
# Where a footprint's field came from in the event's body, for error messages.
_SOURCE = {"link": "url", "site": "domain", "name": "name", "props": "props"}
_SOURCE.update({k: "url" for k in ("utm_source", "utm_medium", "utm_campaign")})
_SOURCE.update({k: "url" for k in ("utm_term", "utm_content")})
_LONG = {"n": "name", "u": "url", "d": "domain", "r": "referrer", "p": "props", "$": "revenue"}
_LONG.update({"i": "interactive", "h": "hashMode"})


class EventRefused(Exception):
    """The body is not a valid event: ``errors`` name each field, as the 422 handler does."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def _issue(loc: tuple[Any, ...], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"type": kind, "loc": ["body", *loc], "msg": msg}


def _text(value: object) -> str | None:
    """A prop's value as text, as the page's JavaScript would print it (true, 3, 1.5)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    raise TypeError


def _props(given: dict[str, object], problems: list[dict[str, Any]]) -> dict[str, str]:
    """The props as text, null values left out; what is not a scalar is a problem."""
    props = {}
    for index, (key, value) in enumerate(given.items()):
        try:
            text = _text(value)
        except TypeError:
            # The position, not the key: a key may be long or hostile, and is not echoed.
            problems.append(
                _issue(("props", index), "a value must be a string, a number or a boolean")
            )
            continue
        if text is not None:
            props[key] = text
    if len(props) > MAX_PROPS:
        problems.append(_issue(("props",), f"at most {MAX_PROPS} properties, not {len(props)}"))
    return props


def parse_event(raw: bytes) -> PlausibleEvent:
    """The event in a body; ``EventRefused`` naming each invalid field."""
    try:
        return _EVENT.validate_json(raw)
    except ValidationError as e:
        raise EventRefused(
            [
                _issue(
                    (_LONG.get(str(loc[0]), loc[0]), *loc[1:]) if (loc := err["loc"]) else (),
                    err["msg"],
                    err["type"],
                )
                for err in e.errors(include_url=False)
            ]
        ) from None


def footprint_in(event: PlausibleEvent) -> FootprintIn:
    """The footprint an event reports; ``EventRefused`` naming the event's field at fault."""
    problems = []
    if event.revenue is not None:
        problems.append(_issue(("revenue",), "revenue is not supported by Footprint"))
    if not event.name:
        problems.append(_issue(("name",), "must not be empty"))
    if not event.domain:
        problems.append(_issue(("domain",), "must not be empty"))
    try:
        parts = urlsplit(event.url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as e:
        problems.append(_issue(("url",), f"not a URL: {e}"))
        parts = None
    if parts is not None and not (parts.scheme and parts.netloc):
        problems.append(_issue(("url",), "must be an absolute URL, e.g. https://example.com/"))
    props = _props(event.props or {}, problems)
    if problems or parts is None:
        raise EventRefused(problems)
    link = parts.path or "/"
    if event.hash_mode and parts.fragment:
        link += "#" + parts.fragment
    fields: dict[str, Any] = {
        "method": "GET",  # what the visitor's browser did to see the page
        "link": link,
        "referrer": event.referrer or None,
        "site": event.domain,
        "name": event.name,
        "props": props,
        **utm_from_query(parts.query),
    }
    try:
        return FootprintIn.model_validate(fields)
    except ValidationError as e:
        raise EventRefused(
            [
                _issue(
                    (_SOURCE.get(str(err["loc"][0]), str(err["loc"][0])), *err["loc"][1:]),
                    err["msg"],
                    err["type"],
                )
                for err in e.errors(include_url=False)
            ]
        ) from None


_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            media: {
                "schema": PlausibleEvent.model_json_schema(by_alias=True),
                "example": {
                    "name": "Signup",
                    "url": "https://shop.example/pricing?utm_source=newsletter",
                    "domain": "shop.example",
                    "referrer": "https://news.example/",
                    "props": {"plan": "pro"},
                },
            }
            # Plausible's tracker sends text/plain: a CORS "simple" request, no preflight.
            for media in ("application/json", "text/plain")
        },
    }
}
_OK = {"content": {"text/plain": {"schema": {"type": "string", "enum": ["ok"]}}}}


def _json(model: str, description: str) -> dict[str, Any]:
    # Spelled out: with a text/plain route, FastAPI would file a "model" under text/plain.
    ref = {"$ref": f"#/components/schemas/{model}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=PlainTextResponse,
    openapi_extra=_SCHEMA,
    responses={
        202: {"description": "Taken for counting and storing (asynchronously)", **_OK},
        400: _json(
            "ValidationFailed",
            "Not a valid event (missing name, url or domain, a relative URL, props over the "
            "limits, revenue): each invalid field is named, its value is not echoed",
        ),
        413: _json("Error", "Body over FOOTPRINT_MAX_BODY_BYTES (1 MiB by default)"),
    },
)
async def post_event(
    request: Request, producer: ProducerDep, settings: SettingsDep, salts: SaltsDep
) -> Any:
    """Record a page view or a custom event (Plausible's Events API)."""
    raw = await request.body()
    try:
        event = parse_event(raw)
        if event.name == ENGAGEMENT:
            return PlainTextResponse("ok", status_code=status.HTTP_202_ACCEPTED)
        item = footprint_in(event)
    except EventRefused as e:
        return JSONResponse({"detail": e.errors}, status_code=status.HTTP_400_BAD_REQUEST)
    peer = request.client.host if request.client else ""
    headers = request.headers
    footprint = enrich(
        item,
        ip=client_ip(peer, forwarded_for(headers.raw), settings.trusted_proxies),
        user_agent=headers.get("user-agent", ""),
        site=item.site or "",
        salt=await salts.current(),
    )
    try:
        check_ingest_sites(request, [footprint], settings.cors_origins, many=False)
    except RequestValidationError as e:  # an unknown site: 400 naming it, as Plausible's API
        detail = [
            {"type": x["type"], "loc": ["body", "domain"], "msg": x["msg"]} for x in e.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_400_BAD_REQUEST)
    producer.offer(footprint)
    return PlainTextResponse("ok", status_code=status.HTTP_202_ACCEPTED)
