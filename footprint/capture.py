"""What the middleware takes from a request, and how a batch of that becomes footprints.

On the request path the middleware only copies what the request gives (method, path, query,
peer, the four headers it needs, route, user, status, timing) into a plain tuple, a
``Capture``, and appends it to a ``Captures`` queue. The producer's background task turns the
queue into records a batch at a time (``Captures.take``): visitor-id hashing, user-agent
parsing, referrer cleaning, the event id, the JSON. That task runs in the same process, and a
capture is never written anywhere: the raw IP and user agent still never leave the API
process, only the built footprints do (to Kafka, or the spool).

``build`` writes, byte for byte, what ``Footprint.model_construct(...).model_dump_json()`` gave
when the middleware built each footprint on the request path (``tests/unit/footprint/
test_capture.py`` keeps that path and compares them), in a fraction of the time: one string
template, no model.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import quote

from footprint.client_ip import client_ip
from footprint.enrich import (
    UTM_FIELDS,
    clean_referrer,
    parse_agent,
    referrer_host,
    site_of,
    utm_from_query,
    visitor_id,
)
from footprint.ids import uuid7_text
from footprint.records import Record
from footprint.salts import DailySalts
from footprint.schema_types import MAX_LINK, MAX_TEXT, PAGEVIEW

__all__ = [
    "Anonymous",
    "Capture",
    "Captures",
    "anonymize",
    "build",
    "build_anonymous",
    "storable_path",
]

log = logging.getLogger(__name__)

VISITORS_CACHED = 10_000

# ASGI paths are percent-decoded: "%00" arrives as NUL, which no store can hold.
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def storable_path(path: str) -> str:
    """The path as a link every store accepts: control characters (and lone surrogates)
    percent-encoded again, at most ``MAX_LINK`` characters, never empty."""
    if _UNSTORABLE.search(path):
        path = _UNSTORABLE.sub(
            lambda m: quote(m.group().encode("utf-8", "surrogatepass"), safe=""), path
        )
    if not path.startswith("/"):
        path = "/" + path
    return path[:MAX_LINK]


# method, root_path + path, query string, socket peer, user agent, referer, host,
# X-Forwarded-For lines, the matched route, user id, status, duration in s, wall time in µs.
# Header values stay bytes (latin-1 on decoding, so a slice of them is a slice of the text);
# user agent and referer are cut to the length a footprint keeps: a capture is small whatever
# the request sent.
Capture = tuple[str, str, bytes, str, bytes, bytes, bytes, bytes, Any, str, int, float, int]


# JSON strings exactly as pydantic writes them: `"`, `\\` and control characters escaped,
# everything else as it is (UTF-8). The C encoder of the json module does just that.
_text = encode_basestring


@functools.lru_cache(maxsize=4096)
def _referrer(raw: str) -> str:
    # Sites see the same few referrers over and over.
    cleaned = clean_referrer(raw)
    return f'"referrer":{_text(cleaned)},"referrer_host":{_text(referrer_host(cleaned))}'


@functools.lru_cache(maxsize=4096)
def _agent(user_agent: str) -> str:
    agent = parse_agent(user_agent)
    return (
        f'"browser":{_text(agent.browser)},"os":{_text(agent.os)},'
        f'"device":{_text(agent.device)},"is_bot":{"true" if agent.is_bot else "false"}'
    )


@functools.lru_cache(maxsize=1024)
def _site(host: str) -> str:
    return site_of(host)


@functools.lru_cache(maxsize=4)
def _second(epoch_s: int) -> str:
    # Requests come in order: one datetime formatting per second, not one per request.
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _time(us: int) -> str:
    # pydantic's format: microseconds only when there are any, "Z" for UTC.
    s, micro = divmod(us, 1_000_000)
    return f"{_second(s)}.{micro:06d}Z" if micro else f"{_second(s)}Z"


_NO_REFERRER = _referrer("")
_NO_UTM = ',"utm_source":"","utm_medium":"","utm_campaign":"","utm_term":"","utm_content":""'


def _utm(query: bytes) -> str:
    if not query:
        return _NO_UTM
    utm = utm_from_query(query.decode("latin-1"))
    if not utm:
        return _NO_UTM
    return "".join(f',"{k}":{_text(utm.get(k, ""))}' for k in UTM_FIELDS)


# What leaves the API process when a delivery process builds and sends the footprints
# (``footprint.delivery_process``): the capture with the raw IP and user agent replaced by what
# the footprint keeps of them. Method, path, query, referer, route path, user id, status,
# duration in s, wall time in µs, site, visitor id, and the user agent's fields as JSON.
Anonymous = tuple[str, str, bytes, bytes, str, str, int, float, int, str, str, str]

# The site, visitor id and user agent's fields of (Host, peer, X-Forwarded-For, User-Agent),
# for one salt: a visitor makes several requests.
Visitors = dict[tuple[bytes, str, bytes, bytes], tuple[str, str, str]]


def anonymize(
    captures: list[Capture],
    salt: bytes,
    *,
    site: str | None,
    trusted_proxies: int,
    visitors: Visitors | None = None,
) -> list[Anonymous]:
    """The captures with the raw IP and user agent turned into the visitor id and the user
    agent's fields, as the footprint holds them; ``visitors`` caches them for ``salt``."""
    if visitors is None:
        visitors = {}
    out: list[Anonymous] = []
    for capture in captures:
        (method, path, query, peer, agent_b, referer_b, host_b, forwarded_b, route, user_id,
         status, duration, us) = capture  # fmt: skip
        try:
            who = visitors.get(key := (host_b, peer, forwarded_b, agent_b))
            if who is None:
                user_agent = agent_b.decode("latin-1")
                ip = client_ip(peer, forwarded_b.decode("latin-1"), trusted_proxies)
                host = site or _site(host_b.decode("latin-1"))
                visitor = visitor_id(salt, host, ip, user_agent)
                who = visitors[key] = (host, visitor, _agent(user_agent))
            route_path = (getattr(route, "path", "") or "")[:MAX_TEXT]
        except Exception:  # that footprint only is lost
            log.exception("could not record a footprint")
            continue
        out.append(
            (method, path, query, referer_b, route_path, user_id, status, duration, us, *who)
        )
    return out


def build_anonymous(items: list[Anonymous], randomness: bytes | None = None) -> list[Record]:
    """The records (key, JSON, timestamp ms, from spool) of anonymized captures.

    ``randomness`` (10 bytes a capture) makes their event ids: the same bytes build the same
    records, so a batch built twice is stored once.
    """
    if randomness is None:
        randomness = os.urandom(10 * len(items))  # one system call for the batch's event ids
    records: list[Record] = []
    for i, item in enumerate(items):
        try:
            records.append(_record(item, randomness[10 * i : 10 * i + 10]))
        except Exception:  # e.g. a user id with a lone surrogate: that footprint only is lost
            log.exception("could not record a footprint")
    return records


def build(
    captures: list[Capture],
    salt: bytes,
    *,
    site: str | None,
    trusted_proxies: int,
    visitors: Visitors | None = None,
) -> list[Record]:
    """The records (key, JSON, timestamp ms, from spool) of a batch of captures."""
    return build_anonymous(
        anonymize(captures, salt, site=site, trusted_proxies=trusted_proxies, visitors=visitors)
    )


def _record(item: Anonymous, random: bytes) -> Record:
    (method, path, query, referer_b, route, user_id, status, duration, us, host, visitor,
     agent) = item  # fmt: skip
    ms = us // 1000
    link = storable_path(path)
    # Field for field what Footprint.model_dump_json() writes, in the model's order.
    value = (
        f'{{"event_id":"{uuid7_text(ms, random)}","method":{_text(method)},'
        f'"link":{_text(link)},"footprint_time":"{_time(us)}",'
        f'"route":{_text(route)},'
        f'"status_code":{status:d},"duration_ms":{round(duration * 1000, 3)!r},'
        f"{_referrer(referer_b.decode('latin-1')) if referer_b else _NO_REFERRER}"
        f"{_utm(query)},{agent},"
        f'"visitor_id":"{visitor}","user_id":{_text(user_id)},'
        f'"site":{_text(host)},"name":"{PAGEVIEW}","props":{{}}}}'
    )
    # Keyed by link, stamped with when the request was served (footprint.records.to_record).
    return (link.encode(), value.encode(), ms, False)


class Captures:
    """Captured requests waiting for the producer's task to build them, at most ``limit``."""

    def __init__(
        self, salts: DailySalts, *, site: str | None, trusted_proxies: int, limit: int
    ) -> None:
        self.salts = salts
        self.site = site
        self.trusted_proxies = trusted_proxies
        self.limit = limit
        self.queue: deque[Capture] = deque()
        # Visitor ids of the current salt only: a new salt starts an empty cache, so nothing
        # here outlives its day.
        self._visitors: Visitors = {}
        self._visitors_salt = b""
        self.wake: Callable[[], None] = lambda: None  # set by the producer that drains us

    def __len__(self) -> int:
        return len(self.queue)

    def offer(self, capture: Capture) -> bool:
        """Queue a capture; False when the queue is full (build it now instead)."""
        queue = self.queue
        if len(queue) >= self.limit:
            return False
        if not queue:  # the task drains the whole queue: waking it once per batch is enough
            self.wake()
        queue.append(capture)
        return True

    async def records(self, captures: list[Capture]) -> list[Record]:
        """The records of ``captures``, with the current day's salt."""
        return self._build(captures, await self.salts.current())

    def _anonymize(self, captures: list[Capture], salt: bytes) -> list[Anonymous]:
        if salt != self._visitors_salt or len(self._visitors) > VISITORS_CACHED:
            self._visitors, self._visitors_salt = {}, salt
        return anonymize(
            captures,
            salt,
            site=self.site,
            trusted_proxies=self.trusted_proxies,
            visitors=self._visitors,
        )

    def _build(self, captures: list[Capture], salt: bytes) -> list[Record]:
        return build_anonymous(self._anonymize(captures, salt))

    async def _take(self) -> tuple[list[Capture], bytes]:
        # The salt first: nothing is taken from the queue before the last await, so a task
        # cancelled meanwhile leaves every capture in the queue. A request served in the last
        # milliseconds of a UTC day and built after midnight gets the new day's salt, as if it
        # had come a moment later.
        salt = await self.salts.current()
        captures = list(self.queue)
        self.queue.clear()
        return captures, salt

    async def take(self) -> list[Record]:
        """Everything queued, built into records."""
        return self._build(*await self._take())

    async def take_anonymous(self) -> list[Anonymous]:
        """Everything queued, anonymized (for a delivery process to build)."""
        return self._anonymize(*await self._take())
