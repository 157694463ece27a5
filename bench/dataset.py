"""Realistic footprints generated inside PostgreSQL and ClickHouse, the same rows in both.

Row ``n`` of the data set is a pure function of ``n``: every column comes from integer hashes
(``hash_sql``: multiply, xor-shift, mask, in 31-bit arithmetic, exact in both engines), so
``INSERT … SELECT … FROM generate_series()`` (PostgreSQL) and ``INSERT … SELECT … FROM
numbers()`` (ClickHouse) store identical rows without any data leaving the server, and rows
``[0, N)`` are the same whatever the steps they were loaded in.

The shape, meant to resemble a few real sites over ``SPAN`` (90 days):

* rows come in slots of 10 consecutive numbers, cut into 2 or 3 visits of 1–9 footprints; each
  visit starts at its own random time and its pageviews follow 5–245 s apart;
* a visit belongs to a visitor; a fifth of visits come from a visitor of an earlier visit
  (returning visitors), and a visitor keeps their browser, OS and device (5% are bots);
* three sites (60/30/10%), each with ~1–3k pages per section (``/blog/post-K``,
  ``/products/item-K``, ``/docs/page-K``, popular ones more often), ``/``, ``/pricing`` and
  ``/signup``; referrers (search, social, news, direct) and newsletter UTM tags on entry pages;
* custom events after the first pageview: ``Signup`` (4%, props ``plan``) and ``Outbound Link:
  Click`` (2%, props ``url``); 2% of pageviews answer 404.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["COLUMNS", "SITES", "SPAN", "ClickHouseGen", "Generator", "PostgresGen"]

SPAN = 90 * 86_400
SITES = ("shop.example", "blog.example", "docs.example")
_MASK = 2**31 - 1
# Referrer and its host, picked per visit (repeats weigh the common ones).
_REFERRERS = (
    *[("", "")] * 6,
    *[("https://www.google.com/", "www.google.com")] * 6,
    ("https://duckduckgo.com/", "duckduckgo.com"),
    ("https://www.bing.com/", "www.bing.com"),
    ("https://news.ycombinator.com/item?id=4242", "news.ycombinator.com"),
    ("https://www.reddit.com/r/Python/", "www.reddit.com"),
    ("https://t.co/x1y2z3", "t.co"),
    ("https://github.com/footprint/footprint", "github.com"),
    ("https://lobste.rs/", "lobste.rs"),
    ("https://app.slack.com/", "app.slack.com"),
)
# (browser, os, device, is_bot) per visitor.
_AGENTS = (
    *[("Chrome", "Windows", "Other", 0)] * 5,
    *[("Mobile Safari", "iOS", "iPhone", 0)] * 4,
    *[("Chrome Mobile", "Android", "Samsung SM-S911B", 0)] * 3,
    *[("Safari", "Mac OS X", "Mac", 0)] * 2,
    *[("Edge", "Windows", "Other", 0)] * 2,
    ("Firefox", "Linux", "Other", 0),
    ("Firefox", "Windows", "Other", 0),
    ("Chrome", "Mac OS X", "Mac", 0),
    ("Googlebot", "Other", "Spider", 1),
)
_SECTIONS = (
    *[("/blog/post-", "/blog/{slug}")] * 4,
    *[("/products/item-", "/products/{item_id}")] * 4,
    *[("/docs/page-", "/docs/{page}")] * 2,
)
# (name, link) by kind: a Signup event, an outbound click (on a section page), the home page,
# /pricing, /signup, a section page.
_KINDS = (
    ("Signup", "/signup"),
    ("Outbound Link: Click", ""),
    ("pageview", "/"),
    ("pageview", "/pricing"),
    ("pageview", "/signup"),
    ("pageview", ""),
)
_OUTBOUND = ("https://github.com/footprint", "https://pypi.org/project/footprint/")
COLUMNS = (
    "event_id",
    "site",
    "name",
    "method",
    "link",
    "route",
    "status_code",
    "duration_ms",
    "footprint_time",
    "referrer",
    "referrer_host",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "browser",
    "os",
    "device",
    "is_bot",
    "visitor_id",
    "user_id",
    "ingested_at",
)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Generator:
    """The data set's SELECT in one engine's spelling; subclasses give the few differences."""

    # Keeps a subquery a subquery: PostgreSQL would otherwise inline it and compute each hash
    # once per use instead of once per row.
    fence = ""

    def div(self, a: str, b: int | str) -> str:
        raise NotImplementedError

    def xor(self, a: str, b: str) -> str:
        raise NotImplementedError

    def shr(self, a: str, bits: int) -> str:
        raise NotImplementedError

    def mask(self, a: str) -> str:
        raise NotImplementedError

    def if_(self, cond: str, a: str, b: str) -> str:
        raise NotImplementedError

    def text(self, a: str) -> str:
        raise NotImplementedError

    def concat(self, *parts: str) -> str:
        raise NotImplementedError

    def pick(self, items: Sequence[str | int], index: str) -> str:
        raise NotImplementedError

    def time(self, seconds: str) -> str:
        raise NotImplementedError

    def uuid(self, n: str) -> str:
        raise NotImplementedError

    def numbers(self, first: int, count: int) -> str:
        raise NotImplementedError

    def props(self) -> list[str]:
        raise NotImplementedError

    def hash_sql(self, value: str, salt: int) -> str:
        """A well-mixed 31-bit hash of a non-negative integer below 2^32 (exact in both)."""
        x = self.mask(f"({value}) * 1103515245 + {salt * 12345679 + 2654435}")
        x = self.mask(f"{self.xor(x, self.shr(x, 16))} * 73244475")
        x = self.mask(f"{self.xor(x, self.shr(x, 15))} * 73244475")
        return self.xor(x, self.shr(x, 16))

    def digit(self, h: str, below: int, base: int) -> str:
        """A draw in [0, base) from the hash ``h``'s digits above ``below``."""
        return f"({self.div(h, below)} % {base})" if below > 1 else f"({h} % {base})"

    def select(self, end: int, first: int, count: int) -> str:
        """Rows ``[first, first + count)``; their visits start in the SPAN seconds before end."""
        f = self.fence
        l0 = f"SELECT n, {self.div('n', 10)} AS s, n % 10 AS pos FROM {self.numbers(first, count)}"
        l1 = f"SELECT n, s, pos, {self.hash_sql('s', 1)} AS hs FROM ({l0}) AS l0{f}"
        c1 = "(1 + hs % 9)"
        c2 = f"({c1} + 1 + {self.digit('hs', 9, '(9 - hs % 9)')})"
        after = f"{self.if_(f'pos >= {c1}', '1', '0')} + {self.if_(f'pos >= {c2}', '1', '0')}"
        l2 = (
            f"SELECT n, pos, s * 3 + ({after}) AS g, "
            f"pos - {self.if_(f'pos >= {c2}', c2, self.if_(f'pos >= {c1}', c1, '0'))} AS piv "
            f"FROM ({l1}) AS l1"
        )
        l3 = (
            f"SELECT n, g, piv, {self.hash_sql('g', 2)} AS hg, {self.hash_sql('g', 5)} AS hg2, "
            f"{self.hash_sql('n', 6)} AS hr FROM ({l2}) AS l2{f}"
        )
        # A fifth of visits are a return of the visitor of a visit up to 276 visits earlier.
        back = self.if_(
            f"{self.digit('hg', 4_800_000, 5)} = 0", f"1 + {self.div('hg2', SPAN)}", "0"
        )
        l4 = (
            f"SELECT n, g, piv, hg, hg2, hr, {self.div(f'greatest(g - {back}, 0)', 2)} AS vis "
            f"FROM ({l3}) AS l3"
        )
        l5 = f"SELECT *, {self.hash_sql('vis', 4)} AS hu FROM ({l4}) AS l4{f}"
        site = self.pick([*[SITES[0]] * 6, *[SITES[1]] * 3, SITES[2]], self.digit("hg", 1, 10))
        l6 = f"SELECT *, {site} AS site, {self.kind()} AS code FROM ({l5}) AS l5{f}"
        return f"SELECT {', '.join(self.columns(end))} FROM ({l6}) AS l6"

    def kind(self) -> str:
        """The footprint's index in _KINDS (5: a section page)."""
        d, pv = self.digit, "piv > 0"
        draw = d("hr", 1, 100)
        # An eighth of visits go /pricing → /signup → Signup (half of them): the funnel's path.
        path = f"{d('hg', 24_000_000, 8)} = 0"
        return self.if_(
            f"{path} AND piv = 1",
            "3",
            self.if_(
                f"{path} AND piv = 2",
                "4",
                self.if_(
                    f"{path} AND piv = 3 AND {draw} < 50",
                    "0",
                    self.if_(
                        f"{pv} AND {draw} < 4",
                        "0",
                        self.if_(
                            f"{pv} AND {draw} < 6",
                            "1",
                            self.if_(
                                f"piv = 0 AND {d('hr', 100, 10)} < 3",
                                "2",
                                self.if_(
                                    f"{pv} AND {draw} < 14",
                                    "3",
                                    self.if_(f"{pv} AND {draw} < 20", "4", "5"),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        )

    def columns(self, end: int) -> list[str]:
        """The COLUMNS' expressions over n, g (visit), piv (position in it), vis (visitor)."""
        d = self.digit
        step = f"(5 + {d('hg', 10, 240)})"
        start = f"{end - SPAN} + hg2 % {SPAN}"
        ts = self.time(f"{start} + piv * {step}")
        ref_i, utm = d("hg", 2400, len(_REFERRERS)), d("hg", 48000, 10)
        entry_ref = self.pick([r for r, _ in _REFERRERS], ref_i)
        entry_host = self.pick([h for _, h in _REFERRERS], ref_i)
        site = "site"
        own = self.concat("'https://'", site, "'/'")
        entry = "piv = 0"
        tagged = f"{entry} AND {utm} = 0"
        section_i = d("hr", 1000, len(_SECTIONS))
        # A product of two uniform draws: a few pages take most views, as on a real site.
        k = f"({d('hr', 10_000, 60)} * {d('hr', 600_000, 60)})"
        page = self.concat(self.pick([p for p, _ in _SECTIONS], section_i), self.text(k))
        page_route = self.pick([r for _, r in _SECTIONS], section_i)
        # code: what the footprint is (see _KINDS); a section page is the rest.
        is_page = "code = 1 OR code = 5"
        name = self.pick([k[0] for k in _KINDS], "code")
        link = self.if_(is_page, page, self.pick([k[1] for k in _KINDS], "code"))
        route = self.if_(is_page, page_route, self.pick([k[1] for k in _KINDS], "code"))
        agent = d("hu", 1, len(_AGENTS))
        exprs = {
            "event_id": self.uuid("n"),
            "site": site,
            "name": name,
            "method": self.if_("code < 2", "'POST'", "'GET'"),
            "link": link,
            "route": route,
            "status_code": self.if_(
                "code < 2",
                "202",
                self.if_(f"{d('hr', 36_000_000, 50)} = 0", "404", "200"),
            ),  # fmt: skip
            "duration_ms": f"{d('hr', 7, 4000)} / 10.0",
            "footprint_time": ts,
            "referrer": self.if_(entry, entry_ref, own),
            "referrer_host": self.if_(entry, entry_host, site),
            "utm_source": self.if_(tagged, "'newsletter'", "''"),
            "utm_medium": self.if_(tagged, "'email'", "''"),
            "utm_campaign": self.if_(
                tagged, self.concat("'launch-'", self.text(d("hg", 480_000, 12))), "''"
            ),
            "browser": self.pick([a[0] for a in _AGENTS], agent),
            "os": self.pick([a[1] for a in _AGENTS], agent),
            "device": self.pick([a[2] for a in _AGENTS], agent),
            "is_bot": self.pick([a[3] for a in _AGENTS], agent),
            "visitor_id": self.concat("'v'", self.text("hu")),
            "user_id": self.if_(
                f"{d('hu', 100, 10)} = 0", self.concat("'u'", self.text("vis")), "''"
            ),
            "ingested_at": ts,
        }
        plan = self.pick(["free", "pro"], d("hr", 180_000_000, 2))
        outbound = self.pick(list(_OUTBOUND), d("hr", 180_000_000, 2))
        return [f"{exprs[c]} AS {c}" for c in COLUMNS] + self.props_of(name, plan, outbound)

    def props_of(self, name: str, plan: str, outbound: str) -> list[str]:
        raise NotImplementedError

    def insert(self, end: int, first: int, count: int) -> str:
        """The INSERT of rows ``[first, first + count)`` into user_footprint."""
        raise NotImplementedError


class PostgresGen(Generator):
    """PostgreSQL: bigint arithmetic (the hashes stay below 2^62), generate_series."""

    fence = " OFFSET 0"

    def div(self, a: str, b: int | str) -> str:
        return f"(({a}) / {b})"

    def xor(self, a: str, b: str) -> str:
        return f"(({a}) # ({b}))"

    def shr(self, a: str, bits: int) -> str:
        return f"(({a}) >> {bits})"

    def mask(self, a: str) -> str:
        return f"(({a}) & {_MASK})"

    def if_(self, cond: str, a: str, b: str) -> str:
        return f"(CASE WHEN {cond} THEN {a} ELSE {b} END)"

    def text(self, a: str) -> str:
        return f"({a})::text"

    def concat(self, *parts: str) -> str:
        return "(" + " || ".join(parts) + ")"

    def pick(self, items: Sequence[str | int], index: str) -> str:
        values = ", ".join(_q(i) if isinstance(i, str) else str(i) for i in items)
        cast = "::text[]" if isinstance(items[0], str) else "::int[]"
        return f"(ARRAY[{values}]{cast})[({index})::int + 1]"

    def time(self, seconds: str) -> str:
        return f"to_timestamp({seconds})"

    def uuid(self, n: str) -> str:
        return f"('00000000-0000-4000-8000-' || lpad(to_hex({n}), 12, '0'))::uuid"

    def numbers(self, first: int, count: int) -> str:
        return f"generate_series({first}::bigint, {first + count - 1}::bigint) AS n"

    def props_of(self, name: str, plan: str, outbound: str) -> list[str]:
        return [
            f"(CASE {name} WHEN 'Signup' THEN jsonb_build_object('plan', {plan}) "
            f"WHEN 'Outbound Link: Click' THEN jsonb_build_object('url', {outbound}) "
            "ELSE '{}'::jsonb END) AS props"
        ]

    def insert(self, end: int, first: int, count: int) -> str:
        # is_bot is picked as 0/1 in both engines; PostgreSQL's column is a boolean.
        values = ["is_bot = 1" if c == "is_bot" else c for c in (*COLUMNS, "props")]
        return (
            f"INSERT INTO user_footprint ({', '.join((*COLUMNS, 'props'))}) "
            f"SELECT {', '.join(values)} FROM ({self.select(end, first, count)}) AS rows"
        )


class ClickHouseGen(Generator):
    """ClickHouse (chdb): UInt64 arithmetic, numbers()."""

    def div(self, a: str, b: int | str) -> str:
        return f"intDiv({a}, {b})"

    def xor(self, a: str, b: str) -> str:
        return f"bitXor({a}, {b})"

    def shr(self, a: str, bits: int) -> str:
        return f"bitShiftRight({a}, {bits})"

    def mask(self, a: str) -> str:
        return f"bitAnd({a}, {_MASK})"

    def if_(self, cond: str, a: str, b: str) -> str:
        return f"if({cond}, {a}, {b})"

    def text(self, a: str) -> str:
        return f"toString({a})"

    def concat(self, *parts: str) -> str:
        return f"concat({', '.join(parts)})"

    def pick(self, items: Sequence[str | int], index: str) -> str:
        values = ", ".join(_q(i) if isinstance(i, str) else str(i) for i in items)
        return f"arrayElement([{values}], {index} + 1)"

    def time(self, seconds: str) -> str:
        return f"toDateTime({seconds}, 'UTC')"

    def uuid(self, n: str) -> str:
        return f"toUUID(concat('00000000-0000-4000-8000-', leftPad(lower(hex({n})), 12, '0')))"

    def numbers(self, first: int, count: int) -> str:
        return f"(SELECT number AS n FROM numbers({first}, {count}))"

    def props_of(self, name: str, plan: str, outbound: str) -> list[str]:
        def arrays(signup: str, click: str) -> str:
            return (
                f"multiIf({name} = 'Signup', [{signup}], "
                f"{name} = 'Outbound Link: Click', [{click}], [])"
            )

        return [
            f"{arrays(repr('plan'), repr('url'))} AS pkeys",
            f"{arrays(plan, outbound)} AS pvals",
        ]

    def insert(self, end: int, first: int, count: int) -> str:
        return (
            f"INSERT INTO user_footprint ({', '.join(COLUMNS)}, `props.key`, `props.value`) "
            f"SELECT * FROM ({self.select(end, first, count)})"
        )
