"""Fixtures for the SQL adapter: a PostgreSQL server, the payroll schema, adapters on it.

``payroll`` empties the session's payroll schema before the test and sets
``PAYROLL_DSN`` (the shipped settings read it); ``payroll.settings(mode)`` gives
``mappings/payroll/sql.yaml`` (table mode) or ``sql-statements.yaml`` pointed at
the session's schema; ``open_adapter`` opens a :class:`SqlAdapter` on them.
``big_payroll`` is a second schema holding 1,000,000 employees, seeded once per
session.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import yaml
from sql.pg import (
    create_payroll,
    drop_schema,
    empty_payroll,
    new_schema_name,
    postgres_server,
    seed_employees,
)

from adapters.sql import SqlAdapter, SqlSettings
from gateway.mapping.engine import MAPPINGS_DIR, load_mapping

PAYROLL = MAPPINGS_DIR / "payroll"
BIG = 1_000_000


@dataclass(frozen=True)
class Payroll:
    """The payroll schema of this session, and the server it is on."""

    dsn: str
    schema: str

    def settings(self, mode: str = "table", **overrides: Any) -> dict[str, Any]:
        """The shipped settings of ``mode`` ("table" or "statements"), in this schema."""
        name = "sql.yaml" if mode == "table" else "sql-statements.yaml"
        raw: dict[str, Any] = yaml.safe_load((PAYROLL / name).read_text("utf-8"))
        raw = copy.deepcopy(raw)
        if mode == "table":
            for section in ("users", "groups"):
                raw[section]["schema"] = self.schema
        else:
            raw["search_path"] = [self.schema]
        raw.update(overrides)
        return raw

    async def connect(self) -> asyncpg.Connection[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        await conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    async def row(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One row, read straight from the database (never through the adapter)."""
        conn = await self.connect()
        try:
            return await conn.fetchrow(sql, *args)
        finally:
            await conn.close()

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self.connect()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def employee(self, emp_no: str | int) -> asyncpg.Record | None:
        return await self.row("SELECT * FROM emp_master WHERE emp_no = $1", int(emp_no))

    async def members(self, unit_id: str | int) -> set[str]:
        rows = await self.rows(
            "SELECT emp_no FROM org_unit_member WHERE unit_id = $1", int(unit_id)
        )
        return {str(r["emp_no"]) for r in rows}


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def payroll_schema(pg_dsn: str) -> Iterator[str]:
    schema = new_schema_name()
    asyncio.run(create_payroll(pg_dsn, schema))
    yield schema
    asyncio.run(drop_schema(pg_dsn, schema))


@pytest.fixture
async def payroll(pg_dsn: str, payroll_schema: str, monkeypatch: pytest.MonkeyPatch) -> Payroll:
    await empty_payroll(pg_dsn, payroll_schema)
    monkeypatch.setenv("PAYROLL_DSN", pg_dsn)
    return Payroll(pg_dsn, payroll_schema)


@pytest.fixture(scope="session")
def big_payroll(pg_dsn: str) -> Iterator[Payroll]:
    """1,000,000 employees (one INSERT ... SELECT generate_series), for the plans and the bench."""
    schema = new_schema_name("big_")
    asyncio.run(create_payroll(pg_dsn, schema))
    seconds = asyncio.run(seed_employees(pg_dsn, schema, BIG))
    print(f"\nseeded {BIG:,} employees in {seconds:.1f} s")
    yield Payroll(pg_dsn, schema)
    asyncio.run(drop_schema(pg_dsn, schema))


async def open_adapter(settings: dict[str, Any]) -> SqlAdapter:
    adapter = SqlAdapter(
        SqlSettings.model_validate(settings), app="payroll", mapping=load_mapping(PAYROLL)
    )
    await adapter.open()
    return adapter


@pytest.fixture
async def table_adapter(payroll: Payroll) -> AsyncIterator[SqlAdapter]:
    adapter = await open_adapter(payroll.settings("table"))
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def statement_adapter(payroll: Payroll) -> AsyncIterator[SqlAdapter]:
    adapter = await open_adapter(payroll.settings("statements"))
    yield adapter
    await adapter.aclose()


@pytest.fixture(params=["table", "statements"])
async def sql_adapter(
    request: pytest.FixtureRequest, payroll: Payroll
) -> AsyncIterator[SqlAdapter]:
    """The adapter in each mode, on the same payroll schema."""
    adapter = await open_adapter(payroll.settings(request.param))
    yield adapter
    await adapter.aclose()
