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
from gateway.sdk import Query

from .conftest import Payroll

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
