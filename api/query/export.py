"""A query's results as CSV: ``POST /api/v2/query`` with ``Accept: text/csv`` or ``?format=csv``.

One header row (the dimension names, then the metric names, as asked), then one row per result,
written by the csv module (RFC 4180 quoting, CRLF line ends). A text value a spreadsheet would
run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a link
or a UTM tag anyone can send) is written with a leading ``'``, as OWASP advises; numbers are
written as they are.
"""

from __future__ import annotations

import csv
import io

from fastapi import Request
from fastapi.responses import Response

from api.query.model import QueryResponse

__all__ = ["CSV_TYPE", "to_csv", "wants_csv"]

CSV_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: Request, fmt: str | None) -> bool:
    """Whether the caller asked for CSV (``?format=csv`` or an Accept header naming text/csv)."""
    if fmt is not None:
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip() == "text/csv" for part in accept.split(","))


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(answer: QueryResponse) -> Response:
    """The answer's rows as a CSV document."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*answer.query["dimensions"], *answer.query["metrics"]])
    for row in answer.results:
        writer.writerow(
            [*(_cell(v) for v in row.dimensions), *("" if m is None else m for m in row.metrics)]
        )
    return Response(
        buffer.getvalue(),
        media_type=CSV_TYPE,
        headers={"Content-Disposition": 'attachment; filename="query.csv"'},
    )
