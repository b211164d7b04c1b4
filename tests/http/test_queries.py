"""Queries over HTTP: .search, sorting, paging, projection, PUT semantics (RFC 7644 3.4, 3.5.1)."""

from __future__ import annotations

from typing import Any

import pytest
from support import BASE

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


async def body(resp: Any) -> Any:
    return await resp.json(content_type=None)


@pytest.fixture
async def people(client: Any) -> dict[str, dict[str, Any]]:
    made = {}
    for name, given, title in [
        ("carol", "Carol", "CTO"),
        ("alice", "Alice", "Dev"),
        ("bob", "Bob", "Dev"),
    ]:
        resp = await client.post(
            f"{BASE}/Users",
            json={
                "schemas": [USER, ENTERPRISE],
                "userName": name,
                "title": title,
                "name": {"givenName": given, "familyName": "Smith"},
                "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
                ENTERPRISE: {"department": "R&D" if title == "Dev" else "Board"},
            },
        )
        made[name] = await body(resp)
    return made


async def test_post_search_on_a_type_filters_sorts_and_projects(client: Any, people: Any) -> None:
    """RFC 7644 3.4.3."""
    resp = await client.post(
        f"{BASE}/Users/.search",
        json={
            "schemas": [SEARCH],
            "filter": 'title eq "Dev"',
            "sortBy": "userName",
            "sortOrder": "descending",
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        },
    )
    assert resp.status == 200
    result = await body(resp)
    assert result["totalResults"] == 2
    assert [r["userName"] for r in result["Resources"]] == ["bob", "alice"]
    assert set(result["Resources"][0]) == {"schemas", "id", "userName"}


async def test_post_search_at_the_root_spans_users_and_groups(client: Any, people: Any) -> None:
    await client.post(f"{BASE}/Groups", json={"schemas": [GROUP], "displayName": "Devs"})
    resp = await client.post(f"{BASE}/.search", json={"schemas": [SEARCH], "count": 50})
    result = await body(resp)
    kinds = sorted(r["meta"]["resourceType"] for r in result["Resources"])
    assert result["totalResults"] == 4 and kinds == ["Group", "User", "User", "User"]
    named = await client.post(
        f"{BASE}/.search", json={"schemas": [SEARCH], "filter": 'displayName eq "Devs"'}
    )
    assert [r["displayName"] for r in (await body(named))["Resources"]] == ["Devs"]


async def test_root_search_pages_across_types(client: Any, people: Any) -> None:
    await client.post(f"{BASE}/Groups", json={"schemas": [GROUP], "displayName": "G"})
    seen = []
    for start in (1, 3):
        resp = await client.post(
            f"{BASE}/.search", json={"schemas": [SEARCH], "startIndex": start, "count": 2}
        )
        page = await body(resp)
        assert page["totalResults"] == 4 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
    assert len(set(seen)) == 4


async def test_a_search_without_the_search_schema_is_invalid_syntax(client: Any) -> None:
    resp = await client.post(f"{BASE}/Users/.search", json={"filter": "userName pr"})
    assert resp.status == 400
    assert (await body(resp))["scimType"] == "invalidSyntax"


async def test_sort_by_a_sub_attribute_ascending_and_descending(client: Any, people: Any) -> None:
    """RFC 7644 3.4.2.3."""
    up = await body(await client.get(f"{BASE}/Users?sortBy=name.givenName"))
    down = await body(await client.get(f"{BASE}/Users?sortBy=name.givenName&sortOrder=descending"))
    assert [r["userName"] for r in up["Resources"]] == ["alice", "bob", "carol"]
    assert [r["userName"] for r in down["Resources"]] == ["carol", "bob", "alice"]


async def test_paging_is_one_based_and_honours_count(client: Any, people: Any) -> None:
    """RFC 7644 3.4.2.4."""
    page = await body(await client.get(f"{BASE}/Users?sortBy=userName&startIndex=2&count=1"))
    assert (page["startIndex"], page["itemsPerPage"], page["totalResults"]) == (2, 1, 3)
    assert [r["userName"] for r in page["Resources"]] == ["bob"]
    zero = await body(await client.get(f"{BASE}/Users?count=0"))
    assert (zero["totalResults"], zero["Resources"]) == (3, [])


@pytest.mark.parametrize("start", [2**70, 1e308, "9" * 40])
async def test_a_huge_start_index_in_a_search_body_is_an_empty_page(
    client: Any, people: Any, start: Any
) -> None:
    """Found by the fuzzer: a JSON number past 64 bits was echoed and broke the encoder."""
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    resp = await client.post(f"{BASE}/Users/.search", json={**search, "startIndex": start})
    assert resp.status == 200
    page = await body(resp)
    assert (page["totalResults"], page["Resources"]) == (3, [])
    assert page["startIndex"] == 10**18


async def test_attributes_and_excluded_attributes_shape_the_answer(
    client: Any, people: Any
) -> None:
    """RFC 7644 3.4.2.5: id and schemas always come back."""
    uid = people["alice"]["id"]
    only = await body(
        await client.get(f"{BASE}/Users/{uid}?attributes=emails.value,{ENTERPRISE}:department")
    )
    assert only["emails"] == [{"value": "alice@example.com"}]
    assert only[ENTERPRISE] == {"department": "R&D"}
    assert "userName" not in only and only["id"] == uid and "schemas" in only
    without = await body(await client.get(f"{BASE}/Users/{uid}?excludedAttributes=emails,name"))
    assert "emails" not in without and "name" not in without and without["userName"] == "alice"


async def test_an_unknown_sort_order_is_invalid_value(client: Any) -> None:
    resp = await client.get(f"{BASE}/Users?sortOrder=sideways")
    assert resp.status == 400 and (await body(resp))["scimType"] == "invalidValue"


async def test_a_bad_filter_is_invalid_filter(client: Any) -> None:
    resp = await client.get(f'{BASE}/Users?filter=userName eq "x" and')
    assert resp.status == 400 and (await body(resp))["scimType"] == "invalidFilter"
    unknown = await client.get(f"{BASE}/Users?filter=shoeSize gt 40")
    assert unknown.status == 400 and "shoeSize" in (await body(unknown))["detail"]


async def test_put_replaces_every_writable_attribute(client: Any, people: Any) -> None:
    """RFC 7644 3.5.1: what the PUT leaves out is cleared; read-only attributes are kept."""
    alice = people["alice"]
    resp = await client.put(
        f"{BASE}/Users/{alice['id']}",
        json={"schemas": [USER], "id": "ignored", "userName": "alice", "displayName": "Al"},
    )
    assert resp.status == 200
    replaced = await body(resp)
    assert replaced["id"] == alice["id"] and replaced["displayName"] == "Al"
    assert "emails" not in replaced and "title" not in replaced and ENTERPRISE not in replaced
    assert replaced["meta"]["created"] == alice["meta"]["created"]
    assert replaced["meta"]["version"] != alice["meta"]["version"]


async def test_put_without_the_required_user_name_changes_nothing(client: Any, people: Any) -> None:
    alice = people["alice"]
    resp = await client.put(f"{BASE}/Users/{alice['id']}", json={"schemas": [USER], "title": "x"})
    assert resp.status == 400 and (await body(resp))["scimType"] == "invalidValue"
    assert (await body(await client.get(f"{BASE}/Users/{alice['id']}")))["title"] == "Dev"


async def test_put_of_a_group_sends_membership_as_a_delta(client: Any, people: Any) -> None:
    ids = [people[n]["id"] for n in ("alice", "bob", "carol")]
    made = await body(
        await client.post(
            f"{BASE}/Groups",
            json={
                "schemas": [GROUP],
                "displayName": "Team",
                "members": [{"value": i} for i in ids[:2]],
            },
        )
    )
    resp = await client.put(
        f"{BASE}/Groups/{made['id']}",
        json={
            "schemas": [GROUP],
            "displayName": "Team",
            "members": [{"value": i} for i in ids[1:]],
        },
    )
    assert resp.status == 200
    group = await body(await client.get(f"{BASE}/Groups/{made['id']}"))
    assert sorted(m["value"] for m in group["members"]) == sorted(ids[1:])
    bob = await body(await client.get(f"{BASE}/Users/{ids[1]}"))
    assert [g["value"] for g in bob["groups"]] == [made["id"]]


async def test_put_with_a_stale_if_match_is_412(client: Any, people: Any) -> None:
    alice = people["alice"]
    url = f"{BASE}/Users/{alice['id']}"
    ok = await client.put(
        url,
        json={"userName": "alice", "title": "A"},
        headers={"If-Match": alice["meta"]["version"]},
    )
    assert ok.status == 200
    stale = await client.put(
        url,
        json={"userName": "alice", "title": "B"},
        headers={"If-Match": alice["meta"]["version"]},
    )
    assert stale.status == 412
    assert (await body(await client.get(url)))["title"] == "A"


async def test_a_patch_that_fails_halfway_changes_nothing(client: Any, people: Any) -> None:
    """RFC 7644 3.5.2: PATCH is atomic."""
    alice = people["alice"]
    resp = await client.patch(
        f"{BASE}/Users/{alice['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "title", "value": "Changed"},
                {"op": "replace", "path": "meta.created", "value": "2000-01-01T00:00:00Z"},
            ],
        },
    )
    assert resp.status == 400 and (await body(resp))["scimType"] == "mutability"
    assert (await body(await client.get(f"{BASE}/Users/{alice['id']}")))["title"] == "Dev"
