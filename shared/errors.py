"""Error types raised by use cases, and the one place that renders them (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import database_unavailable

log = logging.getLogger("taktline.errors")

PROBLEM = "application/problem+json"


class DomainError(Exception):
    """A client-visible failure; never retried by consumers."""

    status = 400
    title = "Bad Request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(DomainError):
    status = 400
    title = "Invalid input"

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(f"{field}: {message}", field=field, **extra)
        self.field = field


class NotFound(DomainError):
    status = 404
    title = "Not Found"

    def __init__(self, what: str, id: object) -> None:
        super().__init__(f"{what} {id} does not exist", resource=what, id=id)


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition Failed"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem(exc.status, exc.title, exc.detail, **exc.extra)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_of(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return problem(400, "Invalid input", detail, field=errors[0]["field"] if errors else None,
                   errors=errors)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, str(exc.detail), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):  # a restart or failover: nothing was applied, try again
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        response = problem(503, "Service Unavailable", "the database is unavailable; retry shortly")
        response.headers["Retry-After"] = "1"
        return response
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


# For `responses=` on routes, so OpenAPI shows the problem documents.
def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    titles = {400: "Invalid input", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
              409: "Conflict", 412: "Precondition failed", 422: "Unprocessable"}
    return {c: {"description": titles.get(c, "Error"), "content": {PROBLEM: {}}} for c in codes}
