"""Logging: JSON lines (or plain text) with trace ids, and one access line per request.

aiohttp's own access log stays off: it prints the query string, and a SCIM
filter's values are personal data. :func:`access` writes the line that
replaces it, from the request's :class:`~gateway.operation.Operation`: names,
ids, status and timing, never values, never the query string.

With the handler :func:`configure_logging` installs (JSON to stderr) and
nothing else listening, an access line skips ``logging``'s record, locks and
handler chain: it is formatted as :class:`JsonFormatter` would and the lines
of one event-loop turn are written together, one ``write`` for the batch
(the way nginx buffers its access log). Any other record that handler emits
writes the waiting lines first, so the order of lines is kept; the lines
still waiting are written at exit. Another handler or a filter anywhere on
the way (a test's ``caplog``, an operator's own logging config) turns the
shortcut off and every line goes through ``logging`` as before.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import sys
import time
from collections import deque
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


def _json_line(
    created: float,
    level: str,
    logger: str,
    message: str,
    fields: dict[str, Any] | None,
    error_type: str | None = None,
) -> str:
    line: dict[str, Any] = {"time": _iso_ms(created), "level": level, "logger": logger}
    line["message"] = message
    if fields:
        line.update(fields)
    if "trace_id" not in line:
        trace_id, span_id = current_ids()
        if trace_id is not None:
            line["trace_id"], line["span_id"] = trace_id, span_id
    if error_type is not None:
        line["error_type"] = error_type  # the type only: no message
    try:
        return orjson.dumps(line, default=str).decode()
    except TypeError:  # a lone surrogate (undecodable request bytes) in a value
        return json.dumps(line, default=str)  # escapes it as \udcff instead


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, fields, trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        exc = record.exc_info
        return _json_line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, _FIELDS, None),
            exc[0].__name__ if exc and exc[0] is not None else None,
        )


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


class _AccessBatch:
    """Access lines formatted without ``logging``, written once per event-loop turn."""

    __slots__ = ("handler", "lines", "scheduled")

    def __init__(self) -> None:
        #: The JSON handler configure_logging installed; None: no shortcut (text, or none yet).
        self.handler: _GatewayHandler | None = None
        #: A deque: another thread's record may write the lines while the loop adds one.
        self.lines: deque[str] = deque()
        #: The loop whose next turn writes the lines (another loop's, once closed, never will).
        self.scheduled: asyncio.AbstractEventLoop | None = None

    def direct(self) -> _GatewayHandler | None:
        """The handler to write to, when it alone would see an access record, unfiltered."""
        handler = self.handler
        if handler is None or _access.handlers or _access.filters or not _access.propagate:
            return None
        root = _root
        if len(root.handlers) != 1 or root.handlers[0] is not handler or root.filters:
            return None
        if handler.filters or handler.level > logging.INFO:
            return None
        return handler

    def add(self, line: str) -> None:
        self.lines.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a CLI command): no turn to wait for
            self.flush()
            return
        if self.scheduled is not loop:
            self.scheduled = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = None
        handler, lines = self.handler, self.lines
        if not lines or handler is None:
            return
        taken = []
        with contextlib.suppress(IndexError):
            while True:
                taken.append(lines.popleft())
        text = "\n".join(taken) + "\n"
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        except Exception:  # as logging does: a broken stream must not fail the request
            handler.handleError(
                logging.makeLogRecord({"msg": "access lines", "name": ACCESS_LOGGER})
            )
        finally:
            handler.release()


class _GatewayHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler of configure_logging: access lines waiting for the end of the
    loop turn are written before any other record, so lines stay in order."""

    def emit(self, record: logging.LogRecord) -> None:
        if _batch.lines:
            _batch.flush()
        super().emit(record)


_root = logging.getLogger()
_batch = _AccessBatch()
atexit.register(_batch.flush)


def configure_logging(level: str, fmt: Literal["json", "text"] = "json") -> None:
    """Send every log record to stderr in ``fmt``, at ``level`` and above."""
    _batch.flush()
    handler = _GatewayHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _batch.handler = handler if fmt == "json" else None
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
    if _batch.direct() is not None:
        _batch.add(_json_line(time.time(), "INFO", ACCESS_LOGGER, "request", fields))
        return
    _access.info("request", extra={_FIELDS: fields})
