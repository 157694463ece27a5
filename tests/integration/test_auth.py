"""REST and WebSocket auth on a running ``footprint run``: bad tokens are refused everywhere,
users reach only their own notifications, and the server's log holds no token and no client
address.

The endpoints that need a token are read from the served OpenAPI document (FastAPI marks each
operation behind ``HTTPBearer``) and must include the ones listed here: an endpoint that loses its
guard fails, and a new guarded one is tested without a change here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.auth import mint_token
from footprint.settings import load_settings
from tests.integration.conftest import (
    JWT_SECRET,
    Process,
    Served,
    Servers,
    footprint_run,
    make_env,
    wait_until,
)

pytestmark = pytest.mark.integration

SETTINGS = load_settings(jwt_secret=JWT_SECRET)
OTHER_SECRET = "another-secret-another-secret-0123456789"
STATS = {("GET", "/api/stats/live"), ("GET", "/api/stats/summary"), ("GET", "/api/stream/status")}
GUARDED = {
    ("POST", "/api/posts"),
    ("POST", "/api/posts/{post_id}/comments"),
    ("POST", "/api/users/{user_id}/follow"),
    ("POST", "/api/admin/penalties"),
    ("GET", "/api/notifications"),
    ("GET", "/api/notifications/unread-count"),
    ("POST", "/api/notifications/{notification_id}/read"),
    ("POST", "/api/notifications/read-all"),
    ("GET", "/api/stream/dead-letters"),
    *STATS,
}
# Dead letters hold what visitors and users sent: moderators only. The stats need a stats
# credential, today an admin token.
ADMIN_ONLY = {("POST", "/api/admin/penalties"), ("GET", "/api/stream/dead-letters"), *STATS}
VICTIM = "auth-victim"
BODIES: dict[str, dict[str, Any]] = {
    "/api/posts": {"title": "by an impostor"},
    "/api/posts/{post_id}/comments": {"body": "by an impostor"},
    "/api/admin/penalties": {"user_id": VICTIM, "reason": "by an impostor"},
}
POLICY_VIOLATION = 1008
# Every token a test sent; none may reach the log.
USED: set[str] = set()


@dataclass
class Running(Served):
    env: dict[str, str]
    base: str
    ws: str
    proc: Process

    def api(self, user: str | None = None, *, admin: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token(user, admin=admin)}"} if user else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def app(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("auth")
    env = make_env(servers, tmp)
    with footprint_run(env, tmp / "run.log") as (base, proc):
        yield Running(env, base, base.replace("http://", "ws://", 1) + "/ws", proc)


def token(user: str, *, admin: bool = False, ttl: float = 3600) -> str:
    minted = mint_token(SETTINGS, user, admin=admin, ttl=ttl)
    USED.add(minted)
    return minted


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _signed(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def bad_tokens() -> dict[str, str]:
    """Tokens that must get nobody in: forged, broken, expired, unsigned or incomplete."""
    now = int(time.time())
    claims = {"sub": "mallory", "iat": now, "exp": now + 3600}
    header, _, signature = mint_token(SETTINGS, "mallory").split(".")
    tokens = {
        "malformed": "not-a-jwt",
        "three garbage parts": "abc.def.ghi",
        "wrongly signed": mint_token(load_settings(jwt_secret=OTHER_SECRET), "mallory"),
        "tampered payload": f"{header}.{_b64({**claims, 'admin': True})}.{signature}",
        "signature stripped": f"{header}.{_b64(claims)}.",
        "expired": mint_token(SETTINGS, "mallory", ttl=-10),
        "alg none": jwt.encode({**claims, "admin": True}, None, algorithm="none"),
        "alg None, hand-made": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(claims)}.",
        "no exp": _signed({"sub": "mallory", "iat": now}),
        "no sub": _signed({"iat": now, "exp": now + 3600}),
        "not yet valid": _signed({**claims, "nbf": now + 3600}),
        "subject not a user id": _signed({**claims, "sub": "<script>alert(1)</script>"}),
        "subject not a string": _signed({**claims, "sub": 42}),
    }
    USED.update(tokens.values())
    return tokens


def bad_authorizations() -> dict[str, str | None]:
    """``Authorization`` header values (None: no header) that must get a 401."""
    valid = token("mallory")
    return {
        "no header": None,
        "bearer without a token": "Bearer",
        "valid token, wrong scheme": f"Token {valid}",
        "basic auth": "Basic " + base64.b64encode(b"mallory:secret").decode(),
        **{name: f"Bearer {tok}" for name, tok in bad_tokens().items()},
    }


def guarded_operations(app: Running) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the served OpenAPI document that requires a bearer token."""
    spec = httpx.get(app.base + "/openapi.json", timeout=10).json()
    return {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if any("HTTPBearer" in requirement for requirement in op.get("security", []))
    }


def concrete(path: str, op: dict[str, Any]) -> str:
    """The path with its parameters filled: integers with 1, strings with a user id."""
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = "1" if param.get("schema", {}).get("type") == "integer" else VICTIM
            path = path.replace("{" + param["name"] + "}", value)
    return path


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def test_every_guarded_endpoint_refuses_missing_bad_and_expired_tokens(app: Running) -> None:
    operations = guarded_operations(app)
    assert operations.keys() >= GUARDED, f"lost their guard: {GUARDED - operations.keys()}"
    wrong: list[str] = []
    attempts = 0
    with httpx.Client(base_url=app.base, timeout=30) as client:
        for (method, template), op in sorted(operations.items()):
            path = concrete(template, op)
            for name, authorization in bad_authorizations().items():
                headers = {"Authorization": authorization} if authorization is not None else {}
                # With a valid body and with none: no caller learns more than "401" first.
                for body in (BODIES.get(template, {}), None):
                    if body is None and method == "GET":
                        continue
                    r = client.request(method, path, json=body, headers=headers)
                    attempts += 1
                    challenge = r.headers.get("www-authenticate", "")
                    if r.status_code != 401 or not challenge.lower().startswith("bearer"):
                        wrong.append(
                            f"{method} {path} [{name}, body={body is not None}]: "
                            f"{r.status_code} {challenge!r} {r.text[:120]}"
                        )
        # A valid token is let through (the guard is not simply closed), a moderator's too.
        with app.api("auth-reader") as reader, app.api("auth-mod", admin=True) as mod:
            assert reader.get("/api/notifications").status_code == 200
            assert reader.get("/api/notifications/unread-count").status_code == 200
            penalty = {"user_id": "auth-reader", "reason": "positive control"}
            assert mod.post("/api/admin/penalties", json=penalty).status_code == 201

    with psycopg.connect(app.pg) as conn:
        done = conn.execute(
            "SELECT (SELECT count(*) FROM posts WHERE author_id = 'mallory')"
            " + (SELECT count(*) FROM comments WHERE author_id = 'mallory')"
            " + (SELECT count(*) FROM follows WHERE follower_id = 'mallory')"
            " + (SELECT count(*) FROM penalties WHERE moderator_id = 'mallory')"
        ).fetchone()
    print(
        f"auth rest: {len(operations)} guarded operations, {attempts} refused attempts, "
        f"{len(wrong)} wrong answers"
    )
    assert not wrong, f"{len(wrong)} not refused with 401 + WWW-Authenticate:\n" + "\n".join(
        wrong[:30]
    )
    assert done == (0,), "a refused request left something behind"


def test_only_moderators_reach_the_admin_endpoints(app: Running) -> None:
    operations = guarded_operations(app)
    now = int(time.time())
    not_admins = {
        "plain user": token(uid("plain")),
        "admin claim as a string": _signed({"sub": uid("str"), "exp": now + 600, "admin": "true"}),
        "admin claim as 1": _signed({"sub": uid("one"), "exp": now + 600, "admin": 1}),
    }
    USED.update(not_admins.values())
    wrong = []
    with httpx.Client(base_url=app.base, timeout=30) as client:
        for method, template in sorted(ADMIN_ONLY):
            path = concrete(template, operations[(method, template)])
            for name, tok in not_admins.items():
                r = client.request(
                    method,
                    path,
                    json=BODIES.get(template, {}),
                    headers={"Authorization": f"Bearer {tok}"},
                )
                if r.status_code != 403:
                    wrong.append(f"{method} {path} [{name}]: {r.status_code} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)
    with psycopg.connect(app.pg) as conn:
        row = conn.execute("SELECT count(*) FROM penalties WHERE reason = 'by an impostor'")
        assert row.fetchone() == (0,)


async def ws_outcome(app: Running, how: str, tok: str | None) -> str:
    """How ``/ws`` answers a token sent one way: ``closed 1008``, ``open`` or an error."""
    url, kwargs = app.ws, {"open_timeout": 10}
    if tok is not None and how == "header":
        kwargs["additional_headers"] = {"Authorization": f"Bearer {tok}"}
    elif tok is not None and how == "subprotocol":
        kwargs["subprotocols"] = ["bearer", tok]
    elif tok is not None:
        url += f"?token={tok}"
    try:
        async with connect(url, **kwargs) as ws:
            try:
                message = await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as e:
                return f"closed {e.rcvd.code if e.rcvd else None}"
            return f"open: {str(message)[:80]}"
    except InvalidStatus as e:
        return f"handshake refused with HTTP {e.response.status_code}"


def test_the_websocket_closes_with_1008_for_every_bad_token_in_every_transport(
    app: Running,
) -> None:
    tokens: dict[str, str | None] = {"none": None, "empty": "", **bad_tokens()}
    attempts = [
        (name, how, tok)
        for name, tok in tokens.items()
        for how in ("header", "subprotocol", "query")
        if not (how == "subprotocol" and tok == "")  # an empty subprotocol is not sendable
        and not (tok is None and how != "header")  # no token at all: one attempt is enough
    ]

    async def run() -> tuple[list[str], dict[str, str]]:
        outcomes = await asyncio.gather(*(ws_outcome(app, how, tok) for _, how, tok in attempts))
        valid = token(uid("wsuser"))
        controls = await asyncio.gather(
            *(ws_outcome(app, how, valid) for how in ("header", "subprotocol", "query"))
        )
        return list(outcomes), dict(zip(("header", "subprotocol", "query"), controls, strict=True))

    outcomes, controls = asyncio.run(run())
    wrong = [
        f"{name} via {how}: {outcome}"
        for (name, how, _), outcome in zip(attempts, outcomes, strict=True)
        if outcome != f"closed {POLICY_VIOLATION}"
    ]
    print(f"auth websocket: {len(attempts)} bad attempts, {len(wrong)} not closed with 1008")
    assert not wrong, "\n".join(wrong)
    assert all(c.startswith("open") and '"hello"' in c for c in controls.values()), controls


def test_no_user_reaches_another_users_notifications(app: Running) -> None:
    alice, bob, mod = uid("alice"), uid("bob"), uid("mod")
    with app.api(mod, admin=True) as m:
        for reason in ("first for bob", "second for bob"):
            assert m.post(
                "/api/admin/penalties", json={"user_id": bob, "reason": reason}
            ).is_success
    with app.api(bob) as b:
        items = wait_until(
            lambda: r if len(r := b.get("/api/notifications").json()["items"]) == 2 else None,
            what="bob's two notifications",
        )
    bob_ids = sorted(n["id"] for n in items)

    with app.api(alice) as a:
        assert a.get("/api/notifications").json()["items"] == []
        assert a.get("/api/notifications", params={"unread_only": True}).json()["items"] == []
        paged = a.get("/api/notifications", params={"before_id": bob_ids[-1] + 1}).json()
        assert paged["items"] == []
        assert a.get("/api/notifications/unread-count").json() == {"unread_count": 0}
        for notification_id in bob_ids:
            r = a.post(f"/api/notifications/{notification_id}/read")
            nobody = a.post(f"/api/notifications/{notification_id + 10**9}/read")
            assert r.status_code == nobody.status_code == 404, "bob's id looks like no id"
        assert a.post("/api/notifications/read-all").json()["marked"] == 0
    with app.api(bob) as b:
        assert b.get("/api/notifications/unread-count").json() == {"unread_count": 2}
        assert not any(n["is_read"] for n in b.get("/api/notifications").json()["items"])

    async def live() -> tuple[list[Any], list[Any]]:
        seen: dict[str, list[Any]] = {alice: [], bob: []}
        bobs_third = asyncio.Event()
        hellos = {alice: asyncio.Event(), bob: asyncio.Event()}

        async def read(user: str) -> None:
            headers = {"Authorization": f"Bearer {token(user)}"}
            async with connect(app.ws + "?last_id=0", additional_headers=headers) as ws:
                async for raw in ws:
                    seen[user].append(json.loads(raw))
                    if seen[user][-1]["type"] == "hello":
                        hellos[user].set()
                    if sum(m["type"] == "notification" for m in seen[bob]) == 3:
                        bobs_third.set()

        tasks = [asyncio.create_task(read(user)) for user in (alice, bob)]
        # Both sockets are open and subscribed once they have had their hello.
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in hellos.values())), 30)
        with app.api(mod, admin=True) as m:
            m.post("/api/admin/penalties", json={"user_id": bob, "reason": "third for bob"})
        await asyncio.wait_for(bobs_third.wait(), 30)
        await asyncio.sleep(0.5)  # anything meant for alice would have arrived by now
        for task in tasks:
            task.cancel()
        return seen[alice], seen[bob]

    seen_a, seen_b = asyncio.run(live())
    assert [x["type"] for x in seen_a] == ["hello"], seen_a
    assert seen_a[0]["unread_count"] == 0
    assert len([x for x in seen_b if x["type"] == "notification"]) == 3, seen_b
    assert {x["notification"]["user"] for x in seen_b if x["type"] == "notification"} == {bob}


ACCESS_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) |"WebSocket ')
CLIENT_ADDRESS = re.compile(r"127\.0\.0\.1:\d+|\('127\.0\.0\.1', \d+\)")


def test_the_log_holds_no_token_and_no_client_address(app: Running) -> None:
    # Whatever ran before, this test sends a token each way itself.
    user = uid("logged")
    with app.api(user) as client:
        client.get("/api/notifications")
        client.get("/api/notifications", params={"unread_only": "true"})

    async def sockets() -> None:
        for how in ("header", "subprotocol", "query"):
            await ws_outcome(app, how, token(user))
        await ws_outcome(app, "query", bad_tokens()["expired"])

    asyncio.run(sockets())
    # One request more: once its access line is in the log, so are the lines of those before.
    marker = f"/{uid('log-marker')}"
    with app.api() as client:
        assert client.get(marker).status_code == 404
    wait_until(
        lambda: marker in Path(app.proc.log).read_text(errors="replace"),
        timeout=10,
        what="the last request's access line",
    )
    # `footprint run` prints the dashboard's link with a token it minted for the operator (like
    # Jupyter); nothing a client sent may follow it into the log.
    log = "\n".join(
        line
        for line in Path(app.proc.log).read_text(errors="replace").splitlines()
        if not re.match(r"\s+Dashboard\s+http://127\.0\.0\.1:\d+/#token=[\w.-]+$", line)
    )
    leaked = sorted(name for name in USED if len(name) >= 16 and name in log)
    access = [line for line in log.splitlines() if ACCESS_LINE.search(line)]
    addressed = [line for line in access if CLIENT_ADDRESS.search(line)]
    print(
        f"auth log: {len(USED)} tokens checked, {len(access)} access lines, "
        f"{len(leaked)} tokens and {len(addressed)} client addresses found"
    )
    assert access, "no access lines to check: has the log format changed?"
    assert not leaked, f"{len(leaked)} tokens in the log"
    assert "token=" not in log, "a ?token= query string reached the log"
    assert not addressed, f"{len(addressed)} access lines name the client:\n" + "\n".join(
        addressed[:10]
    )
