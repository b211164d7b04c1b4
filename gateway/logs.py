"""Logging: JSON lines (or plain text) with trace ids, and one access line per request.

aiohttp's own access log stays off: it prints the query string, and a SCIM
filter's values are personal data. :func:`access` writes the line that
replaces it, from the request's :class:`~gateway.operation.Operation`: names,
ids, status and timing, never values, never the query string.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from gateway.operation import Operation
from gateway.telemetry import current_ids

__all__ = ["ACCESS_LOGGER", "JsonFormatter", "TextFormatter", "access", "configure_logging"]

ACCESS_LOGGER = "gateway.access"
_access = logging.getLogger(ACCESS_LOGGER)
#: The extra fields of a record are carried under this attribute.
_FIELDS = "fields"


_second: tuple[int, str] = (-1, "")


def _iso_ms(created: float) -> str:
    """``created`` as ISO 8601 UTC with milliseconds; the date part is made once a second."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, fields, trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_ms(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, _FIELDS, None) or {})
        if "trace_id" not in line:
            trace_id, span_id = current_ids()
            if trace_id is not None:
                line["trace_id"], line["span_id"] = trace_id, span_id
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__  # the type only: no message
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message key=value ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        exc_info, record.exc_info = record.exc_info, None  # no traceback: its message may
        try:  # quote request data; the type is added below
            text = super().format(record)
        finally:
            record.exc_info = exc_info
        fields = dict(getattr(record, _FIELDS, None) or {})
        if exc_info and exc_info[0] is not None:
            fields["error_type"] = exc_info[0].__name__
        pairs = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return f"{text} {pairs}" if pairs else text


def configure_logging(level: str, fmt: Literal["json", "text"] = "json") -> None:
    """Send every log record to stderr in ``fmt``, at ``level`` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # No formatter of ours prints the caller's file and line, thread or process:
    # not collecting them saves a stack walk and three look-ups per record
    # (the logging docs' "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def access_enabled() -> bool:
    return _access.isEnabledFor(logging.INFO)


#: The operation's fields an access line carries when they are set, in this order.
_OP_FIELDS = (
    "resource_type",
    "scim_id",
    "scim_type",
    "outcome",
    "client",
    "bulk_id",
    "trace_id",
    "span_id",
)


def access(method: str, route: str, status: int, duration_ms: float, op: Operation | None) -> None:
    """The access line of one request; ``route`` is the path template, without the query."""
    if not _access.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {"method": method, "route": route, "status": status}
    if op is not None:
        fields["app"] = op.app
        fields["operation"] = op.action
        for name in _OP_FIELDS:
            value = getattr(op, name)
            if value is not None:
                fields[name] = value
        if op.extra:
            fields.update(op.extra)  # names only, by contract (e.g. filter: "username eq")
    fields["duration_ms"] = round(duration_ms, 3)
    _access.info("request", extra={_FIELDS: fields})
