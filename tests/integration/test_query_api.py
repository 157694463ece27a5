"""POST /api/v2/query through the real app (its routes, middleware, auth and error handlers) on
a real PostgreSQL and chdb; the lifespan opens only those two stores, the clients the query
route uses, so no broker is needed.

Requests are sent as Plausible's documentation writes them; both stores must answer them alike
and as counted by hand. Errors answer 400 ``{"error"}`` naming the field, the route wants a
moderator's token, hostile values are data, and a ClickHouse server without window functions
(18.16) is refused with a clear message.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth import mint_token
from api.query import QueryRequest, UnsupportedServer, plan
from api.query.clickhouse import run_clickhouse
from api.query.funnel import funnel_counts
from api.query.goals import Goal
from footprint.clickhouse import connect
from footprint.schema import Footprint
from footprint.stack import PostgresServer, RedisServer
from footprint.stack.clickhouse import ClickHouseServer, find_clickhouse_server
from tests.integration.stored import stored_api

pytestmark = pytest.mark.integration

JWT_SECRET = "query-api-tests-secret-0123456789abcdef"

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
D1, D2 = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
SITE = "dummy.site"  # the site Plausible's examples query


def _fp(at: datetime, link: str, visitor: str, **fields: Any) -> Footprint:
    return Footprint(
        event_id=uuid.uuid4(),
        method="GET",
        link=link,
        footprint_time=at,
        visitor_id=visitor,
        site=fields.pop("site", SITE),
        **fields,
    )


MAC = {"os": "Mac", "utm_medium": "social", "utm_source": "twitter"}
DATA = [
    _fp(D1 + timedelta(hours=10), "/", "A", **MAC),
    _fp(D1 + timedelta(hours=10, minutes=5), "/docs", "A", props={"is_customer": "true"}, **MAC),
    _fp(D1 + timedelta(hours=11), "/", "B", os="GNU/Linux"),
    _fp(D2 + timedelta(hours=11), "/", "B", os="GNU/Linux"),  # a day later: another visit
    _fp(D2 + timedelta(hours=12), "/pricing", "C", os="Windows", utm_medium="email"),
    _fp(D2 + timedelta(hours=12, minutes=1), "/pricing", "C", os="Windows", name="Signup"),
    _fp(D2 + timedelta(hours=13), "/", "bot", os="Mac", is_bot=True),
    _fp(D2 + timedelta(hours=13), "/", "A", os="Mac", site="other.site"),
]


@pytest.fixture(scope="module")
def api(
    stores: tuple[PostgresServer, RedisServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with stored_api(stores, tmp_path_factory, DATA, "q") as answer:
        yield answer


def _both(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """The answer, after checking that both stores give the same results."""
    answers = {}
    for source in ("postgres", "clickhouse"):
        r = client.post(f"/api/v2/query?source={source}", json=body, headers=headers)
        assert r.status_code == 200, r.text
        answers[source] = r.json()
        assert answers[source]["meta"]["source"] == source
        assert answers[source]["meta"]["query_ms"] > 0
    pg, ch = answers["postgres"], answers["clickhouse"]
    assert pg["results"] == ch["results"]
    assert pg["query"] == ch["query"]
    return ch


def test_plausibles_documented_requests(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    day1, day2 = D1.date().isoformat(), D2.date().isoformat()
    # From plausible.io/docs/stats-api ("Timeseries query"), as written there.
    timeseries = {
        "site_id": "dummy.site",
        "metrics": ["visitors", "events"],
        "date_range": "7d",
        "filters": [["is", "visit:os", ["GNU/Linux", "Mac"]]],
        "dimensions": ["time:day"],
    }
    answer = _both(client, admin, timeseries)
    assert answer["results"] == [
        {"metrics": [2, 3], "dimensions": [day1]},  # A and B; the bot is left out
        {"metrics": [1, 1], "dimensions": [day2]},
    ]
    assert answer["query"]["order_by"] == [["time:day", "asc"], ["visitors", "desc"]]
    assert answer["query"]["date_range"][1].endswith("T23:59:59+00:00")

    # "Pagination": visitors desc, ties in byte order of the dimensions.
    pagination = {
        "site_id": "dummy.site",
        "metrics": ["visitors", "events", "pageviews"],
        "date_range": "7d",
        "dimensions": ["visit:utm_medium", "visit:utm_source"],
        "include": {"total_rows": True},
        "pagination": {"limit": 3, "offset": 1},
    }
    answer = _both(client, admin, pagination)
    assert answer["results"] == [
        {"metrics": [1, 2, 1], "dimensions": ["email", "(not set)"]},
        {"metrics": [1, 2, 2], "dimensions": ["social", "twitter"]},
    ]
    assert answer["meta"]["total_rows"] == 3

    # "Using custom properties"
    props = {
        "site_id": "dummy.site",
        "metrics": ["visitors"],
        "date_range": "7d",
        "dimensions": ["time:day", "event:props:is_customer"],
        "order_by": [["time:day", "asc"], ["event:props:is_customer", "desc"]],
    }
    assert _both(client, admin, props)["results"] == [
        {"metrics": [1], "dimensions": [day1, "true"]},
        {"metrics": [2], "dimensions": [day1, "(none)"]},
        {"metrics": [2], "dimensions": [day2, "(none)"]},
    ]


def test_visits_goals_and_the_default_source(api: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = api
    body = {
        "site_id": "Dummy.Site",
        "metrics": ["visitors", "visits", "bounce_rate", "visit_duration", "views_per_visit"],
        "date_range": [D1.date().isoformat(), D2.date().isoformat()],
    }
    # A: one visit of 2 pageviews (300 s); B: two bounces; C: a pageview and a Signup (60 s).
    assert _both(client, admin, body)["results"] == [
        {"metrics": [3, 4, 50, 90, 1.25], "dimensions": []}
    ]
    goals = {
        "site_id": SITE,
        "metrics": ["visitors", "conversion_rate"],
        "date_range": "7d",
        "filters": [["is", "event:goal", ["Signup", "Visit /docs*"]]],
        "dimensions": ["event:goal"],
    }
    r = client.post("/api/v2/query", json=goals, headers=admin)  # ClickHouse by default
    assert r.status_code == 200 and r.json()["meta"]["source"] == "clickhouse"
    assert r.json()["results"] == [
        {"metrics": [1, 33.3], "dimensions": ["Signup"]},
        {"metrics": [1, 33.3], "dimensions": ["Visit /docs*"]},
    ]


def test_only_moderators_may_query(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    body = {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}
    assert client.post("/api/v2/query", json=body).status_code == 401
    plain = mint_token(client.app.state.settings, "reader")  # type: ignore[attr-defined]
    r = client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {plain}"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"metrics": ["visitors", "revenue"]}, "metrics[1]"),
        ({"metrics": "visitors"}, "metrics"),
        ({"dimensions": ["visit:country_name"]}, "dimensions[0]"),
        ({"filters": [["is", "visit:country_name", ["Estonia"]]]}, "filters[0][1]"),
        ({"filters": [["matches", "event:page", ["(?<=x)y"]]]}, "filters[0][2]"),
        ({"date_range": "yesterday"}, "date_range"),
        ({"date_range": ["2024-13-01", "2024-12-31"]}, "date_range"),
        ({"pagination": {"limit": 100_000}}, "pagination.limit"),
        ({"site": "dummy.site"}, "site"),
    ],
)
def test_bad_queries_get_400_naming_the_field(
    api: tuple[TestClient, dict[str, str]], body: dict[str, Any], names: str
) -> None:
    client, admin = api
    full = {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d", **body}
    r = client.post("/api/v2/query", json=full, headers=admin)
    assert r.status_code == 400, r.text
    assert names in r.json()["error"]
    assert set(r.json()) == {"error"}


HOSTILE = [
    "'; DROP TABLE user_footprint; --",
    "x' OR '1'='1",
    "%(site)s %s %%",
    "back\\slash\\",
    "$1 $$ $tag$",
    "`props.key`",
    "日本語 🚀 \u2028",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_data(api: tuple[TestClient, dict[str, str]], value: str) -> None:
    client, admin = api
    body = {
        "site_id": value,
        "metrics": ["visitors", "percentage"],
        "date_range": "7d",
        "dimensions": [f"event:props:{value}"],
        "filters": [
            ["or", [["is", "event:page", [value]], ["contains", "visit:source", [value]]]],
            ["is_not", f"event:props:{value}", [value]],
        ],
    }
    answer = _both(client, admin, body)
    assert answer["results"] == []  # nothing on that site, and the tables are still there
    body["site_id"] = SITE
    answer = _both(client, admin, body)
    assert answer["results"] == []  # the is filter matches no page
    print(f"hostile {value!r}: answered, {len(answer['results'])} rows")


def test_openapi_shows_the_answer_shape(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v2/query"]["post"]
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/QueryResponse")
    assert {"400", "501", "503", "504"} <= set(op["responses"])
    assert any("HTTPBearer" in s for s in op["security"])


def test_clickhouse_without_window_functions_is_refused_clearly(tmp_path: Path) -> None:
    if find_clickhouse_server() is None:
        pytest.skip("no clickhouse-server installed (apt-get install clickhouse-server)")
    body = {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}
    checked = plan(QueryRequest.model_validate(body), datetime.now(UTC))
    with ClickHouseServer(tmp_path / "ch") as server:
        client = connect(server.url)
        try:
            if client.server_version[:2] >= (21, 8):
                pytest.skip(f"clickhouse-server {client.server_version} has window functions")
            with pytest.raises(UnsupportedServer, match="needs ClickHouse ≥ 21.8 or chdb"):
                run_clickhouse(client, checked, 5.0)
            steps = [Goal.parse("Visit /"), Goal.parse("Signup")]
            funnel = funnel_counts("clickhouse", checked, steps, clickhouse=client)
            with pytest.raises(UnsupportedServer, match="needs ClickHouse ≥ 21.8 or chdb"):
                asyncio.run(funnel)
        finally:
            client.close()


def _funnel(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """The funnel's answer, after checking that both stores give the same one."""
    answers = {}
    for source in ("postgres", "clickhouse"):
        r = client.post(f"/api/v2/funnel?source={source}", json=body, headers=headers)
        assert r.status_code == 200, r.text
        answers[source] = r.json()
        assert answers[source].pop("meta")["source"] == source
    assert answers["postgres"] == answers["clickhouse"]
    return answers["clickhouse"]


def test_configured_goals_and_funnels_on_both_stores(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = api
    with psycopg.connect(client.app.state.settings.require("postgres_url"), autocommit=True) as c:  # type: ignore[attr-defined]
        c.execute("INSERT INTO sites (domain) VALUES (%s) ON CONFLICT DO NOTHING", [SITE])
    goals = {}
    for spec in (
        {"goal_type": "page", "page_path": "/"},
        {"goal_type": "page", "page_path": "/docs", "display_name": "Docs"},
        {"goal_type": "page", "page_path": "/pricing"},
        {"goal_type": "event", "event_name": "Signup"},
    ):
        r = client.put("/api/v1/sites/goals", json={"site_id": SITE, **spec}, headers=admin)
        assert r.status_code == 200, r.text
        goals[r.json()["display_name"]] = r.json()["id"]
    assert list(goals) == ["Visit /", "Docs", "Visit /pricing", "Signup"]
    # PUT again finds the goal there (Plausible's find-or-create), whatever the display name.
    again = {"site_id": SITE, "goal_type": "page", "page_path": "/docs", "display_name": "X"}
    assert (
        client.put("/api/v1/sites/goals", json=again, headers=admin).json()["id"] == goals["Docs"]
    )

    # event:goal alone breaks down by the configured goals; conversion rate per goal.
    by_goal = _both(client, admin, {"site_id": SITE, "metrics": ["visitors", "conversion_rate"],
                                    "date_range": "7d", "dimensions": ["event:goal"]})  # fmt: skip
    assert by_goal["results"] == [
        {"metrics": [2, 66.7], "dimensions": ["Visit /"]},  # A and B, of A, B and C
        {"metrics": [1, 33.3], "dimensions": ["Docs"]},
        {"metrics": [1, 33.3], "dimensions": ["Signup"]},
        {"metrics": [1, 33.3], "dimensions": ["Visit /pricing"]},
    ]
    # A goal filter names a configured goal by its display name.
    docs = _both(client, admin, {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d",
                                 "filters": [["is", "event:goal", ["Docs"]]]})  # fmt: skip
    assert docs["results"] == [{"metrics": [1], "dimensions": []}]

    def put_funnel(name: str, steps: list[str]) -> int:
        body = {"site_id": SITE, "name": name, "steps": [goals[s] for s in steps]}
        r = client.put("/api/v1/sites/funnels", json=body, headers=admin)
        assert r.status_code == 200, r.text
        assert [s["display_name"] for s in r.json()["steps"]] == steps
        return int(r.json()["id"])

    reading = put_funnel("Reading", ["Visit /", "Docs"])
    answer = _funnel(client, admin, {"site_id": SITE, "funnel_id": reading, "date_range": "7d"})
    assert answer["name"] == "Reading"
    assert answer["steps"] == [
        {"label": "Visit /", "goal_id": goals["Visit /"], "visitors": 2, "conversion_rate": 100.0,
         "conversion_rate_step": 100.0, "dropoff": 0, "dropoff_percentage": 0.0},
        {"label": "Docs", "goal_id": goals["Docs"], "visitors": 1, "conversion_rate": 50.0,
         "conversion_rate_step": 50.0, "dropoff": 1, "dropoff_percentage": 50.0},
    ]  # fmt: skip
    assert (answer["all_visitors"], answer["entering_visitors"]) == (3, 2)
    assert answer["never_entering_visitors_percentage"] == 33.33
    # Order counts: A read /docs after /, never / after /docs.
    backwards = put_funnel("Backwards", ["Docs", "Visit /"])
    answer = _funnel(client, admin, {"site_id": SITE, "funnel_id": backwards, "date_range": "7d"})
    assert [s["visitors"] for s in answer["steps"]] == [1, 0]
    # The query API's filters apply: only Mac visits (A's).
    mac = {"site_id": SITE, "funnel_id": reading, "date_range": "7d",
           "filters": [["is", "visit:os", ["Mac"]]]}  # fmt: skip
    answer = _funnel(client, admin, mac)
    assert [s["visitors"] for s in answer["steps"]] == [1, 1]
    assert answer["all_visitors"] == 1
    # Putting a funnel again replaces its steps, under the same id.
    assert put_funnel("Reading", ["Visit /pricing", "Signup"]) == reading
    answer = _funnel(client, admin, {"site_id": SITE, "funnel_id": reading, "date_range": "7d"})
    assert [s["visitors"] for s in answer["steps"]] == [1, 1]

    # Errors in Plausible's shape, naming the field.
    r = client.post("/api/v2/funnel", json={"site_id": SITE, "funnel_id": 999_999,
                                            "date_range": "7d"}, headers=admin)  # fmt: skip
    assert (r.status_code, r.json()) == (404, {"error": "funnel_id: the site has no funnel 999999"})
    r = client.post("/api/v2/funnel", json={"site_id": SITE, "funnel_id": reading,
                                            "date_range": "8d"}, headers=admin)  # fmt: skip
    assert r.status_code == 400 and r.json()["error"].startswith("date_range:"), r.text
