"""Spans of SCIM requests, read from the SDK's in-memory exporter."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from rest_support import closed_port
from telemetry_support import (
    BASE,
    FILTER_VALUE,
    HEADERS,
    LEGACY_KEY,
    acme_stack,
    leaks,
    new_user,
    retitle,
)

from gateway import operation, telemetry
from gateway.errors import Conflict

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)


async def test_a_patch_is_one_trace_from_the_callers_context_down_to_the_legacy_http_call(
    spans: InMemorySpanExporter,
) -> None:
    async with acme_stack() as stack:
        created = await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        assert created.status == 201
        user_id = (await created.json())["id"]
        spans.clear()
        stack.legacy.clear()
        headers = {**HEADERS, "traceparent": TRACEPARENT}
        resp = await stack.client.patch(f"{BASE}/Users/{user_id}", json=retitle(), headers=headers)
        assert resp.status == 200
    got = list(spans.get_finished_spans())

    server = named(got, "PATCH /apps/{app}/scim/v2/Users/{id}")
    assert server.kind is SpanKind.SERVER
    assert server.parent is not None and server.parent.is_remote
    assert trace.format_span_id(server.parent.span_id) == CALLER_SPAN
    assert {hex_ids(s)[0] for s in got} == {CALLER_TRACE}
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["url.path"] == f"{BASE}/Users/{user_id}"

    op_span = named(got, "scim patch User")
    assert op_span.parent is not None and server.context is not None
    assert op_span.parent.span_id == server.context.span_id
    assert dict(op_span.attributes or {}) == {
        "scim.app": "acme",
        "scim.operation": "patch",
        "scim.outcome": "success",
        "scim.resource_type": "User",
        "scim.id": user_id,
        "scim.client": "demo-idp",
        "scim.changed": ("title",),
        "http.response.status_code": 200,
    }
    below = {s.name for s in children(got, op_span)}
    assert {"adapter.get", "adapter.update", "mapping.from_legacy", "mapping.to_legacy"} <= below

    update = named(got, "adapter.update")
    assert (update.attributes or {})["adapter"] == "rest"
    (http_call,) = children(got, update)
    assert http_call.kind is SpanKind.CLIENT and http_call.name == "PATCH"
    (get_call,) = children(got, named(got, "adapter.get"))
    assert get_call.kind is SpanKind.CLIENT and get_call.name == "GET"

    sent = [c for c in stack.legacy.calls if c.method == "PATCH"]
    assert len(sent) == 1
    assert sent[0].headers["traceparent"] == f"00-{CALLER_TRACE}-{hex_ids(http_call)[1]}-01"
    assert leaks(got) == []


async def test_the_operation_knows_its_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    seen: list[operation.Operation] = []

    class Keep:
        async def opened(self, op: operation.Operation) -> None:
            return None

        async def closed(self, op: operation.Operation) -> None:
            seen.append(op)

    async with acme_stack(audit=Keep()) as stack:
        resp = await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        assert resp.status == 201
    op_span = named(list(spans.get_finished_spans()), "scim create User")
    (op,) = seen
    assert (op.trace_id, op.span_id) == hex_ids(op_span)


async def test_no_span_holds_a_token_key_password_filter_value_or_attribute_value(
    spans: InMemorySpanExporter,
) -> None:
    async with acme_stack() as stack:
        client = stack.client
        created = await client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        user_id = (await created.json())["id"]
        again = await client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        assert again.status == 409
        query = {"filter": f'userName eq "{FILTER_VALUE}"', "attributes": "userName"}
        listed = await client.get(f"{BASE}/Users", params=query, headers=HEADERS)
        assert listed.status == 200
        patched = await client.patch(f"{BASE}/Users/{user_id}", json=retitle(), headers=HEADERS)
        assert patched.status == 200
        wrong = await client.get(f"{BASE}/Users", headers={"Authorization": f"Bearer {LEGACY_KEY}"})
        assert wrong.status == 401
    got = list(spans.get_finished_spans())
    assert len(got) > 15
    search = named(got, "adapter.search")
    (http_call,) = children(got, search)
    assert str((http_call.attributes or {})["url.full"]).endswith("/api/v1/accounts")
    listing = named(got, "scim list User")
    assert (listing.attributes or {})["scim.filter"] == "username eq"  # its shape, no value
    assert leaks(got) == []


def test_the_leak_check_finds_a_secret_wherever_a_span_holds_it(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("probe")
    with tracer.start_as_current_span("GET", attributes={"http.target": f"/?q={FILTER_VALUE}"}):
        pass
    with tracer.start_as_current_span("x") as probe:
        probe.add_event("retry", {"reason": f"bad {LEGACY_KEY}"})
    found = leaks(spans.get_finished_spans())
    assert len(found) == 2 and FILTER_VALUE in found[0] and LEGACY_KEY in found[1]


async def test_a_refusal_names_its_error_type_but_is_no_span_error(
    spans: InMemorySpanExporter,
) -> None:
    async with acme_stack() as stack:
        await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        spans.clear()
        again = await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        assert again.status == 409
    got = list(spans.get_finished_spans())
    op_span = named(got, "scim create User")
    assert (op_span.attributes or {})["scim.type"] == "uniqueness"
    assert (op_span.attributes or {})["error.type"] == "Conflict"
    assert op_span.status.status_code is StatusCode.UNSET
    server = named(got, "POST /apps/{app}/scim/v2/Users")
    assert server.status.status_code is StatusCode.UNSET


async def test_a_legacy_app_that_is_down_marks_the_adapter_call_by_error_type(
    spans: InMemorySpanExporter,
) -> None:
    async with acme_stack(legacy_url=f"http://127.0.0.1:{closed_port()}/api/v1") as stack:
        resp = await stack.client.get(f"{BASE}/Users/acc_000001", headers=HEADERS)
        assert resp.status == 503
    got = list(spans.get_finished_spans())
    adapter = named(got, "adapter.get")
    assert adapter.status.status_code is StatusCode.ERROR
    assert adapter.status.description == "UpstreamUnavailable"
    assert (adapter.attributes or {})["error.type"] == "UpstreamUnavailable"
    assert adapter.events == ()  # no exception event: its message could hold data
    # A GET is retried (adapters/rest retry:): one HTTP span per attempt, each failed.
    attempts = children(got, adapter)
    assert len(attempts) == 3
    for http_call in attempts:
        assert http_call.status.status_code is StatusCode.ERROR
        # The client instrumentation records the exception; its message and traceback are cut.
        (event,) = http_call.events
        assert dict(event.attributes or {}) == {
            "exception.type": "adapters.rest.wire.NotConnected",
            "exception.escaped": "False",
        }
    server = named(got, "GET /apps/{app}/scim/v2/Users/{id}")
    assert server.status.status_code is StatusCode.ERROR
    assert leaks(got) == []


async def test_span_helper_makes_a_child_span_and_records_only_the_error_type(
    spans: InMemorySpanExporter,
) -> None:
    with telemetry.span("request") as outer:
        with telemetry.span("audit.write", **{"scim.app": "crm", "scim.id": None}):
            pass
        try:
            with telemetry.span("audit.write", **{"scim.app": "crm"}):
                raise RuntimeError(f"connection to postgres://u:{LEGACY_KEY}@db failed")
        except RuntimeError:
            pass
        try:
            with telemetry.span("audit.write"):
                raise Conflict("a value that must not show")
        except Conflict:
            pass
    got = list(spans.get_finished_spans())
    writes = [s for s in got if s.name == "audit.write"]
    assert len(writes) == 3
    assert all(
        s.parent is not None and s.parent.span_id == outer.get_span_context().span_id
        for s in writes
    )
    assert dict(writes[0].attributes or {}) == {"scim.app": "crm"}
    assert writes[1].status.status_code is StatusCode.ERROR
    assert (writes[1].attributes or {})["error.type"] == "RuntimeError"
    assert writes[2].status.status_code is StatusCode.UNSET  # a 4xx is the caller's
    assert leaks(got, [LEGACY_KEY, "must not show"]) == []
