"""A credential of app ``hr`` gets 401 on every route of app ``crm``, for each kind of credential.

Every endpoint and method is tried, the ones that would answer 404, 405 or 501
to ``crm``'s own caller included: authentication comes before routing, so a
stranger learns nothing about ``crm`` and nothing reaches its adapter.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jwt_issuer import Issuer
from security.conftest import HR_PASSWORD, basic, bearer
from support import BASE, OTHER_TOKEN, TOKEN

Client = TestClient[web.Request, web.Application]
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
}
SEARCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
BULK = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
    "Operations": [{"method": "POST", "path": "/Users", "bulkId": "1", "data": {"userName": "b"}}],
}

#: (method, path below /scim/v2, body): every route an app has, and some it has not.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/Users", None),
    ("POST", "/Users", {"schemas": [USER], "userName": "intruder"}),
    ("GET", "/Users/{user}", None),
    ("PUT", "/Users/{user}", {"schemas": [USER], "userName": "intruder"}),
    ("PATCH", "/Users/{user}", PATCH),
    ("DELETE", "/Users/{user}", None),
    ("POST", "/Users/.search", SEARCH),
    ("GET", "/Groups", None),
    ("POST", "/Groups", {"schemas": [GROUP], "displayName": "intruders"}),
    ("GET", "/Groups/{group}", None),
    ("PUT", "/Groups/{group}", {"schemas": [GROUP], "displayName": "intruders"}),
    ("PATCH", "/Groups/{group}", PATCH),
    ("DELETE", "/Groups/{group}", None),
    ("POST", "/Groups/.search", SEARCH),
    ("POST", "/.search", SEARCH),
    ("POST", "/Bulk", BULK),
    ("GET", "/ServiceProviderConfig", None),
    ("GET", "/Schemas", None),
    ("GET", f"/Schemas/{USER}", None),
    ("GET", "/ResourceTypes", None),
    ("GET", "/ResourceTypes/User", None),
    ("GET", "/Me", None),
    ("DELETE", "/Users", None),  # no such method
    ("GET", "/Nowhere", None),  # no such endpoint
    ("GET", "", None),
]


def hr_credentials(issuer: Issuer) -> dict[str, dict[str, str]]:
    return {
        "token": bearer(OTHER_TOKEN),
        "bare token": {"Authorization": OTHER_TOKEN},
        "basic": basic("hr-user", HR_PASSWORD),
        "jwt": bearer(issuer.token(aud="hr")),
    }


async def seed(gateway: Client) -> dict[str, str]:
    """A user and a group in crm, so the id routes name things that exist."""
    own = bearer(TOKEN)
    user = await gateway.post(
        f"{BASE}/Users", json={"schemas": [USER], "userName": "kept"}, headers=own
    )
    group = await gateway.post(
        f"{BASE}/Groups", json={"schemas": [GROUP], "displayName": "kept"}, headers=own
    )
    return {
        "user": (await user.json(content_type=None))["id"],
        "group": (await group.json(content_type=None))["id"],
    }


@pytest.mark.parametrize("kind", ["token", "bare token", "basic", "jwt"])
async def test_another_apps_credential_is_valid_there_and_401_on_every_route_here(
    gateway: Client, issuer: Issuer, kind: str
) -> None:
    headers = hr_credentials(issuer)[kind]
    own = await gateway.get("/apps/hr/scim/v2/Users", headers=headers)
    assert own.status == 200, f"the {kind} is not even valid for hr"
    ids = await seed(gateway)
    for method, path, body in ROUTES:
        url = f"{BASE}{path.format(**ids)}"
        resp = await gateway.request(method, url, json=body, headers=headers)
        assert resp.status == 401, f"{kind}: {method} {path} answered {resp.status}"
        error = await resp.json(content_type=None)
        assert error["status"] == "401", f"{kind}: {method} {path}"
        assert "WWW-Authenticate" in resp.headers
    # Nothing reached crm's adapter: it holds what the seed made, unchanged.
    users = await gateway.get(f"{BASE}/Users", headers=bearer(TOKEN))
    groups = await gateway.get(f"{BASE}/Groups", headers=bearer(TOKEN))
    assert [u["userName"] for u in (await users.json(content_type=None))["Resources"]] == ["kept"]
    assert [g["displayName"] for g in (await groups.json(content_type=None))["Resources"]] == [
        "kept"
    ]
