"""Fixtures for the SQL adapter: a PostgreSQL server, the payroll schema, adapters on it.

``payroll`` empties the session's payroll schema before the test and sets
``PAYROLL_DSN`` (the shipped settings read it); ``payroll.settings(mode)`` gives
``mappings/payroll/sql.yaml`` (table mode) or ``sql-statements.yaml`` pointed at
the session's schema; ``open_adapter`` opens a :class:`SqlAdapter` on them.
``big_payroll`` is a second schema holding 1,000,000 employees, seeded once per
session.

The payroll sample also comes in a MariaDB flavour (deploy/sql/payroll-mariadb.sql,
a database of this session on the server tests/sql/maria.py finds or starts): a
test parametrised with ``"mariadb"`` (``sql_adapter``, ``scim``) gets ``payroll`` on
MariaDB, in table mode, and runs the same assertions there.
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
from sql import maria
from sql.pg import (
    create_payroll,
    drop_schema,
    empty_payroll,
    new_schema_name,
    postgres_server,
    seed_employees,
)

from adapters.sql import SqlAdapter, SqlSettings, mysql
from gateway.mapping.engine import MAPPINGS_DIR, load_mapping

PAYROLL = MAPPINGS_DIR / "payroll"
BIG = 1_000_000


@dataclass(frozen=True)
class Payroll:
    """The payroll schema of this session, and the server it is on."""

    dsn: str
    schema: str
    #: "postgresql", or "mariadb" (the database ``schema`` on a MariaDB server).
    flavour: str = "postgresql"

    @property
    def mariadb(self) -> bool:
        return self.flavour == "mariadb"

    def settings(self, mode: str = "table", **overrides: Any) -> dict[str, Any]:
        """The shipped settings of ``mode`` ("table" or "statements"), in this schema."""
        if self.mariadb and mode != "table":
            pytest.skip("statement mode needs PostgreSQL")
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

    async def connect(self) -> Any:
        """A connection of its own, its default schema (database) this one's."""
        if self.mariadb:
            return await mysql.connect(self.dsn)
        conn = await asyncpg.connect(self.dsn)
        await conn.execute(f'SET search_path TO "{self.schema}"')
        return conn

    async def row(self, sql: str, *args: Any) -> Any:
        """One row, read straight from the database (never through the adapter)."""
        conn = await self.connect()
        try:
            return await conn.fetchrow(sql, *args)
        finally:
            await conn.close()

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        conn = await self.connect()
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def employee(self, emp_no: str | int) -> Any:
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


@pytest.fixture(scope="session")
def mariadb_payroll() -> Iterator[Payroll]:
    """The MariaDB flavour's database of this session (started on first use only)."""
    with maria.mariadb_server() as server:
        database = maria.new_database_name()
        maria.run(maria.create_payroll(server, database))
        yield Payroll(f"{server}/{database}", database, "mariadb")
        maria.run(maria.drop_database(server, database))


def flavour(request: pytest.FixtureRequest) -> str:
    """``mariadb`` when the test is parametrised so (``sql_adapter``, ``scim``, ...)."""
    callspec = getattr(request.node, "callspec", None)
    return "mariadb" if callspec is not None and "mariadb" in callspec.params.values() else ""


@pytest.fixture
async def payroll(
    request: pytest.FixtureRequest,
    pg_dsn: str,
    payroll_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Payroll:
    if flavour(request) == "mariadb":
        found: Payroll = request.getfixturevalue("mariadb_payroll")
        await maria.empty_payroll(found.dsn)
        monkeypatch.setenv("PAYROLL_DSN", found.dsn)
        return found
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


@pytest.fixture(params=["table", "mariadb"])
async def table_adapter(payroll: Payroll) -> AsyncIterator[SqlAdapter]:
    """Table mode, on PostgreSQL and on MariaDB."""
    adapter = await open_adapter(payroll.settings("table"))
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def statement_adapter(payroll: Payroll) -> AsyncIterator[SqlAdapter]:
    adapter = await open_adapter(payroll.settings("statements"))
    yield adapter
    await adapter.aclose()


#: The flavours of the payroll sample each adapter test runs on: PostgreSQL in both
#: modes, and MariaDB (table mode).
FLAVOURS = ["table", "statements", "mariadb"]


def mode_of(param: str) -> str:
    return "table" if param == "mariadb" else param


@pytest.fixture(params=FLAVOURS)
async def sql_adapter(
    request: pytest.FixtureRequest, payroll: Payroll
) -> AsyncIterator[SqlAdapter]:
    """The adapter in each mode and on each server, on the payroll sample."""
    adapter = await open_adapter(payroll.settings(mode_of(request.param)))
    yield adapter
    await adapter.aclose()
