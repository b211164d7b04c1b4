"""Middlewares: every failure leaves as a SCIM Error body, never a traceback."""

from __future__ import annotations

import logging
import traceback

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import ERROR_URN, MethodNotAllowed, NotFound, PayloadTooLarge, ScimError
from gateway.http.responses import scim_response

log = logging.getLogger("gateway.http")


def _from_http(exc: web.HTTPException) -> ScimError:
    if exc.status == 413:
        return PayloadTooLarge("the request body is too large")
    if exc.status == 404:
        return NotFound("no such endpoint")
    if exc.status == 405:
        return MethodNotAllowed("method not allowed")
    error = ScimError(exc.reason)
    error.status = exc.status
    return error


@web.middleware
async def scim_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ScimError as exc:
        return scim_response(request, exc.to_json(), status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _from_http(exc)
        return scim_response(request, error.to_json(), status=error.status)
    except Exception as exc:
        # Type and place are logged, not the message: messages may carry request data.
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "unhandled %s at %s:%s on %s %s",
            type(exc).__name__,
            frame.filename,
            frame.lineno,
            request.method,
            request.path,
        )
        body = {"schemas": [ERROR_URN], "status": "500", "detail": "internal server error"}
        return scim_response(request, body, status=500)
