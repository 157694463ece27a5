"""422 answers that name the field and never echo the input back.

FastAPI's default includes each error's input, which may be huge, hostile, or not even valid
JSON (``-inf``, a lone surrogate): that turned bad requests into 500s. Only the error type, the
field's location and the message are returned.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["install"]


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI) -> None:
    """Use the safe 422 handler."""
    app.add_exception_handler(RequestValidationError, _validation_error)
