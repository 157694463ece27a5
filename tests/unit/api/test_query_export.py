"""CSV answers of the query API: header, quoting, formulas kept inert, how they are asked for."""

from __future__ import annotations

import csv
import io

from starlette.requests import Request

from api.query.export import to_csv, wants_csv
from api.query.model import QueryMeta, QueryResponse, QueryRow


def _request(accept: str) -> Request:
    return Request({"type": "http", "headers": [(b"accept", accept.encode())]})


def test_asked_by_accept_or_format() -> None:
    assert wants_csv(_request("text/csv"), None)
    assert wants_csv(_request("application/json;q=0.5, text/csv;q=0.9"), None)
    assert not wants_csv(_request("application/json"), None)
    assert not wants_csv(_request("*/*"), None)
    assert wants_csv(_request("application/json"), "csv")
    assert not wants_csv(_request("text/csv"), "json")


def test_rows_are_quoted_and_formulas_inert() -> None:
    answer = QueryResponse(
        results=[
            QueryRow(metrics=[3, 50.0], dimensions=['/a,"b"\nc']),
            QueryRow(metrics=[1, None], dimensions=['=HYPERLINK("http://x")']),
        ],
        meta=QueryMeta(source="postgres", query_ms=1.0),
        query={"metrics": ["visitors", "bounce_rate"], "dimensions": ["event:page"]},
    )
    response = to_csv(answer)
    assert response.media_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(bytes(response.body).decode())))
    assert rows == [
        ["event:page", "visitors", "bounce_rate"],
        ['/a,"b"\nc', "3", "50.0"],
        ['\'=HYPERLINK("http://x")', "1", ""],
    ]
