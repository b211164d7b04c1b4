"""SCIM responses: orjson bodies and the content type the client can read."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

SCIM_JSON = "application/scim+json"
PLAIN_JSON = "application/json"


def negotiate(accept: str | None) -> str:
    """``application/json`` only when the client accepts that and not SCIM JSON (rule 15).

    A missing, ``*/*`` or unusual Accept header gets SCIM JSON, never a 406.
    """
    if not accept:
        return SCIM_JSON
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if SCIM_JSON in kinds or "*/*" in kinds or "application/*" in kinds:
        return SCIM_JSON
    return PLAIN_JSON if PLAIN_JSON in kinds else SCIM_JSON


def scim_response(
    request: web.Request,
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type=negotiate(request.headers.get("Accept")),
    )
