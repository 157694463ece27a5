"""The sites registry, cached in the API process: which sites exist, which keys and shared links
read which site.

Ingest asks ``SiteRegistry.known`` on every footprint and stats routes ask ``key_site`` /
``link_site`` on every call, so all three are answered from memory: the registry is re-read
every ``FOOTPRINT_SITES_REFRESH_SECONDS`` and at once after an admin change in this process (a
key revoked through another API process stops working there within that time). The admin
operations (``api/routes/sites.py``) write PostgreSQL first, then refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from footprint.site_keys import hash_secret, new_key, new_link_token

__all__ = [
    "RegistryUnavailable",
    "SiteExists",
    "SiteRegistry",
    "Snapshot",
    "UnknownSite",
]

log = logging.getLogger(__name__)

DEFAULT_SITE = ""  # footprints stored before sites existed; always accepted, never listed


class SiteExists(Exception):
    """A site with this domain is already registered."""


class UnknownSite(Exception):
    """No site (or no such key or link of the site) is registered."""


class RegistryUnavailable(Exception):
    """PostgreSQL could not be reached: nothing was changed (HTTP 503)."""


@dataclass(frozen=True)
class Snapshot:
    """The registry as last read: domains, and the site of each live key and link hash."""

    sites: frozenset[str] = frozenset()
    keys: dict[bytes, str] = field(default_factory=dict)
    links: dict[bytes, str] = field(default_factory=dict)


_READ = (
    "SELECT domain FROM sites",
    "SELECT key_hash, site FROM site_keys WHERE revoked_at IS NULL",
    "SELECT token_hash, site FROM shared_links WHERE revoked_at IS NULL",
)


class SiteRegistry:
    """Sites, keys and shared links: reads from memory, writes to PostgreSQL."""

    def __init__(self, *, auto_register: bool, refresh_seconds: float) -> None:
        self.auto_register = auto_register
        self.refresh_seconds = refresh_seconds
        self.snapshot = Snapshot()
        self.loaded = False
        self.refused = 0  # footprints refused for an unknown site, since start
        self._pool: AsyncConnectionPool | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    # --- lifecycle ---
    async def start(self, pool: AsyncConnectionPool) -> None:
        """Read the registry once (a few seconds at most), then keep re-reading it."""
        self._pool = pool
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._try_refresh(), timeout=5)
        self._task = asyncio.create_task(self._loop(), name="sites-refresh")

    async def stop(self) -> None:
        """Stop re-reading; wait for auto-registrations in flight."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self._try_refresh()

    async def _try_refresh(self) -> None:
        try:
            await self.refresh()
        except (RegistryUnavailable, psycopg.Error) as e:
            # The last snapshot keeps serving: a PostgreSQL outage must not stop ingest.
            log.warning("could not re-read the sites registry: %s", e)

    async def refresh(self) -> None:
        """Re-read sites, keys and links from PostgreSQL."""
        async with self._connection() as conn:
            rows = [await (await conn.execute(sql)).fetchall() for sql in _READ]
        self.snapshot = Snapshot(
            sites=frozenset(r[0] for r in rows[0]),
            keys={bytes(h): s for h, s in rows[1]},
            links={bytes(h): s for h, s in rows[2]},
        )
        self.loaded = True

    @contextlib.asynccontextmanager
    async def _connection(self) -> Any:
        if self._pool is None:
            raise RegistryUnavailable("the sites registry is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout, OSError) as e:
            raise RegistryUnavailable(f"postgres unavailable: {e}") from e

    # --- reads (memory only) ---
    def known(self, site: str) -> bool:
        """Whether footprints of ``site`` are accepted; registers it when auto-registering."""
        if site == DEFAULT_SITE or site in self.snapshot.sites:
            return True
        if not self.auto_register:
            return False
        # Accepted now, written in the background: ingest never waits for PostgreSQL.
        self.snapshot = Snapshot(
            self.snapshot.sites | {site}, self.snapshot.keys, self.snapshot.links
        )
        if self._pool is not None:
            task = asyncio.get_running_loop().create_task(self._register(site))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return True

    async def _register(self, site: str) -> None:
        try:
            async with self._connection() as conn:
                await conn.execute(
                    "INSERT INTO sites (domain) VALUES (%s) ON CONFLICT DO NOTHING", [site]
                )
            log.info("registered site %r on its first footprint", site)
        except (RegistryUnavailable, psycopg.Error) as e:
            log.warning("could not register site %r: %s", site, e)

    def key_site(self, key: str) -> str | None:
        """The site a live API key reads, or None."""
        return self.snapshot.keys.get(hash_secret(key))

    def link_site(self, token: str) -> str | None:
        """The site a live shared link shows, or None."""
        return self.snapshot.links.get(hash_secret(token))

    # --- admin writes (PostgreSQL, then a refresh) ---
    async def list_sites(self) -> list[dict[str, Any]]:
        """Every registered site with its number of live keys and links."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT s.domain, s.created_at,"
                " (SELECT count(*) FROM site_keys k WHERE k.site = s.domain"
                "  AND k.revoked_at IS NULL),"
                " (SELECT count(*) FROM shared_links l WHERE l.site = s.domain"
                "  AND l.revoked_at IS NULL), s.raw_retention_days"
                " FROM sites s ORDER BY s.domain"
            )
            rows = await cur.fetchall()
        return [
            {
                "domain": d,
                "created_at": c.isoformat(),
                "keys": k,
                "shared_links": n,
                "raw_retention_days": days,
            }
            for d, c, k, n, days in rows
        ]

    async def add_site(self, domain: str, raw_retention_days: int | None = None) -> tuple[int, str]:
        """Register ``domain`` with a first key: (key id, key). SiteExists if it is there."""
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO sites (domain, raw_retention_days) VALUES (%s, %s)",
                    [domain, raw_retention_days],
                )
                made = await self._insert_key(conn, domain)
        except psycopg.errors.UniqueViolation:
            raise SiteExists(domain) from None
        await self.refresh()
        return made

    async def set_retention(self, domain: str, raw_retention_days: int | None) -> None:
        """Keep the site's raw footprints ``raw_retention_days`` (None: the default)."""
        await self._change(
            "UPDATE sites SET raw_retention_days = %s WHERE domain = %s",
            [raw_retention_days, domain],
            domain,
        )

    async def remove_site(self, domain: str) -> None:
        """Delete a site with its keys, links, goals and funnels (its footprints stay)."""
        # Funnels first: a goal in a funnel refuses to go (sql/postgres/007_goals.sql), and the
        # cascade from sites would reach the goals before the funnel steps.
        await self._change(
            "WITH funnels AS (DELETE FROM funnels WHERE site = %s) "
            "DELETE FROM sites WHERE domain = %s",
            [domain, domain],
        )

    async def add_key(self, domain: str) -> tuple[int, str]:
        """A new API key of a site: (id, key)."""
        try:
            async with self._connection() as conn:
                made = await self._insert_key(conn, domain)
        except psycopg.errors.ForeignKeyViolation:
            raise UnknownSite(domain) from None
        await self.refresh()
        return made

    async def revoke_key(self, domain: str, key_id: int) -> None:
        """Revoke a key of a site; UnknownSite if the site has no such live key."""
        await self._change(
            "UPDATE site_keys SET revoked_at = now()"
            " WHERE site = %s AND id = %s AND revoked_at IS NULL",
            [domain, key_id],
        )

    async def add_link(self, domain: str) -> tuple[int, str]:
        """A new shared link token of a site: (id, token)."""
        token = new_link_token()
        try:
            async with self._connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO shared_links (site, token_hash) VALUES (%s, %s) RETURNING id",
                    [domain, hash_secret(token)],
                )
                row = await cur.fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise UnknownSite(domain) from None
        await self.refresh()
        assert row is not None
        return int(row[0]), token

    async def revoke_link(self, domain: str, link_id: int) -> None:
        """Revoke a shared link of a site."""
        await self._change(
            "UPDATE shared_links SET revoked_at = now()"
            " WHERE site = %s AND id = %s AND revoked_at IS NULL",
            [domain, link_id],
        )

    async def _insert_key(self, conn: psycopg.AsyncConnection[Any], domain: str) -> tuple[int, str]:
        key = new_key()
        cur = await conn.execute(
            "INSERT INTO site_keys (site, key_hash) VALUES (%s, %s) RETURNING id",
            [domain, hash_secret(key)],
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0]), key

    async def _change(self, sql: str, params: list[Any], site: str | None = None) -> None:
        async with self._connection() as conn:
            cur = await conn.execute(sql, params)
            changed = cur.rowcount
        await self.refresh()
        if not changed:
            raise UnknownSite(site if site is not None else str(params[0]))
