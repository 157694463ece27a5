"""Private by default: every route of the app refuses an anonymous caller, except an allowlist.

The routes are enumerated from the app itself (``app.routes``: the OpenAPI ones and those left
out of the schema, ``/metrics``, the WebSockets, the static mount), so a route added later
without a credential fails here. No servers: the lifespan does not run, and a refused call never
reaches a client it would need.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from api.auth import mint_token
from api.main import create_app
from footprint.settings import Settings
from tests.unit.offline import offline_settings

# What anyone may call: ingest, liveness, and pages that carry no data (the dashboard page and
# its assets, the tracker, the API's own description).
PUBLIC: dict[tuple[str, str], str] = {
    ("POST", "/api/footprints"): "ingest: browsers and servers of tracked sites",
    ("POST", "/api/event"): "ingest: Plausible-shaped events from browsers and servers",
    ("GET", "/tracker.js"): "ingest: the tracker script",
    ("HEAD", "/tracker.js"): "ingest: the tracker script",
    ("GET", "/health"): "liveness probes",
    ("GET", "/"): "the dashboard page: no data, it asks for a token",
    ("HEAD", "/"): "the dashboard page",
    ("GET", "/openapi.json"): "the API's description, no data",
    ("HEAD", "/openapi.json"): "the API's description",
    ("GET", "/docs"): "the API's description",
    ("HEAD", "/docs"): "the API's description",
    ("GET", "/docs/oauth2-redirect"): "part of /docs",
    ("HEAD", "/docs/oauth2-redirect"): "part of /docs",
    ("GET", "/redoc"): "the API's description",
    ("HEAD", "/redoc"): "the API's description",
}
PUBLIC_MOUNTS = {"/static": "the dashboard's HTML, JS and CSS (no data)"}

# Routes that show visits or the stream: a plain user's token is not enough (403).
STATS_ROUTES = {
    ("GET", "/api/stats/live"),
    ("GET", "/api/stats/summary"),
    ("GET", "/api/stream/status"),
    ("GET", "/metrics"),
    ("POST", "/api/v2/query"),
    ("POST", "/api/v2/funnel"),
    ("PUT", "/api/v1/sites/goals"),
    ("GET", "/api/v1/sites/goals"),
    ("DELETE", "/api/v1/sites/goals/{goal_id}"),
    ("PUT", "/api/v1/sites/funnels"),
    ("GET", "/api/v1/sites/funnels"),
    ("DELETE", "/api/v1/sites/funnels/{funnel_id}"),
}

# Routes for moderators only: a plain user's token is 403 (and a site key or link too).
ADMIN_ROUTES = {
    ("GET", "/api/v1/users/{user_id}/export"),
    ("DELETE", "/api/v1/users/{user_id}"),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return offline_settings(tmp_path)


def _path(template: str) -> str:
    # Any value will do: the credential is checked before the path is validated.
    return re.sub(r"{[^}]+}", "1", template)


def http_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every HTTP route, schema or not, with its router's prefix."""
    # FastAPI keeps included routers as branches of app.routes; this walks into them.
    found = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Route) and context.path:
            found += [(method, context.path) for method in sorted(context.methods or ())]
    return found


def websocket_routes(app: FastAPI) -> list[str]:
    return [
        str(context.path)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIWebSocketRoute | WebSocketRoute)
    ]


def anonymous_answers(app: FastAPI, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """What each non-public route answers a caller with ``headers`` (none: anonymous)."""
    client = TestClient(app, headers=headers, raise_server_exceptions=False)
    answers: dict[str, Any] = {}
    for method, template in http_routes(app):
        if (method, template) in PUBLIC:
            continue
        r = client.request(method, _path(template))
        answers[f"{method} {template}"] = (r.status_code, r.headers.get("www-authenticate"))
    for template in websocket_routes(app):
        try:
            with client.websocket_connect(_path(template)) as ws:
                ws.receive_text()
                answers[f"WS {template}"] = "sent data"
        except WebSocketDisconnect as e:
            answers[f"WS {template}"] = f"closed {e.code}"
        except Exception as e:  # accepted, then failed on a store this test does not have
            answers[f"WS {template}"] = f"failed: {type(e).__name__}"
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, Mount) and context.path not in PUBLIC_MOUNTS:
            answers[f"MOUNT {context.path}"] = "not reviewed: add it to PUBLIC_MOUNTS or protect it"
    return answers


def test_every_route_refuses_anonymous_callers_except_ingest_and_pages(
    settings: Settings,
) -> None:
    app = create_app(settings)
    answers = anonymous_answers(app)
    open_ = {
        route: answer
        for route, answer in answers.items()
        if answer not in ((401, "Bearer"), "closed 1008")
    }
    assert not open_, f"these routes answer anonymous callers (not 401 + WWW-Authenticate): {open_}"
    # The enumeration did see the routes it is meant to guard.
    for route in ("GET /api/stats/live", "GET /metrics", "GET /api/stream/status", "WS /ws/live"):
        assert route in answers, f"{route} was not enumerated"
    assert {f"{m} {p}" for m, p in STATS_ROUTES} <= set(answers)
    assert {f"{m} {p}" for m, p in ADMIN_ROUTES} <= set(answers)


def test_a_route_added_without_a_credential_is_caught(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/api/stats/countries")
    async def countries() -> dict[str, int]:
        return {"KR": 3}

    answers = anonymous_answers(app)
    assert answers["GET /api/stats/countries"] == (200, None)


def test_public_routes_exist_and_answer_anonymously(settings: Settings) -> None:
    app = create_app(settings)
    routes = set(http_routes(app))
    assert set(PUBLIC) <= routes, f"allowlisted but gone: {set(PUBLIC) - routes}"
    client = TestClient(app)
    for method, path in (("GET", "/"), ("GET", "/tracker.js"), ("GET", "/static/app.js")):
        assert client.request(method, path).status_code == 200, path
    body = {"method": "GET", "link": "/landing"}
    assert client.post("/api/footprints", json=body).status_code == 202


def test_a_plain_user_token_cannot_read_stats(settings: Settings) -> None:
    app = create_app(settings)
    user = {"Authorization": f"Bearer {mint_token(settings, 'alice')}"}
    answers = anonymous_answers(app, headers=user)
    for method, path in STATS_ROUTES:
        status, _ = answers[f"{method} {path}"]
        assert status == 403, f"{method} {path} answered a plain user's token with {status}"
    for method, path in ADMIN_ROUTES:
        status, _ = answers[f"{method} {path}"]
        assert status == 403, f"{method} {path} answered a plain user's token with {status}"
    assert answers["WS /ws/live"] == "closed 1008"
    assert answers["WS /ws"] != "closed 1008", "the user's own inbox accepts the token"
    # The user's own routes accept the token (they fail later, on the stores this test lacks).
    assert answers["GET /api/notifications"][0] not in (401, 403)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic YWRtaW46YWRtaW4=", "missing token"),
        ("Bearer not.a.jwt", "invalid token"),
        ("Bearer ", "missing token"),
    ],
)
def test_a_bad_credential_is_401(settings: Settings, header: str, reason: str) -> None:
    client = TestClient(create_app(settings), headers={"Authorization": header})
    r = client.get("/api/stats/live")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert reason in r.json()["detail"]


def test_an_admin_token_passes_the_check(settings: Settings) -> None:
    app = create_app(settings)
    app.state.redis = object()  # never reached: the query is refused after the credential
    admin = {"Authorization": f"Bearer {mint_token(settings, 'mod', admin=True)}"}
    r = TestClient(app, headers=admin).get("/api/stats/live", params={"window": "2h"})
    assert r.status_code == 422, r.text


def test_a_site_no_store_can_hold_is_422_naming_it(settings: Settings) -> None:
    """A NUL in ``site`` is refused before a store sees it (PostgreSQL text cannot hold one)."""
    app = create_app(settings)
    app.state.postgres = app.state.clickhouse = object()  # never reached
    admin = {"Authorization": f"Bearer {mint_token(settings, 'mod', admin=True)}"}
    r = TestClient(app, headers=admin).get("/api/stats/summary", params={"site": "a\x00b"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "site"]
