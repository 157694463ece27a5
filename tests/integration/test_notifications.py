"""Notifications end to end: actions → outbox → Kafka → worker → PostgreSQL + Redis → /ws.

One ``footprint run`` process (API and worker) serves every test of this module; each test uses
its own users, so tests do not see each other's notifications.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.auth import mint_token
from footprint.migrate import apply_postgres
from footprint.settings import load_settings
from footprint.stack import PostgresServer, RedisServer
from schemas.community import CreatePost, FollowUser, PenaltyUser
from streams.sinks import Delivery, StoreRefused
from streams.sinks.notifications import PostgresInbox
from tests.integration.conftest import (
    JWT_SECRET,
    Process,
    Served,
    Servers,
    admin_headers,
    footprint_run,
    fresh_postgres_url,
    make_env,
    wait_until,
)
from tests.integration.traffic import consume_all, produce_raw

pytestmark = pytest.mark.integration

SETTINGS = load_settings(jwt_secret=JWT_SECRET)


@dataclass
class Running(Served):
    env: dict[str, str]
    base: str
    ws: str
    proc: Process

    def api(self, user: str | None = None, *, admin: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token(user, admin=admin)}"} if user else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)


def token(user: str, *, admin: bool = False, ttl: float = 3600) -> str:
    return mint_token(SETTINGS, user, admin=admin, ttl=ttl)


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def app(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("notifications")
    env = make_env(servers, tmp)
    with footprint_run(env, tmp / "run.log") as (base, proc):
        ws = base.replace("http://", "ws://", 1) + "/ws"
        yield Running(env, base, ws, proc)


class Tab:
    """A browser tab's WebSocket: collects every message it receives."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.messages: list[dict[str, Any]] = []
        self.closed: ConnectionClosed | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                self.messages.append(json.loads(raw))
        except ConnectionClosed as e:
            self.closed = e
        else:
            self.closed = self.conn.close_exc if hasattr(self.conn, "close_exc") else None

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "notification"]

    @property
    def ids(self) -> list[int]:
        return [m["id"] for m in self.notifications]

    async def wait(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.notifications) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.notifications)} of {count} notifications")
            await asyncio.sleep(0.02)

    async def hello(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not any(m["type"] == "hello" for m in self.messages):
            if time.monotonic() > deadline or self.closed:
                raise AssertionError(f"no hello: {self.messages} {self.closed}")
            await asyncio.sleep(0.01)
        return next(m for m in self.messages if m["type"] == "hello")

    async def close(self) -> None:
        await self.conn.close()
        self._task.cancel()


async def open_tab(
    app: Running,
    user: str,
    *,
    last_id: int | None = None,
    how: str = "header",
    tok: str | None = None,
) -> Tab:
    tok = tok if tok is not None else token(user)
    url = app.ws + (f"?last_id={last_id}" if last_id is not None else "")
    kwargs: dict[str, Any] = {"max_size": 2**22, "open_timeout": 30}
    if how == "header":
        kwargs["additional_headers"] = {"Authorization": f"Bearer {tok}"}
    elif how == "subprotocol":
        kwargs["subprotocols"] = ["bearer", tok]
    else:
        url += ("&" if "?" in url else "?") + f"token={tok}"
    tab = Tab(await connect(url, **kwargs))
    await tab.hello()
    return tab


def rows(app: Running, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(app.pg) as conn:
        return conn.execute(sql, params).fetchall()


def settled(app: Running) -> bool:
    """Every event is out of the outbox and committed by the worker (lag 0)."""
    status = httpx.get(app.base + "/api/stream/status", headers=admin_headers(), timeout=10).json()
    topic = app.env["FOOTPRINT_NOTIFICATIONS_TOPIC"]
    parts = [p for p in status["partitions"] if p["topic"] == topic]
    outbox = status["outbox"]
    return bool(outbox and outbox["backlog"] == 0 and parts) and all(p["lag"] == 0 for p in parts)


def test_a_post_reaches_each_of_1000_followers_live_and_not_the_author(app: Running) -> None:
    author = uid("author")
    followers = [f"{author}-f{i}" for i in range(1000)]
    with psycopg.connect(app.pg, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO users (id) VALUES (%s)", [(u,) for u in [author, *followers]])
        cur.executemany(
            "INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s)",
            [(f, author) for f in followers],
        )

    async def scenario() -> tuple[list[Tab], Tab, float]:
        tabs: list[Tab] = []
        for i in range(0, len(followers), 100):
            tabs += await asyncio.gather(*(open_tab(app, f) for f in followers[i : i + 100]))
        author_tab = await open_tab(app, author)
        started = time.monotonic()
        with app.api(author) as api:
            r = api.post("/api/posts", json={"title": "Hello followers", "body": "…"})
        assert r.status_code == 201, r.text
        await asyncio.gather(*(t.wait(1, timeout=60) for t in tabs))
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.5)  # anything extra would arrive now
        for t in [*tabs, author_tab]:
            await t.close()
        return tabs, author_tab, elapsed

    tabs, author_tab, elapsed = asyncio.run(scenario())
    reached = sum(1 for t in tabs if t.notifications)
    print(f"fan-out: {reached} of {len(tabs)} followers delivered live in {elapsed:.2f}s")
    assert all(len(t.notifications) == 1 for t in tabs)
    delivered = {t.notifications[0]["notification"]["user"] for t in tabs}
    assert delivered == set(followers)
    assert {t.notifications[0]["notification"]["noti_type"] for t in tabs} == {"create_post"}
    assert author_tab.notifications == []
    stored = rows(
        app, 'SELECT "user", noti_type FROM user_notifications WHERE "user" LIKE %s', f"{author}%"
    )
    assert sorted(u for u, _ in stored) == sorted(followers)
    assert rows(app, 'SELECT count(*) FROM user_notifications WHERE "user" = %s', author) == [(0,)]


def test_each_action_notifies_exactly_the_right_user_and_self_actions_nobody(app: Running) -> None:
    alice, bob, carol, mod = uid("alice"), uid("bob"), uid("carol"), uid("mod")
    with app.api(alice) as a, app.api(bob) as b, app.api(carol) as c, app.api(mod, admin=True) as m:
        assert b.post(f"/api/users/{alice}/follow").status_code == 201  # → alice
        post = a.post("/api/posts", json={"title": "t"}).json()  # → bob
        comment = c.post(f"/api/posts/{post['id']}/comments", json={"body": "hi"}).json()  # → alice
        b.post(
            f"/api/posts/{post['id']}/comments",  # → carol
            json={"body": "re", "parent_comment_id": comment["id"]},
        )
        m.post("/api/admin/penalties", json={"user_id": carol, "reason": "spam"})  # → carol
        # Self-actions: nobody is notified.
        a.post(f"/api/posts/{post['id']}/comments", json={"body": "my own post"})
        carols = c.post("/api/posts", json={"title": "carol's, no followers"}).json()
        own = c.post(f"/api/posts/{carols['id']}/comments", json={"body": "mine"}).json()
        c.post(
            f"/api/posts/{carols['id']}/comments",
            json={"body": "me", "parent_comment_id": own["id"]},
        )
        assert (
            c.post(
                f"/api/posts/{post['id']}/comments",
                json={"body": "wrong post", "parent_comment_id": own["id"]},
            ).status_code
            == 404
        )
        m.post("/api/admin/penalties", json={"user_id": mod, "reason": "self"})
        assert a.post(f"/api/users/{alice}/follow").status_code == 422
        # Only moderators penalise.
        assert (
            b.post("/api/admin/penalties", json={"user_id": carol, "reason": "x"}).status_code
            == 403
        )

        wait_until(lambda: settled(app), what="every event processed")
        inbox = {
            u: cl.get("/api/notifications").json()["items"]
            for u, cl in ((alice, a), (bob, b), (carol, c), (mod, m))
        }

    assert sorted(n["noti_type"] for n in inbox[alice]) == ["create_parent_comment", "follow_user"]
    assert [n["noti_type"] for n in inbox[bob]] == ["create_post"]
    assert sorted(n["noti_type"] for n in inbox[carol]) == ["create_child_comment", "penalty_user"]
    assert inbox[mod] == []
    by_type = {n["noti_type"]: n["payload"] for u in inbox for n in inbox[u]}
    assert by_type["follow_user"]["actor_id"] == bob
    assert by_type["create_post"]["post_id"] == post["id"]
    assert by_type["create_child_comment"]["parent_comment_id"] == comment["id"]
    assert by_type["penalty_user"]["reason"] == "spam"


def test_two_tabs_both_receive_and_a_reconnect_gets_exactly_what_it_missed(app: Running) -> None:
    dave, mod = uid("dave"), uid("mod")

    def penalise(api: httpx.Client, n: int) -> None:
        for i in range(n):
            assert (
                api.post(
                    "/api/admin/penalties", json={"user_id": dave, "reason": f"r{i}"}
                ).status_code
                == 201
            )

    async def scenario() -> None:
        with app.api(mod, admin=True) as m:
            tab1 = await open_tab(app, dave, how="subprotocol")
            tab2 = await open_tab(app, dave, how="query")
            penalise(m, 1)
            await asyncio.gather(tab1.wait(1), tab2.wait(1))
            assert tab1.ids == tab2.ids
            last_seen = tab1.ids[-1]
            await tab1.close()

            penalise(m, 10)
            await tab2.wait(11)
            missed = tab2.ids[1:]
            assert missed == sorted(missed) and len(set(missed)) == 10

            again = await open_tab(app, dave, last_id=last_seen)
            await again.wait(10)
            await asyncio.sleep(0.5)  # an eleventh, or one twice, would arrive now
            assert again.ids == missed, "exactly the ten missed, in order, once"
            assert again.notifications[-1]["unread_count"] == 11
            # A fresh tab gets every unread one without consuming them.
            fresh = await open_tab(app, dave)
            await fresh.wait(11)
            assert fresh.ids == tab2.ids
            for t in (tab2, again, fresh):
                await t.close()

    asyncio.run(scenario())


FAN_OUT_FAILED = "notifications-redis unavailable, retrying"


def test_redis_restart_while_notifications_flow_loses_nothing(
    app: Running, servers: Servers
) -> None:
    erin, mod = uid("erin"), uid("mod")

    def worker_log() -> str:
        return Path(app.proc.log).read_text(errors="replace")

    async def scenario() -> list[int]:
        tab = await open_tab(app, erin)
        with app.api(mod, admin=True) as m:
            for i in range(5):
                m.post("/api/admin/penalties", json={"user_id": erin, "reason": f"before {i}"})
            await tab.wait(5)
            failed_before = worker_log().count(FAN_OUT_FAILED)
            servers.redis.stop()
            for i in range(10):
                r = m.post("/api/admin/penalties", json={"user_id": erin, "reason": f"during {i}"})
                assert r.status_code == 201, "actions do not depend on Redis"
            # Redis stays down until the worker has met it down fanning these out.
            deadline = time.monotonic() + 30
            while worker_log().count(FAN_OUT_FAILED) == failed_before:
                assert time.monotonic() < deadline, "the worker never saw Redis down"
                await asyncio.sleep(0.1)
            servers.redis.start()
            for i in range(5):
                m.post("/api/admin/penalties", json={"user_id": erin, "reason": f"after {i}"})
            await tab.wait(20, timeout=60)
            await asyncio.sleep(0.5)  # a notification delivered twice would arrive now
        await tab.close()
        return tab.ids

    ids = asyncio.run(scenario())
    stored = [
        r[0]
        for r in rows(app, 'SELECT id FROM user_notifications WHERE "user" = %s ORDER BY id', erin)
    ]
    assert len(stored) == 20
    assert sorted(ids) == stored and len(set(ids)) == 20, "every one delivered live, once"


def test_a_replayed_event_creates_no_second_row(app: Running) -> None:
    author, fans = uid("writer"), [uid("fan") for _ in range(3)]
    with app.api(author) as a:
        for fan in fans:
            with app.api(fan) as f:
                assert f.post(f"/api/users/{author}/follow").status_code == 201
        post_id = a.post("/api/posts", json={"title": "once"}).json()["id"]
    post = CreatePost(actor_id=author, post_id=post_id, title="replayed")
    follow = FollowUser(actor_id=fans[0], followed_id=author)
    topic = app.env["FOOTPRINT_NOTIFICATIONS_TOPIC"]
    produce_raw(app.bootstrap, topic, [post.to_bytes(), follow.to_bytes()] * 3 + [b"{not json"])
    wait_until(lambda: settled(app), what="every replay processed")
    for event, expected in ((post, 3), (follow, 1)):
        assert rows(
            app, "SELECT count(*) FROM user_notifications WHERE event_id = %s", event.event_id
        ) == [(expected,)]
    dead = consume_all(app.bootstrap, app.env["FOOTPRINT_NOTIFICATIONS_DEAD_LETTER_TOPIC"], 1)
    assert [r.value for r in dead] == [b"{not json"]


def test_bad_tokens_close_the_socket_with_1008_and_users_see_only_their_own(app: Running) -> None:
    other_secret = load_settings(jwt_secret="another-secret-another-secret-0123")
    bad_tokens = {
        "missing": "",
        "malformed": "not.a.jwt",
        "wrong signature": mint_token(other_secret, "mallory"),
        "expired": token("mallory", ttl=-10),
    }

    async def attempt(tok: str) -> int | None:
        url = app.ws + (f"?token={tok}" if tok else "")
        async with connect(url, open_timeout=10) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None
        return None

    for name, tok in bad_tokens.items():
        assert asyncio.run(attempt(tok)) == 1008, name

    a, b, mod = uid("usera"), uid("userb"), uid("mod")
    with app.api(mod, admin=True) as m:
        m.post("/api/admin/penalties", json={"user_id": b, "reason": "for b"})
    with app.api(b) as cb:
        items = wait_until(lambda: cb.get("/api/notifications").json()["items"], what="b's inbox")
        b_id = items[0]["id"]
        assert cb.get("/api/notifications/unread-count").json() == {"unread_count": 1}
    with app.api(a) as ca:
        assert ca.get("/api/notifications").json()["items"] == []
        assert ca.get("/api/notifications/unread-count").json() == {"unread_count": 0}
        assert ca.post(f"/api/notifications/{b_id}/read").status_code == 404
        assert ca.post("/api/notifications/read-all").json()["marked"] == 0
    with app.api(b) as cb:
        assert cb.get("/api/notifications/unread-count").json() == {"unread_count": 1}
        assert cb.post(f"/api/notifications/{b_id}/read").json()["unread_count"] == 0
    with app.api() as anonymous:
        for method, path in (
            ("GET", "/api/notifications"),
            ("GET", "/api/notifications/unread-count"),
            ("POST", "/api/notifications/read-all"),
            ("POST", "/api/posts"),
        ):
            assert anonymous.request(method, path).status_code == 401, path
    assert Path(app.proc.log).read_text(errors="replace").count(bad_tokens["expired"]) == 0, (
        "tokens are never logged"
    )


def test_the_inbox_stores_a_batch_whole_or_not_at_all(
    stores: tuple[PostgresServer, RedisServer],
) -> None:
    """One round trip per batch, one implicit transaction: a refused event leaves no row of
    the others (the pass then splits the batch and stores them alone)."""
    url = fresh_postgres_url(stores[0])
    apply_postgres(url)
    good = [FollowUser(actor_id="ann", followed_id=f"inbox-{i}") for i in range(3)]
    bad = PenaltyUser.model_construct(  # NUL: valid to the schema, refused by PostgreSQL
        event_id=uuid.uuid4(), actor_id="mod", user_id="inbox-1", reason="a\x00b",
        type="penalty_user", occurred_at=datetime.now(UTC),
    )  # fmt: skip

    def stored() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM user_notifications").fetchone()
        assert row is not None
        return int(row[0])

    async def scenario() -> tuple[StoreRefused, int, Delivery, Delivery]:
        inbox = PostgresInbox(url)
        try:
            with pytest.raises(StoreRefused) as refused:
                await inbox.write([good[0], bad, good[1]])
            after_refusal = stored()
            # The session is usable after the refusal: the same events without the bad one.
            first = await inbox.write([good[0], good[1]])
            second = await inbox.write([good[1], good[2]])  # a replayed event adds no row
            return refused.value, after_refusal, first, second
        finally:
            await inbox.close()

    refused, after_refusal, first, second = asyncio.run(scenario())
    assert refused.store == "notifications-postgres", refused
    assert after_refusal == 0  # not the events before the bad one either
    assert [r["user"] for r in first.rows] == ["inbox-0", "inbox-1"]
    assert first.unread == {"inbox-0": 1, "inbox-1": 1}
    assert [r["user"] for r in second.rows] == ["inbox-1", "inbox-2"]
    assert second.unread == {"inbox-1": 1, "inbox-2": 1}
    assert stored() == 3
