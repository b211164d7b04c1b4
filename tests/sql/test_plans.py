"""On 1,000,000 employees, a ``userName eq`` lookup and a GET by id use an index.

The statements are the ones the adapter builds (both modes); PostgreSQL's own
``EXPLAIN (FORMAT JSON)`` of each, with its parameters, must show an index scan
on the expected index and no sequential scan of emp_master.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from adapters.sql import SqlAdapter
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types
from gateway.sdk import Query

from .conftest import BIG, Payroll, open_adapter

USER = build_resource_types()["User"]
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


@pytest.fixture(params=["table", "statements"])
async def big_adapter(
    request: pytest.FixtureRequest, big_payroll: Payroll, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SqlAdapter]:
    monkeypatch.setenv("PAYROLL_DSN", big_payroll.dsn)
    adapter = await open_adapter(big_payroll.settings(request.param))
    yield adapter
    await adapter.aclose()


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


async def explain(payroll: Payroll, sql: str, args: list[Any]) -> list[dict[str, Any]]:
    conn = await payroll.connect()
    try:
        raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    finally:
        await conn.close()
    return list(nodes(json.loads(raw)[0]["Plan"]))


def assert_uses(plan: list[dict[str, Any]], index: str) -> None:
    scans = [(n["Node Type"], n.get("Index Name"), n.get("Relation Name")) for n in plan]
    assert any(kind in INDEX_SCANS and name == index for kind, name, _ in scans), scans
    assert not any(kind == "Seq Scan" for kind, _, _ in scans), scans


async def search_plan(adapter: SqlAdapter, payroll: Payroll, text: str) -> list[dict[str, Any]]:
    q = Query("User", bind_filter(parse_filter(text), USER), count=100)
    store, where, params, order_by = adapter.build_search(q)
    sql = store.search_sql(where, order_by, len(params.values))
    return await explain(payroll, sql, [*params.values, *store.search_args(100, 0)])


async def test_the_seed_holds_a_million_employees(big_payroll: Payroll) -> None:
    row = await big_payroll.row("SELECT count(*) AS n FROM emp_master")
    assert row is not None and row["n"] == BIG


async def test_user_name_eq_uses_the_lower_logon_name_index(
    big_adapter: SqlAdapter, big_payroll: Payroll
) -> None:
    plan = await search_plan(big_adapter, big_payroll, 'userName eq "EMP765432"')
    assert_uses(plan, "emp_master_logon_lower_ix")


async def test_a_mail_lookup_uses_the_lower_email_index(
    big_adapter: SqlAdapter, big_payroll: Payroll
) -> None:
    plan = await search_plan(
        big_adapter, big_payroll, 'emails[type eq "work" and value eq "emp9@payroll.example"]'
    )
    assert any(n.get("Index Name") == "emp_master_email_lower_ix" for n in plan)


async def test_get_by_id_uses_the_primary_key(
    big_adapter: SqlAdapter, big_payroll: Payroll
) -> None:
    store = big_adapter.stores["User"]
    assert_uses(await explain(big_payroll, store.get_sql(), [654321]), "emp_master_pkey")


async def test_the_lookups_answer_from_a_million_rows_in_milliseconds(
    big_adapter: SqlAdapter,
) -> None:
    q = Query("User", bind_filter(parse_filter('userName eq "emp765432"'), USER))
    started = time.perf_counter()
    page = await big_adapter.search(q)
    found = await big_adapter.get("User", page.records[0].id)
    elapsed = time.perf_counter() - started
    assert (page.total, found.data["logon_name"]) == (1, "emp765432")
    assert elapsed < 0.5, f"{elapsed:.3f} s"


async def page_plan(
    adapter: SqlAdapter, payroll: Payroll, sort_by: str | None, descending: bool = False
) -> list[dict[str, Any]]:
    q = Query("User", sort_by=sort_by, descending=descending, count=100)
    store, where, params, order_by = adapter.build_search(q)
    sql = store.search_sql(where, order_by, len(params.values))
    return await explain(payroll, sql, [*params.values, *store.search_args(101, 500)])


@pytest.mark.parametrize(
    ("sort_by", "descending", "index"),
    [
        (None, False, "emp_master_pkey"),
        (None, True, "emp_master_pkey"),
        ("userName", False, "emp_master_logon_lower_ix"),
        ("userName", True, "emp_master_logon_lower_ix"),
    ],
)
async def test_a_page_is_read_in_index_order_without_sorting_the_table(
    big_adapter: SqlAdapter,
    big_payroll: Payroll,
    sort_by: str | None,
    descending: bool,
    index: str,
) -> None:
    plan = await page_plan(big_adapter, big_payroll, sort_by, descending)
    assert_uses(plan, index)
    assert not any(n["Node Type"] == "Sort" for n in plan), [n["Node Type"] for n in plan]


async def test_the_guides_sw_and_co_indexes_serve_those_filters(
    big_adapter: SqlAdapter, big_payroll: Payroll
) -> None:
    """docs/sql-adapter.md: text_pattern_ops for ``sw``, a pg_trgm GIN index for ``co``.

    Built and dropped in one transaction, so the other plans never see them.
    """
    conn = await big_payroll.connect()
    try:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{big_payroll.schema}", public')
            await conn.execute(
                f'CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA "{big_payroll.schema}"'
            )
            await conn.execute(
                "CREATE INDEX emp_master_logon_prefix_ix "
                "ON emp_master (lower(logon_name) text_pattern_ops)"
            )
            await conn.execute(
                "CREATE INDEX emp_master_logon_trgm_ix "
                "ON emp_master USING gin (lower(logon_name) gin_trgm_ops)"
            )
            # A statistics target of 3,400 samples 1,020,000 rows: the whole table, so the
            # estimates are the same on every run. (With the default 30,000-row sample, a
            # sample could now and then make ``sw`` look unselective enough for the planner
            # to walk the primary key in ORDER BY order instead: seen once in CI.)
            await conn.execute("SET LOCAL default_statistics_target = 3400")
            await conn.execute("ANALYZE emp_master")
            plans = {}
            for text in ('userName sw "emp76543"', 'userName co "p76543"'):
                q = Query("User", bind_filter(parse_filter(text), USER), count=100)
                store, where, params, order_by = big_adapter.build_search(q)
                sql = store.search_sql(where, order_by, len(params.values))
                args = [*params.values, *store.search_args(100, 0)]
                raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
                plans[text] = list(nodes(json.loads(raw)[0]["Plan"]))
            await conn.execute("ROLLBACK AND CHAIN")  # drop them again, whatever the asserts say
        assert_uses(plans['userName sw "emp76543"'], "emp_master_logon_prefix_ix")
        assert_uses(plans['userName co "p76543"'], "emp_master_logon_trgm_ix")
    finally:
        await conn.close()
