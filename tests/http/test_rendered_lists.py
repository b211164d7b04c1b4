"""Lists from kept JSON (gateway/rendered.py): the same bytes, and never a stale or foreign one.

The memory adapter declares exact versions, so the gateway keeps the JSON of each record a
list shows; these tests go through a real server and check what a client would see.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import orjson
from support import BASE, OTHER_TOKEN, make_settings

from adapters.memory import MemoryAdapter
from gateway.http.views import SERVICES
from gateway.rendered import RenderedRecords
from gateway.scim.query import ListParams
from gateway.sdk import Record, Ref
from gateway.service import ScimService

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def user(name: str, **more: Any) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": name,
        "displayName": name.title(),
        "name": {"givenName": name.title(), "familyName": "Smith"},
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        **more,
    }


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": [{"op": "replace", "path": path, "value": value}]}


async def made(client: Any, endpoint: str, body: dict[str, Any], token: str | None = None) -> Any:
    """POST to the crm app, or with ``token`` to the hr app."""
    base, headers = BASE, None
    if token is not None:
        base, headers = "/apps/hr/scim/v2", {"Authorization": f"Bearer {token}"}
    resp = await client.post(f"{base}/{endpoint}", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json(content_type=None)


def add_member(id: str) -> dict[str, Any]:
    members = {"members": [{"value": id}]}
    return {"schemas": [PATCH], "Operations": [{"op": "add", "value": members}]}


async def listed(client: Any, query: str = "", **kwargs: Any) -> dict[str, Any]:
    resp = await client.get(f"{BASE}/Users?count=100{query}", **kwargs)
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json(content_type=None)
    return result


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["userName"]: r for r in result["Resources"]}


async def test_a_list_is_the_same_json_whether_kept_or_rendered(client: Any) -> None:
    ada = await made(client, "Users", user("ada", **{ENTERPRISE: {"department": "R&D"}}))
    await made(client, "Users", user("bob", active=False, title="Dev"))
    devs = await made(client, "Groups", {"schemas": [GROUP], "displayName": "Devs"})
    await client.patch(f"{BASE}/Groups/{devs['id']}", json=add_member(ada["id"]))
    service = client.server.app[SERVICES]["crm"].service
    assert service.rendered is not None and len(service.rendered) == 0

    bodies = []
    for _ in range(2):  # the first renders and keeps, the second reuses
        for path in ("Users?count=100", "Groups", "Users?startIndex=2&count=1"):
            resp = await client.get(f"{BASE}/{path}")
            assert resp.status == 200
            bodies.append(await resp.read())
    assert bodies[:3] == bodies[3:]
    assert len(service.rendered) == 3  # two users, one group

    # Byte for byte what serializing the resources rendered afresh gives.
    base_url = str(client.make_url(BASE))
    for rtype, params, body in [
        (service.types["User"], ListParams(None, 1, 100, None, False, (), ()), bodies[0]),
        (service.types["Group"], ListParams(None, 1, 100, None, False, (), ()), bodies[1]),
        (service.types["User"], ListParams(None, 2, 1, None, False, (), ()), bodies[2]),
    ]:
        assert body == orjson.dumps(await service.search([rtype], params, base_url))
    users = orjson.loads(bodies[0])["Resources"]
    assert users[0]["groups"][0]["display"] == "Devs"
    assert users[0]["schemas"] == [USER, ENTERPRISE]


async def test_a_write_then_a_list_shows_the_write(client: Any) -> None:
    ada = await made(client, "Users", user("ada"))
    await made(client, "Users", user("bob"))
    before = by_name(await listed(client))
    assert before["ada"]["displayName"] == "Ada"

    resp = await client.patch(f"{BASE}/Users/{ada['id']}", json=replace("displayName", "Ada L."))
    patched = await resp.json(content_type=None)
    now = by_name(await listed(client))
    assert now["ada"] == patched and now["ada"]["displayName"] == "Ada L."
    assert now["ada"]["meta"]["version"] != before["ada"]["meta"]["version"]
    assert now["bob"] == before["bob"]

    put = await client.put(f"{BASE}/Users/{ada['id']}", json=user("ada", title="Countess"))
    assert by_name(await listed(client))["ada"] == await put.json(content_type=None)

    # A user's groups change without the user's own version changing.
    team = await made(client, "Groups", {"schemas": [GROUP], "displayName": "Team"})
    await client.patch(f"{BASE}/Groups/{team['id']}", json=add_member(ada["id"]))
    groups = by_name(await listed(client))["ada"]["groups"]
    assert [(g["value"], g["display"]) for g in groups] == [(team["id"], "Team")]
    await client.patch(f"{BASE}/Groups/{team['id']}", json=replace("displayName", "Crew"))
    assert by_name(await listed(client))["ada"]["groups"][0]["display"] == "Crew"
    await client.patch(
        f"{BASE}/Groups/{team['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]},
    )
    assert "groups" not in by_name(await listed(client))["ada"]

    assert (await client.delete(f"{BASE}/Users/{ada['id']}")).status == 204
    result = await listed(client)
    assert result["totalResults"] == 1 and list(by_name(result)) == ["bob"]
    service = client.server.app[SERVICES]["crm"].service
    assert len(service.rendered) == 1  # the deleted one's JSON went with it


async def test_attributes_and_excluded_attributes_are_still_applied(client: Any) -> None:
    await made(client, "Users", user("ada", **{ENTERPRISE: {"department": "R&D"}}))
    full = (await listed(client))["Resources"][0]  # kept now
    assert {"emails", "name", "meta", ENTERPRISE} <= set(full)

    only = (await listed(client, "&attributes=userName"))["Resources"][0]
    assert set(only) == {"schemas", "id", "userName"}
    without = (await listed(client, "&excludedAttributes=emails,meta"))["Resources"][0]
    assert set(without) == set(full) - {"emails", "meta"}
    resp = await client.post(
        f"{BASE}/Users/.search",
        json={"schemas": [SEARCH], "attributes": ["name.givenName"], "count": 10},
    )
    found = (await resp.json(content_type=None))["Resources"][0]
    assert set(found) == {"schemas", "id", "name"} and found["name"] == {"givenName": "Ada"}
    assert (await listed(client))["Resources"][0] == full


async def test_base_urls_do_not_mix(client: Any) -> None:
    ada = await made(client, "Users", user("ada"))
    team = await made(client, "Groups", {"schemas": [GROUP], "displayName": "Team"})
    await client.patch(f"{BASE}/Groups/{team['id']}", json=add_member(ada["id"]))
    for _ in range(2):
        for host in ("a.example", "b.example:8443"):
            origin = f"http://{host}{BASE}"
            result = await listed(client, headers={"Host": host})
            shown = result["Resources"][0]
            assert shown["meta"]["location"] == f"{origin}/Users/{ada['id']}"
            assert shown["groups"][0]["$ref"] == f"{origin}/Groups/{team['id']}"
            resp = await client.get(f"{BASE}/Groups", headers={"Host": host})
            group = (await resp.json(content_type=None))["Resources"][0]
            assert group["meta"]["location"] == f"{origin}/Groups/{team['id']}"
            assert group["members"][0]["$ref"] == f"{origin}/Users/{ada['id']}"


async def test_apps_do_not_mix(client: Any) -> None:
    ours = await made(client, "Users", user("ada", title="Ours"))
    theirs = await made(client, "Users", user("ada", title="Theirs"), OTHER_TOKEN)
    for _ in range(2):
        crm = (await listed(client))["Resources"]
        resp = await client.get(
            "/apps/hr/scim/v2/Users", headers={"Authorization": f"Bearer {OTHER_TOKEN}"}
        )
        hr = (await resp.json(content_type=None))["Resources"]
        assert [(r["id"], r["title"]) for r in crm] == [(ours["id"], "Ours")]
        assert [(r["id"], r["title"]) for r in hr] == [(theirs["id"], "Theirs")]
        assert hr[0]["meta"]["location"].endswith(f"/apps/hr/scim/v2/Users/{theirs['id']}")


async def test_lists_during_concurrent_writes_never_show_a_stale_resource(client: Any) -> None:
    ids = [(await made(client, "Users", user(f"u{i}")))["id"] for i in range(5)]
    written: dict[str, tuple[str, str]] = {}  # version -> the id and displayName written

    async def write(n: int) -> None:
        id = ids[n % len(ids)]
        resp = await client.patch(f"{BASE}/Users/{id}", json=replace("displayName", f"v{n}"))
        shown = await resp.json(content_type=None)
        written[shown["meta"]["version"]] = (id, shown["displayName"])

    async def read() -> list[dict[str, Any]]:
        resources: list[dict[str, Any]] = (await listed(client))["Resources"]
        return resources

    done = await asyncio.gather(*(c for n in range(40) for c in (write(n), read())))
    seen = 0
    for resources in done:
        for r in resources or ():
            if r["meta"]["version"] in written:
                assert (r["id"], r["displayName"]) == written[r["meta"]["version"]]
                seen += 1
    assert seen > 0
    # Once the writes are done, a list shows each user's last one (the highest version).
    last: dict[str, tuple[int, str]] = {}
    for version, (id, name) in written.items():
        number = int(version.strip('W/"'))
        if number > last.get(id, (0, ""))[0]:
            last[id] = (number, name)
    final = {r["id"]: r["displayName"] for r in await read()}
    assert final == {id: name for id, (_, name) in last.items()}


async def test_an_adapter_without_exact_versions_keeps_nothing() -> None:
    class Plain(MemoryAdapter):
        capabilities = dataclasses.replace(MemoryAdapter.capabilities, exact_versions=False)

    service = ScimService("crm", Plain(), make_settings().apps["crm"])
    assert service.rendered is None
    rtype = service.types["User"]
    await service.create(rtype, user("ada"), "http://x")
    params = ListParams(None, 1, 100, None, False, (), ())
    result = await service.search([rtype], params, "http://x", serialized=True)
    assert [type(r) for r in result["Resources"]] == [dict]


def test_the_kept_json_is_bounded() -> None:
    renders: list[str] = []

    def render(record: Record) -> dict[str, Any]:
        renders.append(record.id)
        return {"id": record.id, "version": record.version, "pad": "x" * 100}

    one = len(orjson.dumps(render(Record("r0", {}, "1")))) + 400  # JSON and entry, each
    kept = RenderedRecords(budget=3 * one, tables=2)
    records = [Record(f"r{i}", {}, "1") for i in range(5)]
    out = kept.page("User", "http://a", records, render)
    assert [orjson.loads(orjson.dumps(f))["id"] for f in out] == [r.id for r in records]
    assert 0 < len(kept) <= 3 and kept.size <= 3 * one
    for base in ("http://b", "http://c"):
        kept.page("User", base, records[:1], render)
    assert len(kept._tables) == 2 and ("User", "http://a") not in kept._tables
    assert kept.size == sum(c for t in kept._tables.values() for _, _, c in t.values())

    # A resource bigger than the budget is shown, never kept, and drops nothing.
    size = kept.size
    big = Record("big", {}, "1", groups=[Ref(f"g{i}", "direct") for i in range(100)])
    (fragment,) = kept.page("User", "http://c", [big], render)
    assert orjson.loads(orjson.dumps(fragment))["id"] == "big"
    assert kept.size == size and len(kept._tables) == 2

    renders.clear()
    changed = [Record("r0", {}, "1", groups=[Ref("g", "direct", "G")]), Record("r0", {}, "2")]
    for record in changed:
        (fragment,) = kept.page("User", "http://c", [record], render)
        assert orjson.loads(orjson.dumps(fragment))["version"] == record.version
    kept.page("User", "http://c", changed[1:], render)
    assert renders == ["r0", "r0"]  # each change rendered again, the unchanged one not
    kept.forget("r0")
    assert kept.size == sum(c for t in kept._tables.values() for _, _, c in t.values())
