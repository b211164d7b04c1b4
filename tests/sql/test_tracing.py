"""SQL statements as spans (asyncpg instrumentation): under the adapter call, never a value."""

from __future__ import annotations

from opentelemetry.trace import SpanKind
from telemetry_support import collected_spans, leaks

from adapters.sql import SqlAdapter, mysql
from gateway.limits import GuardedAdapter, Limiter
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types
from gateway.sdk import Query
from gateway.telemetry import instrument_asyncpg

LOGIN = "login-value-very-secret"
TITLE = "Title-Value-Secret"
USER = build_resource_types()["User"]


async def test_each_statement_is_a_client_span_under_its_adapter_call_without_parameters(
    table_adapter: SqlAdapter,
) -> None:
    instrument_asyncpg()
    mysql.instrument()  # the MariaDB flavour: as SqlAdapter.open does when tracing is on
    adapter = GuardedAdapter(table_adapter, Limiter(8, 8, 30), kind="sql")
    with collected_spans() as spans:
        created = await adapter.create("User", {"logon_name": LOGIN, "job_title": TITLE})
        await adapter.update("User", created.id, {"job_title": "Clerk-Value-Secret"})
        node = bind_filter(parse_filter(f'userName eq "{LOGIN}"', max_length=4096), USER)
        page = await adapter.search(Query("User", node))
        got = list(spans.get_finished_spans())
    assert [r.id for r in page.records] == [created.id]

    calls = {s.name: s for s in got if s.name.startswith("adapter.")}
    assert set(calls) == {"adapter.create", "adapter.update", "adapter.search"}
    verbs = {"adapter.create": "INSERT", "adapter.update": "UPDATE", "adapter.search": "SELECT"}
    for call in calls.values():
        assert call.context is not None
        below = [
            s for s in got if s.parent is not None and s.parent.span_id == call.context.span_id
        ]
        assert below, f"no statement under {call.name}"
        assert all(s.kind is SpanKind.CLIENT for s in below)
        statements = [str((s.attributes or {}).get("db.statement", "")) for s in below]
        assert any(verbs[call.name] in text and "$1" in text for text in statements), statements
        assert all("db.statement.parameters" not in (s.attributes or {}) for s in below)
    assert leaks(got, [LOGIN, TITLE, "Clerk-Value-Secret"]) == []
