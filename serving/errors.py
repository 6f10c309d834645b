"""The HTTP error contract: ``{"error": {"type", "message", "param"?}}`` with a fitting 4xx code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cluster import ConflictError, EngramError, InvalidIdError, InvalidRequestError, NotFoundError
from memory import IngestError

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.param, self.headers = (
            status,
            type_,
            message,
            param,
            headers,
        )


def error_response(
    status: int, type_: str, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "message": message}
    if param is not None:
        body["param"] = param
    return JSONResponse({"error": body}, status_code=status, headers=headers)


_DOMAIN: list[tuple[type[EngramError], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (InvalidIdError, 422, "invalid_request"),
    (InvalidRequestError, 400, "invalid_request"),
    (IngestError, 422, "invalid_request"),
]
_HTTP_TYPES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _validation_param(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    return ".".join(loc) or "body"


def install(app: FastAPI) -> None:
    """Register handlers so that every error leaves as the JSON contract."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.type, e.message, e.param, e.headers)

    @app.exception_handler(EngramError)
    async def _domain(_: Request, e: EngramError) -> JSONResponse:
        for cls, status, type_ in _DOMAIN:
            if isinstance(e, cls):
                return error_response(status, type_, e.message, e.param)
        if isinstance(e, ValueError):
            return error_response(422, "invalid_request", e.message, e.param)
        log.exception("unhandled platform error")
        return error_response(500, "internal_error", "internal error")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        param = _validation_param(first)
        message = f"{param}: {first.get('msg', 'invalid request')}"
        return error_response(422, "invalid_request", message, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return error_response(e.status_code, _HTTP_TYPES.get(e.status_code, "invalid_request"), str(e.detail))
