"""The audit trail's span: a write's pending event, committed before the legacy call."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from telemetry_support import BASE, HEADERS, SECRETS, acme_stack, leaks, new_user, retitle


def _by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_a_patch_writes_its_audit_event_inside_the_operations_trace(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    async with acme_stack(state_url=f"sqlite:///{tmp_path / 'state.db'}") as stack:
        created = await stack.client.post(f"{BASE}/Users", json=new_user(), headers=HEADERS)
        assert created.status == 201
        user_id = (await created.json())["id"]
        spans.clear()
        resp = await stack.client.patch(f"{BASE}/Users/{user_id}", json=retitle(), headers=HEADERS)
        assert resp.status == 200
    got = list(spans.get_finished_spans())
    (op_span,) = _by_name(got, "scim patch User")
    assert op_span.context is not None
    (opened,) = _by_name(got, "audit.write")  # the pending event; the close is only queued
    assert opened.parent is not None and opened.parent.span_id == op_span.context.span_id
    assert dict(opened.attributes or {}) == {"scim.app": "acme", "audit.phase": "open"}
    (update,) = _by_name(got, "adapter.update")
    assert opened.end_time is not None and update.start_time is not None
    assert opened.end_time <= update.start_time  # committed before the legacy write began
    assert leaks(got, SECRETS) == []
