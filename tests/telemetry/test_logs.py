"""The access line of each request and the JSON/text formatting of gateway logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from telemetry_support import (
    BASE,
    FILTER_VALUE,
    HEADERS,
    SECRETS,
    TOKEN,
    acme_stack,
    new_user,
    retitle,
)

from gateway import logs
from gateway.logs import ACCESS_LOGGER, JsonFormatter, TextFormatter, configure_logging


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_each_request_leaves_one_json_line_with_its_trace_and_no_values(
    access_lines: io.StringIO, spans: InMemorySpanExporter
) -> None:
    async with acme_stack() as stack:
        created = await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        user_id = (await created.json())["id"]
        await stack.client.patch(f"{BASE}/Users/{user_id}", json=retitle(), headers=HEADERS)
        query = {"filter": f'userName eq "{FILTER_VALUE}"'}
        await stack.client.get(f"{BASE}/Users", params=query, headers=HEADERS)
        await stack.client.get("/healthz")
    text = access_lines.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["operation"], line["status"]) for line in lines] == [
        ("create", 201),
        ("patch", 200),
        ("list", 200),
    ]
    assert lines[2]["filter"] == "username eq"  # the filter's shape, never its value
    patch = lines[1]
    op_span = next(s for s in spans.get_finished_spans() if s.name == "scim patch User")
    assert op_span.context is not None
    assert patch["trace_id"] == trace.format_trace_id(op_span.context.trace_id)
    assert patch["span_id"] == trace.format_span_id(op_span.context.span_id)
    assert {k: patch[k] for k in ("level", "logger", "message", "method", "route")} == {
        "level": "INFO",
        "logger": "gateway.access",
        "message": "request",
        "method": "PATCH",
        "route": "/apps/{app}/scim/v2/Users/{id}",
    }
    assert {k: patch[k] for k in ("app", "resource_type", "scim_id", "client", "outcome")} == {
        "app": "acme",
        "resource_type": "User",
        "scim_id": user_id,
        "client": "demo-idp",
        "outcome": "success",
    }
    assert patch["duration_ms"] > 0 and patch["time"].endswith("+00:00")
    assert not [s for s in SECRETS if s.lower() in text.lower()]
    assert "filter=" not in text and "%22" not in text  # no query string


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("gateway.x", logging.ERROR, __file__, 1, message, (), None)
    record.fields = fields
    return record


def test_json_lines_carry_the_running_span_and_an_error_type_without_its_message(
    spans: InMemorySpanExporter,
) -> None:
    try:
        raise ValueError(f"token {TOKEN} rejected")
    except ValueError:
        exc_info = sys.exc_info()
    with trace.get_tracer("probe").start_as_current_span("work") as span:
        record = _record("failed", app="crm")
        record.exc_info = exc_info
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert line["error_type"] == "ValueError" and line["app"] == "crm"
    assert TOKEN not in json.dumps(line)


def test_text_lines_put_fields_as_pairs_and_errors_as_their_type() -> None:
    try:
        raise ValueError(f"token {TOKEN} rejected")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record("request", app="crm", status=201, scim_type=None)
    record.exc_info = exc_info
    text = TextFormatter().format(record)
    assert "ERROR gateway.x request app=crm status=201" in text
    assert "scim_type" not in text and TOKEN not in text and text.endswith("error_type=ValueError")


def test_configure_logging_sets_the_level_and_one_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("WARNING", "text")
        configure_logging("DEBUG", "json")
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter | TextFormatter)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])


@pytest.fixture
def stderr_json(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """configure_logging's own set-up (JSON to stderr, INFO), stderr captured."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", "json")
    yield stream
    logs._batch.flush()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logs._batch.handler = None


def _only_configure_logging_handler() -> None:
    """Take pytest's capture handlers (added for the test's call phase) off the root."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h is logs._batch.handler]


def _expected(fields: dict[str, object]) -> dict[str, object]:
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "request", (), None)
    record.fields = fields
    return dict(json.loads(JsonFormatter().format(record)))


async def test_access_lines_of_one_loop_turn_go_out_together_as_json_formatter_lines(
    stderr_json: io.StringIO,
) -> None:
    # The shortcut is on: configure_logging's handler is the only one listening.
    _only_configure_logging_handler()
    assert logs._batch.direct() is not None
    logs.access("GET", "/apps/{app}/scim/v2/Users/{id}", 200, 1.5, None)
    logs.access("POST", "/apps/{app}/scim/v2/Users", 201, 2.25, None)
    assert stderr_json.getvalue() == ""  # waiting for the end of this loop turn
    await asyncio.sleep(0)
    lines = [json.loads(line) for line in stderr_json.getvalue().splitlines()]
    assert len(lines) == 2
    for line, (method, status, ms) in zip(
        lines, [("GET", 200, 1.5), ("POST", 201, 2.25)], strict=True
    ):
        fields = {"method": method, "route": line["route"], "status": status, "duration_ms": ms}
        expected = _expected(fields)
        assert line["time"].endswith("+00:00") and len(line["time"]) == 29
        assert {**line, "time": ""} == {**expected, "time": ""}
        assert list(line) == list(expected)  # the same keys in the same order


async def test_another_record_writes_the_waiting_access_lines_first(
    stderr_json: io.StringIO,
) -> None:
    _only_configure_logging_handler()
    logs.access("GET", "/apps/{app}/scim/v2/Users/{id}", 200, 1.0, None)
    logging.getLogger("gateway.other").warning("after the request")
    lines = [json.loads(line) for line in stderr_json.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["request", "after the request"]


def test_access_lines_outside_an_event_loop_are_written_at_once(
    stderr_json: io.StringIO,
) -> None:
    _only_configure_logging_handler()
    logs.access("GET", "/healthz", 200, 0.5, None)
    assert json.loads(stderr_json.getvalue())["route"] == "/healthz"


async def test_any_other_listener_takes_access_lines_through_logging(
    stderr_json: io.StringIO, access_lines: io.StringIO
) -> None:
    # A handler on the access logger (an operator's config, a test's capture) sees every
    # line as a log record, and the shortcut stands aside.
    _only_configure_logging_handler()
    assert logs._batch.direct() is None
    logs.access("GET", "/apps/{app}/scim/v2/Users", 200, 1.0, None)
    assert json.loads(access_lines.getvalue())["method"] == "GET"
    await asyncio.sleep(0)
    assert json.loads(stderr_json.getvalue())["method"] == "GET"  # propagated to the root
