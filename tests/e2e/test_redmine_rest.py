"""The REST adapter with mappings/redmine/rest.yaml passes the contract on a real Redmine.

The Redmine is shared by the session and never emptied, so every login, mail and group
name carries this run's suffix.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from e2e.redmine import Redmine
from rest_fakes import redmine_settings
from rest_support import FieldMapping
from scim2_models.path import ScimFilter

from adapters.rest import RestAdapter, RestSettings
from gateway.sdk import Query
from gateway.testing import AdapterContract

pytestmark = pytest.mark.e2e

RUN = uuid.uuid4().hex[:8]
FIELDS = FieldMapping(
    {
        "User": {"userName": "login", "name.givenName": "firstname", "emails.value": "mail"},
        "Group": {"displayName": "name"},
    }
)


@pytest.fixture
async def rest(redmine: Redmine) -> AsyncIterator[RestAdapter]:
    settings = RestSettings.model_validate(redmine_settings(redmine.base_url, redmine.api_key))
    adapter = RestAdapter(settings, app="redmine", mapping=FIELDS)
    await adapter.open()
    yield adapter
    await adapter.aclose()


class TestRestAdapterOnRedmine(AdapterContract):
    @pytest.fixture
    async def adapter(self, rest: RestAdapter) -> RestAdapter:
        return rest

    user_name_field = "login"

    def user_data(self, n: int) -> dict[str, Any]:
        login = f"contract{n}.{RUN}"
        return {
            "login": login,
            "firstname": f"Given{n}",
            "lastname": f"Family{n}",
            "mail": f"{login}@example.com",
        }

    group_name_field = "name"

    def group_data(self, n: int) -> dict[str, Any]:
        return {"name": f"Contract Group {n} {RUN}"}


async def test_a_login_filter_is_exact_although_redmine_matches_substrings(
    rest: RestAdapter, redmine: Redmine
) -> None:
    short = f"ann.{RUN}"
    ann = await rest.create(
        "User", {"login": short, "firstname": "A", "lastname": "B", "mail": f"{short}@example.com"}
    )
    longer = f"joann.{RUN}"
    await rest.create(
        "User",
        {"login": longer, "firstname": "A", "lastname": "B", "mail": f"{longer}@example.com"},
    )
    page = await rest.search(Query("User", ScimFilter(f'userName eq "{short}"').ast))
    assert [r.id for r in page.records] == [ann.id]


async def test_locking_a_user_is_a_field_change(rest: RestAdapter, redmine: Redmine) -> None:
    login = f"lock.{RUN}"
    user = await rest.create(
        "User", {"login": login, "firstname": "A", "lastname": "B", "mail": f"{login}@example.com"}
    )
    locked = await rest.update("User", user.id, {"status": 3})
    assert locked.data["status"] == 3
    async with redmine.client() as rm:
        assert (await rm.get_user(int(user.id)) or {})["status"] == 3
