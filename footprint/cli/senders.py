"""What sends ``footprint generate``'s plan to the API, and what a run counts.

``Sender`` posts page-view lists to ``POST /api/footprints`` concurrently; ``Community`` runs the
community actions one after another with user tokens, mapping the plan's posts and comments to
the ids the API gives them. Both count into one ``Summary``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from footprint.cli.traffic import Action, PageView
from footprint.cli.traffic_data import MODERATOR
from footprint.settings import Settings, get_settings
from footprint.settings_secrets import DEV_JWT_SECRET

__all__ = ["Community", "Sender", "Summary"]


@dataclass
class Summary:
    """What a run did."""

    sent: int = 0
    accepted: int = 0
    failed: int = 0
    requests: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    actions_failed: int = 0
    elapsed: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        """Page views sent per second."""
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def ok(self) -> bool:
        """Whether every page view and action was accepted."""
        return self.failed == 0 and self.actions_failed == 0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _jwt_settings() -> Settings:
    settings = get_settings()
    if settings.jwt_secret:
        return settings
    # What `footprint run` uses when unset.
    return settings.model_copy(update={"jwt_secret": DEV_JWT_SECRET})


class Community:
    """Runs actions one after another, mapping planned posts and comments to the API's ids."""

    def __init__(self, client: httpx.AsyncClient, summary: Summary) -> None:
        from footprint.tokens import mint_token  # FastAPI is only needed once actions run

        settings = _jwt_settings()
        self.client = client
        self.summary = summary
        self._mint = lambda user: mint_token(settings, user, admin=user == MODERATOR, ttl=3600)
        self._tokens: dict[str, str] = {}
        self._posts: dict[int, int] = {}
        self._comments: list[tuple[int | None, int | None]] = []
        self.queue: asyncio.Queue[Action | None] = asyncio.Queue()

    def _auth(self, user: str) -> dict[str, str]:
        if user not in self._tokens:
            self._tokens[user] = self._mint(user)
        return {"authorization": f"Bearer {self._tokens[user]}"}

    async def run(self) -> None:
        """Consume the queue until ``None``."""
        while (action := await self.queue.get()) is not None:
            try:
                ok = await self._do(action)
            except httpx.HTTPError as e:
                self.summary.errors[f"{action.kind}: {type(e).__name__}"] += 1
                ok = False
            if ok:
                self.summary.actions[action.kind] += 1
            else:
                self.summary.actions_failed += 1

    async def _post(self, path: str, user: str, body: dict[str, Any] | None = None) -> Any:
        r = await self.client.post(path, json=body, headers=self._auth(user))
        if r.status_code != 201:
            self.summary.errors[f"{path.split('/')[2]}: HTTP {r.status_code}"] += 1
            return None
        return r.json()

    async def _do(self, a: Action) -> bool:
        if a.kind == "follow":
            return await self._post(f"/api/users/{a.target}/follow", a.actor) is not None
        if a.kind == "penalty":
            penalty = {"user_id": a.target, "reason": a.text}
            return await self._post("/api/admin/penalties", a.actor, penalty) is not None
        if a.kind == "post":
            out = await self._post("/api/posts", a.actor, {"title": a.text, "body": a.text})
            if out is not None and a.post is not None:
                self._posts[a.post] = out["id"]
            return out is not None
        # A comment or a reply: on a post (and a comment) created earlier in this run.
        post_id = self._posts.get(a.post) if a.post is not None else None
        parent = self._comments[a.comment][1] if a.comment is not None else None
        out = None
        if post_id is not None and (a.kind == "comment" or parent is not None):
            comment = {"body": a.text, "parent_comment_id": parent}
            out = await self._post(f"/api/posts/{post_id}/comments", a.actor, comment)
        self._comments.append((post_id, out["id"] if out else None))
        return out is not None


class Sender:
    """Posts page-view lists concurrently and keeps the counts."""

    def __init__(self, client: httpx.AsyncClient, summary: Summary, concurrency: int) -> None:
        self.client = client
        self.summary = summary
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, views: tuple[PageView, ...]) -> None:
        """Start sending a list; waits only when ``concurrency`` requests are in flight."""
        await self._slots.acquire()
        task = asyncio.create_task(self._send(views))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, views: tuple[PageView, ...]) -> None:
        s = self.summary
        now = _now()
        try:
            r = await self.client.post("/api/footprints", json=[v.to_json(now) for v in views])
            if r.status_code == 202:
                s.accepted += int(r.json().get("accepted", 0))
            else:
                s.failed += len(views)
                s.errors[f"footprints: HTTP {r.status_code}"] += 1
        except httpx.HTTPError as e:
            s.failed += len(views)
            s.errors[f"footprints: {type(e).__name__}"] += 1
        finally:
            s.sent += len(views)
            s.requests += 1
            self._slots.release()

    async def drain(self) -> None:
        """Wait for every request in flight."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks))
