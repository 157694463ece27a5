"""Error answers: ``{"detail": ...}`` as ``HTTPException`` and the 422 handler (api/errors.py)
send them, and ``errors()`` to declare them on a route."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.models.common import Answer

__all__ = ["Error", "ValidationFailed", "ValidationIssue", "errors"]


class Error(Answer):
    """Why the request failed."""

    detail: str = Field(description="What went wrong, for a person to read.")


class ValidationIssue(Answer):
    """One invalid part of the request (its input is never echoed back)."""

    type: str = Field(description="The kind of error, e.g. missing, int_parsing, event_time.")
    loc: list[str | int] = Field(description="Where: body, query or path, then field or index.")
    msg: str = Field(description="What is wrong with it.")


class ValidationFailed(Answer):
    """The request does not fit the operation: every invalid part is named."""

    detail: list[ValidationIssue]


_DEFAULTS: dict[int, tuple[str, Any]] = {
    400: ("The body could not be parsed (not UTF-8 text)", Error),
    401: ("No bearer token, or one that is malformed, wrongly signed or expired", Error),
    403: ("The token is valid but does not grant this", Error),
    404: ("Not found", Error),
    413: (
        "Body over FOOTPRINT_MAX_BODY_BYTES (1 MiB by default): refused before it is read",
        Error,
    ),
    422: ("Invalid input: each invalid part is named, its value is not echoed", ValidationFailed),
    503: ("A store or the broker is unavailable: nothing was done, try again", Error),
    504: ("Stopped after its time budget", Error),
}
_CHALLENGE = {
    "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}},
}


def errors(*codes: int, notes: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the error codes a route answers with, ``notes`` overriding the text."""
    notes = notes or {}
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description, model = _DEFAULTS[code]
        out[code] = {"model": model, "description": notes.get(code, description)}
        if code == 401:
            out[code]["headers"] = _CHALLENGE
    return out
