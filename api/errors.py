"""Error answers: 422s that name the field and never echo the input, 405s that list every method.

FastAPI's default 422 includes each error's input, which may be huge, hostile, or not even valid
JSON (``-inf``, a lone surrogate): that turned bad requests into 500s. Only the error type, the
field's location and the message are returned.

Starlette answers a method a path does not take with the ``Allow`` of the first route of that
path only: ``OPTIONS /api/v1/sites`` said ``Allow: POST`` although ``GET`` is served too. The 405
here lists the methods of every route of the path (RFC 9110 §15.5.6).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Scope

__all__ = ["install"]


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of ``app`` serves at the request's path."""
    allowed = []
    for method in _METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = allowed_methods(request.app, request.scope)
        if allow:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allow)}
    return await http_exception_handler(request, exc)


def install(app: FastAPI) -> None:
    """Use the safe 422 handler and the complete 405."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
