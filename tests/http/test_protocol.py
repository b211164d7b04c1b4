"""The HTTP surface: routing, auth, content types, discovery, errors, ETags, Bulk."""

from __future__ import annotations

from typing import Any

from support import BASE, OTHER_TOKEN, TOKEN
from yarl import URL

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def assert_scim_error(body: dict[str, Any], status: int, scim_type: str | None = None) -> None:
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    if scim_type is not None:
        assert body["scimType"] == scim_type


async def create_user(client: Any, user_name: str = "bjensen", **extra: Any) -> dict[str, Any]:
    resp = await client.post(
        f"{BASE}/Users", json={"schemas": [USER], "userName": user_name, **extra}
    )
    assert resp.status == 201, await resp.text()
    body: dict[str, Any] = await resp.json(content_type=None)
    return body


# -- auth and routing --------------------------------------------------------------------


async def test_a_request_without_credentials_gets_401_as_scim_error(anon: Any) -> None:
    resp = await anon.get(f"{BASE}/Users")
    assert resp.status == 401
    assert_scim_error(await resp.json(content_type=None), 401)
    assert "WWW-Authenticate" in resp.headers


async def test_a_wrong_token_gets_401(anon: Any) -> None:
    resp = await anon.get(f"{BASE}/Users", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401


async def test_a_bare_token_without_bearer_is_accepted(anon: Any) -> None:
    resp = await anon.get(f"{BASE}/Users", headers={"Authorization": TOKEN})
    assert resp.status == 200


async def test_another_apps_token_is_refused(anon: Any) -> None:
    resp = await anon.get(f"{BASE}/Users", headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert resp.status == 401


async def test_an_unknown_app_is_a_scim_404(client: Any) -> None:
    resp = await client.get("/apps/nope/scim/v2/Users")
    assert resp.status == 404
    assert_scim_error(await resp.json(content_type=None), 404)


async def test_trailing_and_double_slashes_are_normalised(client: Any) -> None:
    for path in ("/apps/crm/scim//v2/Users/", "/apps//crm/scim/v2//Users", f"{BASE}/Users?"):
        resp = await client.get(path)
        assert resp.status == 200, path


async def test_me_answers_501(client: Any) -> None:
    resp = await client.get(f"{BASE}/Me")
    assert resp.status == 501
    assert_scim_error(await resp.json(content_type=None), 501)


async def test_a_wrong_method_is_a_scim_405_with_allow(client: Any) -> None:
    resp = await client.delete(f"{BASE}/Users")
    assert resp.status == 405
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert_scim_error(await resp.json(content_type=None), 405)


async def test_health_and_readiness_probes_answer(client: Any) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["apps"] == {"crm": True, "hr": True}


# -- content types -------------------------------------------------------------------------


async def test_responses_are_scim_json_by_default(client: Any) -> None:
    resp = await client.get(f"{BASE}/Users", headers={"Accept": "*/*"})
    assert resp.content_type == "application/scim+json"


async def test_a_client_accepting_only_json_gets_application_json(client: Any) -> None:
    resp = await client.get(f"{BASE}/Users", headers={"Accept": "application/json"})
    assert resp.content_type == "application/json"


async def test_an_odd_accept_header_never_gives_406(client: Any) -> None:
    resp = await client.get(f"{BASE}/Users", headers={"Accept": "text/html"})
    assert resp.status == 200


async def test_a_body_that_is_not_json_is_invalid_syntax(client: Any) -> None:
    resp = await client.post(
        f"{BASE}/Users", data=b"{not json", headers={"Content-Type": "application/scim+json"}
    )
    assert resp.status == 400
    assert_scim_error(await resp.json(content_type=None), 400, "invalidSyntax")


# -- discovery --------------------------------------------------------------------------


async def test_service_provider_config_describes_the_app(client: Any) -> None:
    body = await (await client.get(f"{BASE}/ServiceProviderConfig")).json(content_type=None)
    assert body["patch"]["supported"] is True
    assert body["bulk"]["supported"] is True and body["bulk"]["maxOperations"] == 1000
    assert body["etag"]["supported"] is True
    assert body["sort"]["supported"] is True
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


async def test_resource_types_list_users_and_groups(client: Any) -> None:
    body = await (await client.get(f"{BASE}/ResourceTypes")).json(content_type=None)
    assert {r["name"] for r in body["Resources"]} == {"User", "Group"}
    one = await (await client.get(f"{BASE}/ResourceTypes/User")).json(content_type=None)
    assert one["schemaExtensions"][0]["schema"].endswith("enterprise:2.0:User")


async def test_schemas_are_served_by_urn(client: Any) -> None:
    body = await (await client.get(f"{BASE}/Schemas")).json(content_type=None)
    assert body["totalResults"] == 3
    resp = await client.get(f"{BASE}/Schemas/{USER}")
    assert resp.status == 200
    names = {a["name"] for a in (await resp.json(content_type=None))["attributes"]}
    assert {"userName", "name", "emails", "active", "password"} <= names
    assert (await client.get(f"{BASE}/Schemas/urn:nope")).status == 404


# -- resources, ETags ----------------------------------------------------------------------


async def test_post_answers_201_with_location_and_etag(client: Any) -> None:
    resp = await client.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "loc"})
    assert resp.status == 201
    body = await resp.json(content_type=None)
    assert resp.headers["Location"] == body["meta"]["location"]
    assert resp.headers["Location"].endswith(f"{BASE}/Users/{body['id']}")
    assert resp.headers["ETag"] == body["meta"]["version"]
    assert body["meta"]["resourceType"] == "User"
    assert "created" in body["meta"] and "lastModified" in body["meta"]


async def test_if_none_match_with_the_current_etag_gives_304(client: Any) -> None:
    user = await create_user(client)
    url = f"{BASE}/Users/{user['id']}"
    resp = await client.get(url, headers={"If-None-Match": user["meta"]["version"]})
    assert resp.status == 304
    resp = await client.get(url, headers={"If-None-Match": 'W/"0"'})
    assert resp.status == 200


async def test_if_match_with_a_stale_etag_gives_412_and_changes_nothing(client: Any) -> None:
    user = await create_user(client)
    url = f"{BASE}/Users/{user['id']}"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "One"}],
    }
    first = await client.patch(url, json=patch, headers={"If-Match": user["meta"]["version"]})
    assert first.status == 200
    patch["Operations"][0]["value"] = "Two"
    stale = await client.patch(url, json=patch, headers={"If-Match": user["meta"]["version"]})
    assert stale.status == 412
    assert_scim_error(await stale.json(content_type=None), 412)
    current = await (await client.get(url)).json(content_type=None)
    assert current["displayName"] == "One"
    gone = await client.delete(url, headers={"If-Match": user["meta"]["version"]})
    assert gone.status == 412


async def test_a_deleted_user_is_a_404(client: Any) -> None:
    user = await create_user(client)
    url = f"{BASE}/Users/{user['id']}"
    assert (await client.delete(url)).status == 204
    resp = await client.get(url)
    assert resp.status == 404
    assert_scim_error(await resp.json(content_type=None), 404)


async def test_an_id_with_an_encoded_slash_stays_one_segment(client: Any) -> None:
    resp = await client.get(f"{BASE}/Users/..%2F..%2Fapps%2Fhr")
    assert resp.status == 404


async def test_apps_are_isolated_from_each_other(client: Any, anon: Any) -> None:
    user = await create_user(client, "isolated")
    other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    resp = await anon.get(f"/apps/hr/scim/v2/Users/{user['id']}", headers=other)
    assert resp.status == 404


# -- bulk --------------------------------------------------------------------------------

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


async def test_bulk_resolves_bulk_id_references(client: Any, payload: Any) -> None:
    resp = await client.post(f"{BASE}/Bulk", json=payload("rfc7644-3.7.2-bulk-with-bulkid.json"))
    assert resp.status == 200
    body = await resp.json(content_type=None)
    statuses = {op["bulkId"]: op["status"] for op in body["Operations"]}
    assert statuses == {"qwerty": "201", "ytrewq": "201"}
    group_url = next(op["location"] for op in body["Operations"] if op["bulkId"] == "ytrewq")
    group = await (await client.get(URL(group_url).path)).json(content_type=None)
    user_id = next(
        op["location"].rsplit("/", 1)[1] for op in body["Operations"] if op["bulkId"] == "qwerty"
    )
    assert [m["value"] for m in group["members"]] == [user_id]


async def test_bulk_stops_after_fail_on_errors(client: Any) -> None:
    ops = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": str(n),
            "data": {"schemas": [USER], "userName": "dup"},
        }
        for n in range(4)
    ]
    resp = await client.post(
        f"{BASE}/Bulk", json={"schemas": [BULK], "failOnErrors": 1, "Operations": ops}
    )
    body = await resp.json(content_type=None)
    assert [op["status"] for op in body["Operations"]] == ["201", "409"]
    assert body["Operations"][1]["response"]["scimType"] == "uniqueness"


async def test_bulk_over_max_operations_is_413(app: Any, aiohttp_client: Any) -> None:
    from support import make_settings

    from gateway.app import create_app

    small = create_app(make_settings(bulk={"max_operations": 2, "max_payload_size": 4096}))
    client = await aiohttp_client(small, headers={"Authorization": f"Bearer {TOKEN}"})
    ops = [{"method": "DELETE", "path": f"/Users/{n}"} for n in range(3)]
    resp = await client.post(f"{BASE}/Bulk", json={"schemas": [BULK], "Operations": ops})
    assert resp.status == 413
    assert_scim_error(await resp.json(content_type=None), 413)
    big = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "x" * 5000}}
        ],
    }
    resp = await client.post(f"{BASE}/Bulk", json=big)
    assert resp.status == 413
