"""What a read costs on the SQL adapter: members only when shown, totals only when needed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from idp.helpers import Scim, eq
from support import TOKEN, digest

from adapters.sql import SqlAdapter
from gateway.app import create_app
from gateway.config import parse_settings
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types
from gateway.sdk import Query

from .conftest import Payroll, open_adapter
from .test_adapter import employees

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


@pytest.fixture(params=["table", "statements"])
async def tight(
    request: pytest.FixtureRequest, payroll: Payroll, aiohttp_client: ClientFactory
) -> Scim:
    """A gateway whose groups may hold at most 2 members (settings.max_members)."""
    return Scim(await aiohttp_client(gateway_on(payroll, request.param, max_members=2)))


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
