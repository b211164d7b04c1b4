"""What a read costs on the SQL adapter: members only when shown, totals only when needed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from idp.helpers import Scim, eq
from support import TOKEN, digest

from adapters.sql import SqlAdapter, SqlSettings
from gateway.app import create_app
from gateway.config import ConfigError, parse_settings
from gateway.errors import InvalidValue
from gateway.mapping.engine import load_mapping
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types
from gateway.sdk import Query

from .conftest import FLAVOURS, PAYROLL, Payroll, mode_of, open_adapter
from .test_adapter import employees, names, query

USER = build_resource_types()["User"]

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def gateway_on(payroll: Payroll, mode: str, **overrides: Any) -> web.Application:
    settings = parse_settings(
        {
            "apps": {
                "crm": {
                    "adapter": "sql",
                    "mapping": "payroll",
                    "settings": payroll.settings(mode, **overrides),
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            }
        }
    )
    return create_app(settings)


@pytest.fixture(params=FLAVOURS)
async def tight(
    request: pytest.FixtureRequest, payroll: Payroll, aiohttp_client: ClientFactory
) -> Scim:
    """A gateway whose groups may hold at most 2 members (settings.max_members)."""
    app = gateway_on(payroll, mode_of(request.param), max_members=2)
    return Scim(await aiohttp_client(app))


async def test_excluding_members_reads_no_members_so_a_huge_group_still_answers(
    tight: Scim,
) -> None:
    ids = [(await tight.user(f"m{i}"))["id"] for i in range(3)]
    group = await tight.group("Big", ids[:2])
    added = await tight.patch(
        f"/Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[2]}]}],
        },
    )
    assert added.status in (200, 204), added.text
    # Reading the members would meet the limit (a 502, never a partial list) ...
    assert (await tight.get(f"/Groups/{group['id']}")).status == 502
    # ... Entra's lookups exclude them, so the adapter must not read them at all.
    one = await tight.get(f"/Groups/{group['id']}?excludedAttributes=members")
    assert one.status == 200, one.text
    assert one.json()["displayName"] == "Big" and "members" not in one.json()
    listed = await tight.get(
        f"/Groups?excludedAttributes=members&filter={eq('displayName', 'Big')}"
    )
    assert listed.status == 200, listed.text
    assert [r["id"] for r in listed.json()["Resources"]] == [group["id"]]
    named = await tight.get(f"/Groups/{group['id']}?attributes=displayName")
    assert (named.status, named.json()["displayName"]) == (200, "Big")


async def test_an_adapter_read_without_members_leaves_them_unread(
    sql_adapter: SqlAdapter,
) -> None:
    user = await sql_adapter.create("User", {"logon_name": "bjensen"})
    group = await sql_adapter.create("Group", {"unit_nm": "Ops"}, members=[user.id])
    assert [m.value for m in (await sql_adapter.get("Group", group.id)).members or []] == [user.id]
    assert (await sql_adapter.get("Group", group.id, members=False)).members is None
    assert (await sql_adapter.get("User", user.id, members=False)).groups is None
    page = await sql_adapter.search(Query("Group", members=False))
    assert [(r.id, r.members) for r in page.records] == [(group.id, None)]


def counting(adapter: SqlAdapter, monkeypatch: pytest.MonkeyPatch, rt: str = "User") -> list[str]:
    """The WHERE clauses of the ``count`` statements the adapter runs from now on."""
    store, seen = adapter.stores[rt], []
    real = store.count

    async def count(conn: Any, where: str, params: Any) -> int:
        seen.append(where)
        return await real(conn, where, params)

    monkeypatch.setattr(store, "count", count)
    return seen


async def page(adapter: SqlAdapter, start: int, count: int, **kw: Any) -> tuple[list[str], int]:
    found = await adapter.search(Query("User", start_index=start, count=count, **kw))
    return [str(r.data["logon_name"]) for r in found.records], found.total


async def test_only_a_page_with_more_after_it_counts_the_matches(
    sql_adapter: SqlAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await employees(sql_adapter, "e1", "e2", "e3", "e4", "e5")
    counts = counting(sql_adapter, monkeypatch)
    assert await page(sql_adapter, 5, 2) == (["e5"], 5)  # the last page: nothing counted
    assert await page(sql_adapter, 3, 3) == (["e3", "e4", "e5"], 5)
    assert await page(sql_adapter, 1, 10) == (["e1", "e2", "e3", "e4", "e5"], 5)
    assert counts == []
    assert await page(sql_adapter, 1, 2) == (["e1", "e2"], 5)  # more follow: counted
    assert await page(sql_adapter, 9, 2) == ([], 5)  # past the end: counted
    assert await page(sql_adapter, 1, 0) == ([], 5)  # count=0 asks for the total only
    assert len(counts) == 3


async def test_totals_estimate_lists_without_counting_and_never_below_what_was_seen(
    payroll: Payroll, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = await open_adapter(payroll.settings("table", totals="estimate"))
    try:
        await employees(adapter, "e1", "e2", "e3", "e4", "e5")
        conn = await payroll.connect()
        try:
            await conn.execute("ANALYZE emp_master")
        finally:
            await conn.close()
        counts = counting(adapter, monkeypatch)
        assert await page(adapter, 1, 2) == (["e1", "e2"], 5)
        assert await page(adapter, 3, 2) == (["e3", "e4"], 5)
        assert counts == []
        filtered = bind_filter(parse_filter('userName sw "e"'), USER)
        assert await page(adapter, 1, 2, filter=filtered) == (["e1", "e2"], 5)
        assert len(counts) == 1  # a filtered total is always exact
    finally:
        await adapter.aclose()


# -- value-mapped attributes ---------------------------------------------------------------


async def test_active_eq_false_is_pushed_down_through_the_value_map(
    sql_adapter: SqlAdapter, payroll: Payroll
) -> None:
    await employees(sql_adapter, "on1", "off1", "on2", "blank")
    conn = await payroll.connect()
    try:
        await conn.execute("UPDATE emp_master SET emp_status = 'T' WHERE logon_name = 'off1'")
        await conn.execute("UPDATE emp_master SET emp_status = NULL WHERE logon_name = 'blank'")
    finally:
        await conn.close()
    _, where, params, _ = sql_adapter.build_search(query("active eq false"))
    assert params.values == ["T"] and "emp_status" in where
    assert await names(sql_adapter, query("active eq false")) == ["off1"]
    assert await names(sql_adapter, query('active eq "True"')) == ["on1", "on2"]
    assert await names(sql_adapter, query("active ne true")) == ["blank", "off1"]
    assert await names(sql_adapter, query("not (active eq false)")) == ["blank", "on1", "on2"]
    assert await names(sql_adapter, query("active pr")) == ["off1", "on1", "on2"]
    assert await names(sql_adapter, query('userName sw "o" and active eq false')) == ["off1"]


async def test_the_gateway_pushes_active_down_instead_of_scanning(
    payroll: Payroll, aiohttp_client: ClientFactory
) -> None:
    scim = Scim(await aiohttp_client(gateway_on(payroll, "table")))
    ids = [(await scim.user(f"u{i}"))["id"] for i in range(3)]
    off = await scim.patch(
        f"/Users/{ids[1]}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )
    assert off.status == 200, off.text
    answer = await scim.get(f"/Users?filter={eq('active', False)}")
    assert answer.status == 200, answer.text
    assert [u["id"] for u in answer.json()["Resources"]] == [ids[1]]
    assert answer.json()["totalResults"] == 1


ROLES = """
CREATE TABLE app_role (role_id serial PRIMARY KEY, role_cd varchar(40) NOT NULL UNIQUE);
CREATE TABLE app_role_member (
    role_id integer NOT NULL REFERENCES app_role, emp_no integer NOT NULL,
    PRIMARY KEY (role_id, emp_no));
"""
ROLE_MAPPING = """
resource: Group
record_fields: [role_id, role_cd]
to_legacy:
  role_cd: "{{ displayName | slug('_', 'upper') }}"
from_legacy:
  displayName: "{{ record.role_cd }}"
fields:
  id: role_id
"""


async def test_a_code_made_from_a_name_is_found_by_the_name(
    payroll: Payroll, tmp_path: Path
) -> None:
    """Roles keyed by a code (``SALES_MARKETING``): displayName filters go through slug."""
    conn = await payroll.connect()
    try:
        await conn.execute("DROP TABLE IF EXISTS app_role_member, app_role")
        await conn.execute(ROLES)
    finally:
        await conn.close()
    (tmp_path / "user.yaml").write_text((PAYROLL / "user.yaml").read_text("utf-8"), "utf-8")
    (tmp_path / "group.yaml").write_text(ROLE_MAPPING, "utf-8")
    settings = payroll.settings("table")
    settings["groups"] = {
        "mode": "table",
        "schema": payroll.schema,
        "table": "app_role",
        "id": {"column": "role_id"},
        "members": {"table": "app_role_member", "group": "role_id", "member": "emp_no"},
        "values": {
            "displayName": {"column": "role_cd", "slug": {"separator": "_", "case": "upper"}}
        },
    }
    adapter = SqlAdapter(
        SqlSettings.model_validate(settings), app="payroll", mapping=load_mapping(tmp_path)
    )
    await adapter.open()
    try:
        for code in ("SALES_MARKETING", "OPS"):
            await adapter.create("Group", {"role_cd": code})
        group = build_resource_types()["Group"]
        by_name = bind_filter(parse_filter('displayName eq "Sales & Marketing"'), group)
        page = await adapter.search(Query("Group", by_name))
        assert [r.data["role_cd"] for r in page.records] == ["SALES_MARKETING"]
        assert adapter.capabilities.can_filter("Group", "displayname", "eq")
        assert not adapter.capabilities.can_filter("Group", "displayname", "co")
        with pytest.raises(InvalidValue, match="cannot sort by displayName"):
            await adapter.search(Query("Group", sort_by="displayName"))
    finally:
        await adapter.aclose()
        conn = await payroll.connect()
        try:
            await conn.execute("DROP TABLE IF EXISTS app_role_member, app_role")
        finally:
            await conn.close()


async def test_a_value_map_on_a_missing_column_fails_the_start_naming_the_key(
    payroll: Payroll,
) -> None:
    settings = payroll.settings("table")
    settings["users"]["values"] = {"active": {"column": "emp_state", "map": {"true": "A"}}}
    with pytest.raises(ConfigError, match=r"users.values.active: .*'emp_state'"):
        await open_adapter(settings)
    with pytest.raises(ValueError, match="either map or slug"):
        SqlSettings.model_validate(
            {
                **payroll.settings("table"),
                "users": {**settings["users"], "values": {"active": {"column": "x"}}},
            }
        )
