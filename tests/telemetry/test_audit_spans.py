"""The audit trail's spans: a write's pending event before the legacy call, the close after."""

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
    audit = _by_name(got, "audit.write")
    phases = [(s.attributes or {}).get("audit.phase") for s in audit]
    assert sorted(str(p) for p in phases) == ["close", "open"]
    for span in audit:
        assert span.parent is not None and span.parent.span_id == op_span.context.span_id
        assert (span.attributes or {})["scim.app"] == "acme"
    (opened,) = [s for s in audit if (s.attributes or {})["audit.phase"] == "open"]
    (update,) = _by_name(got, "adapter.update")
    assert opened.end_time is not None and update.start_time is not None
    assert opened.end_time <= update.start_time  # committed before the legacy write began
    assert leaks(got, SECRETS) == []
