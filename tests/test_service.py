"""The service with adapters that declare less than everything."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from support import make_settings

import gateway.sdk
from adapters.memory import MemoryAdapter
from gateway.errors import InvalidFilter, Mutability
from gateway.registry import available_adapters
from gateway.scim.query import ListParams
from gateway.scim.schema import ENTERPRISE_URN
from gateway.sdk import Capabilities, Page, Query
from gateway.service import ScimService

BASE = "http://gw.test/apps/crm/scim/v2"


class NarrowAdapter(MemoryAdapter):
    """Filters only on userName eq, keeps a few attributes, no groups: like many legacy APIs."""

    capabilities = Capabilities(
        resource_types=frozenset({"User"}),
        filter_attributes={"User": {"username": frozenset({"eq"})}},
        groups=False,
        attributes={
            "User": frozenset(
                {
                    "username",
                    "name.givenname",
                    "active",
                    "title",
                    f"{ENTERPRISE_URN.lower()}:department",
                }
            )
        },
    )

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[Query] = []

    async def search(self, query: Query) -> Page:
        self.queries.append(query)
        return await super().search(query)


@pytest.fixture
def narrow() -> NarrowAdapter:
    return NarrowAdapter()


@pytest.fixture
def service(narrow: NarrowAdapter) -> ScimService:
    return ScimService("crm", narrow, make_settings().apps["crm"])


def params(filter: str | None = None, **kw: Any) -> ListParams:
    values: dict[str, Any] = dict(
        filter=filter,
        start_index=1,
        count=100,
        sort_by=None,
        descending=False,
        attributes=(),
        excluded_attributes=(),
    )
    return ListParams(**{**values, **kw})


def test_the_schema_lists_only_what_the_adapter_round_trips(service: ScimService) -> None:
    schemas = {s["id"]: s for s in service.schemas(BASE)}
    user = schemas["urn:ietf:params:scim:schemas:core:2.0:User"]
    attrs = {a["name"]: a for a in user["attributes"]}
    assert set(attrs) == {"userName", "name", "active", "title"}
    assert [s["name"] for s in attrs["name"]["subAttributes"]] == ["givenName"]
    assert [a["name"] for a in schemas[ENTERPRISE_URN]["attributes"]] == ["department"]
    assert "urn:ietf:params:scim:schemas:core:2.0:Group" not in schemas
    assert [t["name"] for t in service.resource_types(BASE)] == ["User"]


async def test_attributes_the_adapter_does_not_keep_are_ignored_on_create(
    service: ScimService,
) -> None:
    rtype = service.types["User"]
    created = await service.create(
        rtype,
        {
            "userName": "a",
            "nickName": "dropped",
            "name": {"givenName": "A", "familyName": "dropped"},
        },
        BASE,
    )
    assert "nickName" not in created and created["name"] == {"givenName": "A"}


async def test_a_filter_the_adapter_can_answer_is_pushed_down_whole(
    service: ScimService, narrow: NarrowAdapter
) -> None:
    rtype = service.types["User"]
    await service.create(rtype, {"userName": "alice"}, BASE)
    result = await service.search([rtype], params('USERNAME eq "alice"'), BASE)
    assert result["totalResults"] == 1
    assert str(narrow.queries[-1].filter) == 'userName eq "alice"'


async def test_the_rest_of_a_conjunction_is_evaluated_over_the_pushed_down_candidates(
    service: ScimService, narrow: NarrowAdapter
) -> None:
    rtype = service.types["User"]
    await service.create(rtype, {"userName": "bob", "title": "Boss"}, BASE)
    hit = await service.search([rtype], params('userName eq "bob" and title eq "boss"'), BASE)
    miss = await service.search([rtype], params('userName eq "bob" and title eq "clerk"'), BASE)
    assert (hit["totalResults"], miss["totalResults"]) == (1, 0)
    assert str(narrow.queries[-1].filter) == 'userName eq "bob"'


async def test_a_filter_with_nothing_the_adapter_can_answer_is_refused(
    service: ScimService, narrow: NarrowAdapter
) -> None:
    with pytest.raises(InvalidFilter, match="cannot filter on title"):
        await service.search([service.types["User"]], params('title eq "boss"'), BASE)
    assert narrow.queries == []


async def test_too_many_candidates_for_gateway_evaluation_is_refused(narrow: NarrowAdapter) -> None:
    service = ScimService("crm", narrow, make_settings(max_filter_scan=1).apps["crm"])
    rtype = service.types["User"]
    for name in ("c1", "c2"):
        await service.create(rtype, {"userName": name}, BASE)
    text = 'title eq "x" and (userName eq "c1" or userName eq "c2")'
    with pytest.raises(InvalidFilter):
        await service.search([rtype], params(text), BASE)


async def test_put_keeps_a_password_it_was_not_given() -> None:
    memory = MemoryAdapter()
    service = ScimService("crm", memory, make_settings().apps["crm"])
    rtype = service.types["User"]
    created = await service.create(rtype, {"userName": "p", "password": "Secret-1"}, BASE)
    assert "password" not in created
    await service.replace(rtype, created["id"], {"userName": "p2"}, BASE)
    stored = await memory.get("User", created["id"])
    assert stored.data["password"] == "Secret-1" and stored.data["userName"] == "p2"


def test_a_changed_immutable_attribute_is_refused() -> None:
    """No RFC User attribute is immutable, so make userName immutable for this test."""
    service = ScimService("crm", MemoryAdapter(), make_settings().apps["crm"])
    rtype = service.types["User"]
    frozen = replace(rtype.schema.attributes["username"], mutability="immutable")
    schema = replace(rtype.schema, attributes={**rtype.schema.attributes, "username": frozen})
    immutable = replace(rtype, schema=schema)
    service._check_immutable(immutable, {"userName": "a"}, {"userName": "a"})
    with pytest.raises(Mutability):
        service._check_immutable(immutable, {"userName": "a"}, {"userName": "b"})


def test_built_in_adapters_are_found_through_the_entry_point_group() -> None:
    assert available_adapters()["memory"] is MemoryAdapter


def test_the_sdk_exports_everything_an_adapter_author_needs() -> None:
    public = {n for n in dir(gateway.sdk) if not n.startswith("_") and n[0].isupper()}
    public -= {"Any", "ClassVar", "BaseModel", "ABC", "ALL_OPERATORS", "Sequence"}
    assert public <= set(gateway.sdk.__all__)
