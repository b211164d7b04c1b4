"""Unsampled requests of the lean tracer: no span, no OpenTelemetry context, ids kept.

gateway/spans.py: a request that brings no trace context and whose new trace is
not sampled runs with its ids in ``QUIET``. What an unsampled span gave must
still hold: the operation (audit, logs) knows the trace id, the legacy app gets
it in ``traceparent`` with the sampled flag off, other instrumentation's spans
are dropped, and a caller's sampled context is still followed.
"""

from __future__ import annotations

import re

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from telemetry_support import BASE, HEADERS, acme_stack, collected_spans, new_user, retitle

from gateway import operation
from gateway.spans import QUIET, FastTracer, Quiet, Sampling

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Keep:
    def __init__(self) -> None:
        self.ops: list[operation.Operation] = []

    async def opened(self, op: operation.Operation) -> None:
        return None

    async def closed(self, op: operation.Operation) -> None:
        self.ops.append(op)


async def test_an_unsampled_request_has_no_span_yet_its_ids_reach_the_audit_and_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roots: list[object] = []
    start_root = FastTracer.start_root

    def recorded(self: FastTracer, name: str = "", kind: SpanKind = SpanKind.SERVER) -> object:
        roots.append(start_root(self, name, kind))
        return roots[-1]

    monkeypatch.setattr(FastTracer, "start_root", recorded)
    keep = Keep()
    with collected_spans(lean=True, sampling=Sampling("ratio", True, 0.0)) as spans:
        async with acme_stack(audit=keep) as stack:
            created = await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
            assert created.status == 201
            user_id = (await created.json())["id"]
            assert spans.get_finished_spans() == ()
            # A caller's sampled context is followed all the same (parent-based).
            caller = {**HEADERS, "traceparent": f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"}
            resp = await stack.client.patch(
                f"{BASE}/Users/{user_id}", json=retitle(), headers=caller
            )
            assert resp.status == 200
            traced = spans.get_finished_spans()
    assert len(roots) == 1 and isinstance(roots[0], Quiet)  # the PATCH had a caller's context
    create = keep.ops[0]
    assert create.action == "create" and create.trace_id and create.span_id
    assert re.fullmatch("[0-9a-f]{32}", create.trace_id) and create.trace_id != "0" * 32
    posted = [c for c in stack.legacy.calls if c.method == "POST"]
    assert len(posted) == 1
    sent = TRACEPARENT.match(posted[0].headers["traceparent"])
    assert sent is not None
    trace_id, span_id, flags = sent.groups()
    assert (trace_id, span_id) == (create.trace_id, create.span_id)
    assert not int(flags, 16) & 1  # not sampled
    assert traced and {trace.format_trace_id(s.context.trace_id) for s in traced} == {CALLER_TRACE}
    assert keep.ops[-1].trace_id == CALLER_TRACE


def test_other_instrumentation_is_dropped_inside_a_quiet_request_only() -> None:
    provider = TracerProvider(sampler=Sampling("on", True).sdk_sampler())
    tracer = provider.get_tracer("other.instrumentation")
    outside = tracer.start_span("outside")
    token = QUIET.set(Quiet(7, 9))
    try:
        inside = tracer.start_span("inside")
    finally:
        QUIET.reset(token)
    assert outside.is_recording() and not inside.is_recording()
    outside.end()
    provider.shutdown()
