"""Route templates name spans and access lines: no app name, id or query in them."""

from __future__ import annotations

import pytest

from gateway.http.observe import route_of


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/apps/crm/scim/v2/Users/2819c223?attributes=userName", "/apps/{app}/scim/v2/Users/{id}"),
        ("/apps/crm/scim/v2/users?filter=userName%20eq%20%22x%22", "/apps/{app}/scim/v2/Users"),
        ("/apps/crm/scim/v2/Groups/.search", "/apps/{app}/scim/v2/Groups/.search"),
        ("/apps/crm/scim/v2/.search", "/apps/{app}/scim/v2/.search"),
        ("/apps/crm/scim/v2/Bulk", "/apps/{app}/scim/v2/Bulk"),
        ("/apps/crm/scim/v2/Devices/7", "/apps/{app}/scim/v2/{type}/{id}"),
        ("/apps/crm/scim/v2/Users/7/extra", "/apps/{app}/scim/v2/Users/{id}/..."),
        ("/apps/crm/scim/v2", "/apps/{app}/scim/v2"),
        ("/something/else?token=x", "/something"),
        ("/", "/"),
    ],
)
def test_a_path_becomes_its_template(path: str, route: str) -> None:
    assert route_of(path) == route
