"""Where the legacy app's failures become gateway errors: the one place (STYLE habit 5).

    refused, DNS, reset   -> UpstreamUnavailable 503 "cannot reach the app at host:port: ..."
    timeout               -> UpstreamTimeout 504
    404, 410 on a record  -> NotFound 404 (on a list: UpstreamError 502, a wrong path)
    409; a listed status whose body matches duplicate.body_pattern
                          -> Conflict 409 uniqueness
    409 on a DELETE       -> 409 without scimType: the record is in a state the app will
                             not delete (declare a pre-step, ``delete.before``)
    other 400, 422        -> InvalidValue 400, with the app's own short message
    401, 403              -> UpstreamError 502 (the app refused the gateway's credentials)
    429, 503              -> UpstreamUnavailable 503 with Retry-After
    504                   -> UpstreamTimeout 504
    3xx, other 4xx/5xx, bad JSON, no record
                          -> UpstreamError 502

Messages name the call by its template (``PATCH /accounts/{id}``), never by
its URL, and never hold a credential: texts from the app pass through
:meth:`Redactor.clean` first. The original exception is chained as the cause.

The app's own reason survives: structured errors (``{"errors": [{"code":
"TOO_LONG", "field": "employee_ref"}]}``, or one such object) give their codes
and fields to the detail; plain strings (``["Login has already been taken"]``)
give their text. Every failed answer is logged with the call's template, the
status and the app's codes and fields only: a free text may echo a value.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import math
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson

from adapters.rest import wire
from adapters.rest.config import Duplicate
from gateway.sdk import (
    Conflict,
    InvalidValue,
    NotFound,
    ScimError,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.sdk import UpstreamUnavailable as Unavailable

log = logging.getLogger("adapters.rest")

_MESSAGE_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: An app's error code or field name: a short token. Anything else may be a value: dropped.
_TOKEN = re.compile(r"[A-Za-z0-9_.\-:/\[\]]{1,64}")


class Refused(ScimError):
    """The app refused a DELETE with 409: the record is in a state it will not delete.

    Not ``uniqueness`` (RFC 7644 3.12 gives that to creates and updates); no scimType fits.
    """

    status = 409


class Redactor:
    """Removes every known secret from texts that may reach an error detail or a log."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) >= 4:  # shorter ones would blank out ordinary words
            self._secrets.add(secret)

    def clean(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "****")
        text = _CONTROL.sub(" ", text).strip()
        if len(text) > _MESSAGE_LIMIT:
            text = text[: _MESSAGE_LIMIT - 1] + "…"
        return text


@contextmanager
def transport_errors(label: str, where: str, retry_after: int) -> Iterator[None]:
    """Translate what aiohttp raises while ``label`` (e.g. ``GET /accounts/{id}``) runs;
    each failed attempt is logged with its reason (never a URL, value or credential)."""
    try:
        yield
    except (TimeoutError, aiohttp.ClientError, wire.WireError) as exc:  # timeouts: TimeoutError
        error = _transport_error(exc, label, where, retry_after)
        log.warning("the call %s failed: %s", label, error.detail)
        raise error from exc


def _transport_error(
    exc: TimeoutError | aiohttp.ClientError | wire.WireError,
    label: str,
    where: str,
    retry_after: int,
) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"the app at {where} did not answer {label} in time")
    if isinstance(exc, wire.WireError):
        return _wire_error(exc, label, where, retry_after)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Unavailable(
            f"cannot reach the app at {where}: its name does not resolve", retry_after=retry_after
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        detail = f"cannot reach the app at {where}: {_os_reason(exc.os_error)}"
        return Unavailable(detail, retry_after=retry_after)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return _broke(label, where, retry_after)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamError(f"the app sent a broken answer to {label}")
    return UpstreamError(f"the call {label} to the app at {where} failed")


def _wire_error(exc: wire.WireError, label: str, where: str, retry_after: int) -> UpstreamError:
    """What the REST adapter's own connection pool (adapters/rest/wire.py) raised."""
    if isinstance(exc, wire.NotConnected):
        if isinstance(exc.os_error, socket.gaierror):
            reason = "its name does not resolve"
        elif exc.os_error is not None and not isinstance(exc.os_error, ssl.SSLError):
            reason = _os_reason(exc.os_error)
        else:
            reason = exc.reason
        return Unavailable(f"cannot reach the app at {where}: {reason}", retry_after=retry_after)
    if isinstance(exc, wire.Disconnected):
        return _broke(label, where, retry_after)
    if isinstance(exc, wire.BrokenAnswer):
        return UpstreamError(f"the app sent a broken answer to {label}")
    if isinstance(exc, wire.Unsendable):
        return UpstreamError(f"the call {label} cannot be sent: {exc}")
    return UpstreamError(f"the call {label} to the app at {where} failed")


def _broke(label: str, where: str, retry_after: int) -> Unavailable:
    error = Unavailable(
        f"the connection to the app at {where} broke during {label}", retry_after=retry_after
    )
    error.outcome_unknown = True  # the request may have been sent and stored
    return error


def _os_reason(error: OSError) -> str:
    known = {
        errno.ECONNREFUSED: "connection refused",
        errno.EHOSTUNREACH: "host unreachable",
        errno.ENETUNREACH: "network unreachable",
        errno.ECONNRESET: "connection reset",
    }
    if error.errno in known:
        return known[error.errno]
    if isinstance(error, TimeoutError):
        return "connection timed out"
    return (error.strerror or type(error).__name__).lower()


def raise_for_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    label: str,
    duplicate: Duplicate,
    redact: Redactor,
    retry_after: int,
) -> None:
    """Raise the gateway error for an answer that is not a success; return on 2xx/3xx."""
    if status < 400:
        return
    # A 404 is how a record is found missing (an ordinary answer), not a failure.
    level = logging.DEBUG if status in (404, 410) else logging.WARNING
    log.log(level, "the app answered %s with %s%s", label, status, _logged_codes(body))
    text = body.decode("utf-8", "replace")
    if status == 409 and label.startswith("DELETE "):
        message = app_message(body, redact)
        suffix = f": {message}" if message else ""
        raise Refused(f"the app refused {label} (HTTP 409){suffix}")
    if status == 409 or (status in duplicate.statuses and _matches(duplicate.body_pattern, text)):
        what = _duplicate_detail(body, redact)
        raise Conflict(f"the app already holds a record with that value ({what})")
    if status in (404, 410):
        raise NotFound(f"the app has no such record ({label} answered {status})")
    if status in (401, 403):
        raise UpstreamError(
            f"the app refused the gateway's credentials ({label} answered {status})"
        )
    if status in (429, 503):
        wait = parse_retry_after(headers.get("Retry-After"), retry_after)
        raise Unavailable(f"the app is busy ({label} answered {status})", retry_after=wait)
    if status == 504:
        raise UpstreamTimeout(f"a proxy in front of the app timed out ({label} answered 504)")
    message = app_message(body, redact)
    suffix = f": {message}" if message else ""
    if status in (400, 422):
        raise InvalidValue(f"the app refused {label} (HTTP {status}){suffix}")
    raise UpstreamError(f"the app failed {label} (HTTP {status}){suffix}")


def _matches(pattern: str | None, text: str) -> bool:
    return pattern is not None and re.search(pattern, text, re.IGNORECASE) is not None


def _duplicate_detail(body: bytes, redact: Redactor) -> str:
    data = _json_or_none(body)
    if isinstance(data, dict) and isinstance(data.get("field"), str):
        return f"field {redact.clean(data['field'])}"
    return app_message(body, redact) or "duplicate"


def app_message(body: bytes, redact: Redactor) -> str:
    """The app's own short error text, from the usual JSON keys; "" when there is none."""
    data = _json_or_none(body)
    coded = app_codes(data)
    if coded:
        return redact.clean("; ".join(coded))
    found: list[str] = []
    if isinstance(data, dict):
        for key in ("errors", "error", "message", "detail", "error_description"):
            found.extend(_strings(data.get(key)))
    elif isinstance(data, list):
        found.extend(_strings(data))
    return redact.clean("; ".join(found)) if found else ""


def app_codes(data: Any) -> list[str]:
    """``CODE (field NAME)`` of each structured error: ``{"errors": [{"code", "field"}]}``,
    ``{"error": {...}}``, a list of them or one such object. Only short tokens are kept."""
    if isinstance(data, dict):
        nested = data.get("errors", data.get("error"))
        elements = nested if isinstance(nested, list) else [nested if nested else data]
    else:
        elements = data if isinstance(data, list) else []
    return [text for element in elements if (text := _coded(element))]


def _coded(element: Any) -> str:
    if not isinstance(element, dict):
        return ""
    code, field = element.get("code"), element.get("field")
    code = code if isinstance(code, str) and _TOKEN.fullmatch(code) else None
    field = field if isinstance(field, str) and _TOKEN.fullmatch(field) else None
    if code and field:
        return f"{code} (field {field})"
    return code or (f"field {field}" if field else "")


def _logged_codes(body: bytes) -> str:
    codes = app_codes(_json_or_none(body))
    return f": {'; '.join(codes)}" if codes else ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def parse_retry_after(
    value: str | None, default: int, *, now: Callable[[], datetime] = _utc_now
) -> int:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else ``default``."""
    seconds = retry_after_seconds(value, now=now)
    return default if seconds is None else seconds


def retry_after_seconds(value: str | None, *, now: Callable[[], datetime] = _utc_now) -> int | None:
    """Whole seconds (at least 1) a Retry-After header asks for; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return max(1, int(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(1, math.ceil((moment - now()).total_seconds()))


def malformed(label: str, what: str) -> UpstreamError:
    return UpstreamError(f"the app's answer to {label} is unusable: {what}")
