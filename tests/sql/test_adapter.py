"""The SQL adapter on the payroll schema: hostile input, errors, the pool, and the rows written."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.sql import SqlAdapter, SqlSettings
from adapters.sql.table import TableStore
from gateway.config import ConfigError
from gateway.errors import (
    Conflict,
    InvalidValue,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types
from gateway.sdk import Query

from .conftest import Payroll, open_adapter

USER = build_resource_types()["User"]


def query(text: str, **kw: Any) -> Query:
    return Query("User", bind_filter(parse_filter(text, max_length=10**6), USER), **kw)


def statement(adapter: SqlAdapter, q: Query) -> tuple[str, list[Any]]:
    """The page statement and its values, as the adapter builds them for a search."""
    store, where, params, order_by = adapter.build_search(q)
    assert isinstance(store, TableStore)
    return store.search_sql(where, order_by, len(params.values)), params.values


async def names(adapter: SqlAdapter, q: Query) -> list[str]:
    page = await adapter.search(q)
    return sorted(str(r.data["logon_name"]) for r in page.records)


async def employees(adapter: SqlAdapter, *logins: str) -> list[str]:
    return [(await adapter.create("User", {"logon_name": n})).id for n in logins]


# -- hostile filters and values ------------------------------------------------------------


async def test_a_quote_and_comment_in_a_filter_value_stay_a_value(
    table_adapter: SqlAdapter,
) -> None:
    hostile = "x' OR 1=1 --"
    await employees(table_adapter, "bjensen", "jsmith", hostile)
    plain_sql, _ = statement(table_adapter, query('userName eq "bjensen"'))
    sql, values = statement(table_adapter, query(f'userName eq "{hostile}"'))
    assert sql == plain_sql
    assert values == [hostile]
    assert hostile not in sql and "1=1" not in sql
    assert await names(table_adapter, query(f'userName eq "{hostile}"')) == [hostile]
    assert await names(table_adapter, query("userName eq \"x' OR '1'='1\"")) == []


async def test_percent_and_underscore_in_co_match_only_themselves(
    sql_adapter: SqlAdapter,
) -> None:
    await employees(sql_adapter, "a%b", "axb", "a_b", "ayb", "ab", "a\\b")
    assert await names(sql_adapter, query('userName co "%"')) == ["a%b"]
    assert await names(sql_adapter, query('userName co "_"')) == ["a_b"]
    assert await names(sql_adapter, query('userName co "a%b"')) == ["a%b"]
    assert await names(sql_adapter, query('userName sw "a_"')) == ["a_b"]
    assert await names(sql_adapter, query('userName co "\\\\"')) == ["a\\b"]
    assert await names(sql_adapter, query('userName ew "B"')) == sorted(
        ["a%b", "axb", "a_b", "ayb", "ab", "a\\b"]
    )


async def test_wildcards_change_the_bound_pattern_not_the_statement(
    table_adapter: SqlAdapter,
) -> None:
    plain_sql, plain = statement(table_adapter, query('userName co "ab"'))
    sql, values = statement(table_adapter, query('userName co "%_\\\\"'))
    assert sql == plain_sql
    assert (plain, values) == (["%ab%"], ["%\\%\\_\\\\%"])


async def test_a_very_long_filter_binds_every_value_and_finds_the_right_rows(
    sql_adapter: SqlAdapter,
) -> None:
    await employees(sql_adapter, "emp7", "emp42", "emp399", "other")
    text = " or ".join(f'userName eq "emp{n}"' for n in range(400))
    assert len(text) > 8000
    assert await names(sql_adapter, query(text)) == ["emp399", "emp42", "emp7"]


async def test_a_very_long_filter_is_one_statement_with_only_placeholders(
    table_adapter: SqlAdapter,
) -> None:
    text = " or ".join(f'userName eq "emp{n}\' ; DROP TABLE emp_master; --"' for n in range(400))
    sql, values = statement(table_adapter, query(text))
    assert len(values) == 400
    assert "DROP" not in sql and "emp1" not in sql
    assert sql.count("lower($") == 400


async def test_a_huge_filter_value_matches_nothing_and_changes_no_statement(
    table_adapter: SqlAdapter,
) -> None:
    await employees(table_adapter, "bjensen")
    huge = "a" * 100_000
    plain_sql, _ = statement(table_adapter, query('userName eq "bjensen"'))
    sql, values = statement(table_adapter, query(f'userName eq "{huge}"'))
    assert (sql, values) == (plain_sql, [huge])
    assert await names(table_adapter, query(f'userName eq "{huge}"')) == []


async def test_a_hostile_value_is_stored_exactly_and_breaks_nothing(
    sql_adapter: SqlAdapter, payroll: Payroll
) -> None:
    hostile = "Robert'); DROP TABLE emp_master;--"
    created = await sql_adapter.create("User", {"logon_name": "bobby", "last_nm": hostile})
    row = await payroll.employee(created.id)
    assert row is not None and row["last_nm"] == hostile
    assert await payroll.row("SELECT count(*) AS n FROM emp_master") is not None


async def test_not_matches_rows_where_the_column_is_null(sql_adapter: SqlAdapter) -> None:
    await sql_adapter.create("User", {"logon_name": "has", "job_title": "Clerk"})
    await sql_adapter.create("User", {"logon_name": "hasnt"})
    assert await names(sql_adapter, query('not (title eq "clerk")')) == ["hasnt"]
    assert await names(sql_adapter, query('title ne "clerk"')) == ["hasnt"]
    assert await names(sql_adapter, query("title pr")) == ["has"]


async def test_sorting_and_paging_happen_in_sql_with_the_total(sql_adapter: SqlAdapter) -> None:
    await employees(sql_adapter, "delta", "Alpha", "charlie", "Bravo", "echo")
    page = await sql_adapter.search(
        Query("User", sort_by="userName", descending=True, start_index=2, count=2)
    )
    assert [r.data["logon_name"] for r in page.records] == ["delta", "charlie"]
    assert page.total == 5


# -- errors ----------------------------------------------------------------------------------


async def test_the_databases_own_unique_constraint_is_a_conflict_naming_it(
    payroll: Payroll,
) -> None:
    settings = payroll.settings("table")
    settings["users"]["unique"] = []
    adapter = await open_adapter(settings)
    try:
        await adapter.create("User", {"logon_name": "bjensen"})
        with pytest.raises(Conflict) as caught:
            await adapter.create("User", {"logon_name": "bjensen"})
    finally:
        await adapter.aclose()
    assert "emp_master_logon_name_key" in caught.value.detail
    assert "bjensen" not in caught.value.detail


async def test_a_login_differing_only_in_case_is_a_conflict(sql_adapter: SqlAdapter) -> None:
    await sql_adapter.create("User", {"logon_name": "BJensen"})
    with pytest.raises(Conflict) as caught:
        await sql_adapter.create("User", {"logon_name": "bjensen"})
    assert "logon_name" in caught.value.detail and "ignoring case" in caught.value.detail


async def test_concurrent_creates_of_one_login_let_exactly_one_through(
    payroll: Payroll,
) -> None:
    adapter = await open_adapter(payroll.settings("table", pool={"min_size": 4, "max_size": 8}))
    try:
        results = await asyncio.gather(
            *(
                adapter.create("User", {"logon_name": "Race" if n % 2 else "rACE"})
                for n in range(8)
            ),
            return_exceptions=True,
        )
    finally:
        await adapter.aclose()
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


async def test_a_check_violation_is_a_400_naming_the_constraint(
    sql_adapter: SqlAdapter,
) -> None:
    with pytest.raises(InvalidValue) as caught:
        await sql_adapter.create("User", {"logon_name": "x", "emp_status": "X"})
    assert "emp_master_emp_status_check" in caught.value.detail


async def test_a_missing_required_column_is_a_400_naming_the_column(
    sql_adapter: SqlAdapter,
) -> None:
    with pytest.raises(InvalidValue) as caught:
        await sql_adapter.create("User", {"first_nm": "Nobody"})
    assert "logon_name" in caught.value.detail


async def test_a_foreign_key_violation_is_a_400_naming_the_constraint(
    payroll: Payroll,
) -> None:
    """A delete statement that leaves the memberships: the database refuses it."""
    settings = payroll.settings("statements")
    settings["users"]["delete"] = "DELETE FROM emp_master WHERE emp_no = :id"
    adapter = await open_adapter(settings)
    try:
        (user,) = await employees(adapter, "referenced")
        await adapter.create("Group", {"unit_nm": "Ops"}, members=[user])
        with pytest.raises(InvalidValue) as caught:
            await adapter.delete("User", user)
    finally:
        await adapter.aclose()
    assert "foreign key org_unit_member_emp_fk" in caught.value.detail
    assert await payroll.employee(user) is not None


async def test_table_mode_checks_members_are_users_before_writing(
    table_adapter: SqlAdapter, payroll: Payroll
) -> None:
    (user,) = await employees(table_adapter, "member")
    group = await table_adapter.create("Group", {"unit_nm": "Ops"})
    with pytest.raises(InvalidValue) as caught:
        await table_adapter.add_members(group.id, [user, "999999"])
    assert "999999" in caught.value.detail
    assert await payroll.members(group.id) == set()  # one transaction: nothing was added


async def test_a_value_that_does_not_fit_its_column_is_a_400(sql_adapter: SqlAdapter) -> None:
    with pytest.raises(InvalidValue) as caught:
        await sql_adapter.create("User", {"logon_name": "x" * 65})
    if isinstance(sql_adapter.stores["User"], TableStore):
        assert "column logon_name (SCIM userName) holds at most 64 characters, not 65" in (
            caught.value.detail
        )
    else:  # statement mode knows no column lengths: PostgreSQL's own reason
        assert "string data right truncation" in caught.value.detail
    assert "xxxx" not in caught.value.detail


async def test_a_too_long_value_through_the_gateway_names_column_and_attribute(
    table_adapter: SqlAdapter,
) -> None:
    user = await table_adapter.create("User", {"logon_name": "bjensen"})
    with pytest.raises(InvalidValue) as caught:
        await table_adapter.update("User", user.id, {"first_nm": "B" * 70})
    assert caught.value.scim_type == "invalidValue" and caught.value.status == 400
    assert "column first_nm (SCIM name.givenName) holds at most 64" in caught.value.detail
    found = await table_adapter.get("User", user.id)
    assert found.data["first_nm"] is None  # nothing written


async def test_ids_that_cannot_be_ids_name_no_record(sql_adapter: SqlAdapter) -> None:
    for call in (
        sql_adapter.get("User", "abc"),
        sql_adapter.update("User", "abc", {"first_nm": "x"}),
        sql_adapter.delete("Group", "99999999999999999999"),
        sql_adapter.add_members("abc", []),
    ):
        with pytest.raises(NotFound):
            await call


async def test_a_statement_over_the_timeout_is_a_504(payroll: Payroll) -> None:
    adapter = await open_adapter(payroll.settings("table", statement_timeout=200))
    locker = await payroll.connect()
    try:
        (user,) = await employees(adapter, "locked")
        async with locker.transaction():
            await locker.execute("LOCK TABLE emp_master IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(UpstreamTimeout) as caught:
                await adapter.get("User", user)
    finally:
        await locker.close()
        await adapter.aclose()
    assert "statement_timeout" in caught.value.detail


async def test_the_pool_survives_its_backends_being_terminated(payroll: Payroll) -> None:
    adapter = await open_adapter(payroll.settings("table", pool={"min_size": 3, "max_size": 3}))
    admin = await payroll.connect()
    try:
        (user,) = await employees(adapter, "survivor")
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'scim-gateway/payroll' AND pid <> pg_backend_pid()"
        )
        assert killed >= 1
        await asyncio.sleep(0.2)
        for _ in range(5):  # every pooled connection was dead; each call still works
            assert (await adapter.get("User", user)).data["logon_name"] == "survivor"
        updated = await adapter.update("User", user, {"first_nm": "Still"})
        assert updated.data["first_nm"] == "Still"
    finally:
        await admin.close()
        await adapter.aclose()


class Proxy:
    """A TCP forwarder on loopback in front of the database, to take the database away."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
        self.writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy(payroll: Payroll) -> AsyncIterator[Proxy]:
    from urllib.parse import urlsplit

    found = Proxy(urlsplit(payroll.dsn).port or 5432)
    await found.start()
    yield found
    with contextlib.suppress(Exception):
        await found.stop()


async def test_an_unreachable_database_is_a_503_with_retry_after_and_the_next_call_works(
    payroll: Payroll, proxy: Proxy
) -> None:
    dsn = payroll.dsn.replace(payroll.dsn.split("@")[1].split("/")[0], f"127.0.0.1:{proxy.port}")
    settings = payroll.settings("table", dsn=dsn, retry_after=7, connect_timeout=2)
    adapter = await open_adapter(settings)
    try:
        (user,) = await employees(adapter, "flaky")
        await proxy.stop()
        with pytest.raises(UpstreamUnavailable) as caught:
            await adapter.get("User", user)
        assert caught.value.retry_after == 7
        assert caught.value.headers == {"Retry-After": "7"}
        assert "postgres" not in caught.value.detail.split("at ")[0]
        await proxy.start(proxy.port)
        assert (await adapter.get("User", user)).data["logon_name"] == "flaky"
    finally:
        await adapter.aclose()


async def test_opening_against_no_database_is_a_503_that_names_no_password(
    payroll: Payroll,
) -> None:
    settings = payroll.settings(
        "table", dsn="postgresql://gw:s3cret-pw@127.0.0.1:1/payroll", connect_timeout=1
    )
    adapter = SqlAdapter(SqlSettings.model_validate(settings), app="payroll", mapping=_m())
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.open()
    assert "127.0.0.1:1/payroll" in caught.value.detail
    assert "s3cret" not in caught.value.detail and "s3cret" not in repr(adapter.config)


def _m() -> Any:
    from gateway.mapping.engine import MAPPINGS_DIR, load_mapping

    return load_mapping(MAPPINGS_DIR / "payroll")


# -- the rows written --------------------------------------------------------------------------


async def test_writes_move_the_modified_stamp_and_membership_changes_too(
    table_adapter: SqlAdapter, payroll: Payroll
) -> None:
    (user,) = await employees(table_adapter, "stamped")
    group = await table_adapter.create("Group", {"unit_nm": "Stamps"})
    await payroll.rows("UPDATE emp_master SET upd_ts = '2001-01-01'")
    await payroll.rows("UPDATE org_unit SET upd_ts = '2001-01-01'")
    await table_adapter.update("User", user, {"first_nm": "New"})
    await table_adapter.add_members(group.id, [user])
    row = await payroll.employee(user)
    unit = await payroll.row("SELECT upd_ts FROM org_unit WHERE unit_id = $1", int(group.id))
    assert row is not None and unit is not None
    assert row["upd_ts"].year > 2001 and unit["upd_ts"].year > 2001


async def test_member_adds_and_removes_are_idempotent_in_the_membership_table(
    sql_adapter: SqlAdapter, payroll: Payroll
) -> None:
    ids = await employees(sql_adapter, "m1", "m2", "m3")
    group = await sql_adapter.create("Group", {"unit_nm": "Team"})
    await sql_adapter.add_members(group.id, ids + ids[:1])
    await sql_adapter.add_members(group.id, ids)
    rows = await payroll.rows(
        "SELECT emp_no FROM org_unit_member WHERE unit_id = $1", int(group.id)
    )
    assert sorted(str(r["emp_no"]) for r in rows) == sorted(ids)
    await sql_adapter.remove_members(group.id, [ids[0], ids[0], "not-an-id", "424242"])
    assert await payroll.members(group.id) == set(ids[1:])


async def test_deleting_a_group_removes_its_memberships_but_not_the_users(
    sql_adapter: SqlAdapter, payroll: Payroll
) -> None:
    ids = await employees(sql_adapter, "stay1", "stay2")
    group = await sql_adapter.create("Group", {"unit_nm": "Gone"}, members=ids)
    await sql_adapter.delete("Group", group.id)
    assert await payroll.members(group.id) == set()
    assert all([await payroll.employee(i) for i in ids])


async def test_a_users_groups_carry_the_units_name(sql_adapter: SqlAdapter) -> None:
    (user,) = await employees(sql_adapter, "grouped")
    group = await sql_adapter.create("Group", {"unit_nm": "Payroll Clerks"}, members=[user])
    found = await sql_adapter.get("User", user)
    assert [(g.value, g.type, g.display) for g in found.groups or []] == [
        (group.id, "direct", "Payroll Clerks")
    ]


# -- settings checked against the database -----------------------------------------------------


async def test_open_names_every_mapped_field_the_table_lacks(payroll: Payroll) -> None:
    settings = payroll.settings("table")
    settings["users"]["table"] = "org_unit"
    settings["users"]["id"] = {"column": "unit_id"}
    with pytest.raises(ConfigError) as caught:
        await open_adapter(settings)
    text = str(caught.value)
    assert "apps.payroll.settings.users.table: the mapping names the field 'logon_name'" in text
    assert "'email_addr'" in text


async def test_open_refuses_database_ids_for_a_column_without_a_default(
    payroll: Payroll,
) -> None:
    settings = payroll.settings("table")
    settings["users"]["id"] = {"column": "logon_name", "generated": "database"}
    with pytest.raises(ConfigError) as caught:
        await open_adapter(settings)
    assert "users.id.generated" in str(caught.value)


async def test_open_reports_a_statement_the_database_refuses(payroll: Payroll) -> None:
    settings = payroll.settings("statements")
    settings["users"]["get"] = "SELECT * FROM emp_mastr WHERE emp_no = :id"
    with pytest.raises(ConfigError) as caught:
        await open_adapter(settings)
    assert "apps.payroll.settings.users.get: the database refused it" in str(caught.value)
    assert "emp_mastr" in str(caught.value)


def test_a_statement_with_an_unknown_parameter_is_refused_at_start_up(
    payroll: Payroll,
) -> None:
    settings = payroll.settings("statements")
    settings["users"]["get"] = "SELECT * FROM emp_master WHERE emp_no = :emp"
    with pytest.raises(ConfigError) as caught:
        SqlAdapter(SqlSettings.model_validate(settings), app="payroll", mapping=_m())
    assert "users.get: unknown parameter(s) :emp" in str(caught.value)


def test_filters_are_declared_only_for_plain_columns(payroll: Payroll) -> None:
    adapter = SqlAdapter(
        SqlSettings.model_validate(payroll.settings("table")), app="payroll", mapping=_m()
    )
    caps = adapter.capabilities
    assert caps.can_filter("User", "username", "co")
    assert caps.can_filter("User", "emails.value", "eq")
    assert caps.can_filter("User", "meta.created", "gt")
    assert caps.can_filter("Group", "displayname", "sw")
    assert caps.can_filter("User", "active", "eq")  # through the value map of emp_status
    assert not caps.can_filter("User", "active", "gt")
    assert not caps.can_filter("User", "nickname", "eq")  # no column
    assert not caps.can_filter("User", "meta.created", "co")
    assert (caps.sort, caps.filter_logic, caps.groups) == (True, True, True)
