"""The SCIM form of adapter records, byte for byte: key order included (clients and the
conformance suites compare bodies, and a list's resources must read like a GET's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from support import make_settings

from adapters.memory import MemoryAdapter
from gateway.mapping import IdentityMapping
from gateway.scim.query import ListParams
from gateway.scim.schema import ENTERPRISE_URN, GROUP_URN, USER_URN, build_resource_types
from gateway.sdk import Record, Ref
from gateway.service import Projection, ScimService

BASE = "http://gw.test/apps/crm/scim/v2"
CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
MODIFIED = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture
def service() -> ScimService:
    return ScimService("crm", MemoryAdapter(), make_settings().apps["crm"])


def same(actual: Any, expected: Any) -> bool:
    """Equal as JSON text, so the order of keys counts at every level."""
    return orjson.dumps(actual) == orjson.dumps(expected)


PLAIN = Record("u1", {"userName": "plain", "active": True})
PLAIN_SCIM = {
    "schemas": [USER_URN],
    "id": "u1",
    "userName": "plain",
    "active": True,
    "meta": {"resourceType": "User", "location": f"{BASE}/Users/u1"},
}

FULL = Record(
    "u2",
    {
        "userName": "full",
        "password": "never shown",
        "name": {"givenName": "Fu", "familyName": "Ll"},
        ENTERPRISE_URN: {"department": "Tours"},
        "emails": [{"value": "full@example.com", "primary": True}],
    },
    "7",
    CREATED,
    MODIFIED,
    groups=[Ref("g1", "direct", "Staff"), Ref("g2", "indirect")],
)
FULL_SCIM = {
    "schemas": [USER_URN, ENTERPRISE_URN],
    "id": "u2",
    "userName": "full",
    "name": {"givenName": "Fu", "familyName": "Ll"},
    ENTERPRISE_URN: {"department": "Tours"},
    "emails": [{"value": "full@example.com", "primary": True}],
    "groups": [
        {"value": "g1", "$ref": f"{BASE}/Groups/g1", "type": "direct", "display": "Staff"},
        {"value": "g2", "$ref": f"{BASE}/Groups/g2", "type": "indirect"},
    ],
    "meta": {
        "resourceType": "User",
        "location": f"{BASE}/Users/u2",
        "created": "2026-01-02T03:04:05.678901Z",
        "lastModified": "2026-02-03T04:05:06Z",
        "version": 'W/"7"',
    },
}

# What the gateway sets itself is never taken from an adapter's data.
CLAIMS = Record("u3", {"id": "x", "userName": "claims", "schemas": ["x"], "meta": {"a": 1}}, "1")
CLAIMS_SCIM = {
    "schemas": [USER_URN],
    "id": "u3",
    "userName": "claims",
    "meta": {"resourceType": "User", "location": f"{BASE}/Users/u3", "version": 'W/"1"'},
}

GROUP = Record(
    "g1",
    {"displayName": "Staff"},
    "3",
    CREATED,
    CREATED,
    members=[Ref("u1", "User"), Ref("g2", "Group", "Sub"), Ref("x9")],
)
GROUP_SCIM = {
    "schemas": [GROUP_URN],
    "id": "g1",
    "displayName": "Staff",
    "members": [
        {"value": "u1", "$ref": f"{BASE}/Users/u1", "type": "User"},
        {"value": "g2", "$ref": f"{BASE}/Groups/g2", "type": "Group", "display": "Sub"},
        {"value": "x9"},
    ],
    "meta": {
        "resourceType": "Group",
        "location": f"{BASE}/Groups/g1",
        "created": "2026-01-02T03:04:05.678901Z",
        "lastModified": "2026-01-02T03:04:05.678901Z",
        "version": 'W/"3"',
    },
}

CASES = [
    ("User", PLAIN, PLAIN_SCIM),
    ("User", FULL, FULL_SCIM),
    ("User", CLAIMS, CLAIMS_SCIM),
    ("Group", GROUP, GROUP_SCIM),
]


@pytest.mark.parametrize(("kind", "record", "expected"), CASES)
def test_a_record_becomes_its_scim_resource_with_keys_in_order(
    service: ScimService, kind: str, record: Record, expected: dict[str, Any]
) -> None:
    rtype = service.types[kind]
    assert same(service.to_scim(rtype, record, BASE), expected)
    assert same(service.to_scim_page(rtype, [record, record], BASE), [expected, expected])


@pytest.mark.parametrize(("kind", "record", "expected"), CASES)
def test_a_resource_type_from_elsewhere_gives_the_same_resource(
    service: ScimService, kind: str, record: Record, expected: dict[str, Any]
) -> None:
    """The service works out what a type's resources share once; a type object it does not
    hold (reconcile, tests) is worked out on the spot, not served another type's layout."""
    rtype = build_resource_types()[kind]
    assert rtype is not service.types[kind]
    assert same(service.to_scim_page(rtype, [record], BASE), [expected])


def test_the_page_s_base_url_is_the_one_each_location_starts_with(service: ScimService) -> None:
    rtype = service.types["User"]
    first = service.to_scim_page(rtype, [PLAIN], BASE)
    second = service.to_scim_page(rtype, [PLAIN], "https://other.test/x")
    assert first[0]["meta"]["location"] == f"{BASE}/Users/u1"
    assert second[0]["meta"]["location"] == "https://other.test/x/Users/u1"


def test_the_record_s_data_is_left_as_it_was(service: ScimService) -> None:
    data = {"userName": "kept", "password": "p", "name": {"givenName": "K"}}
    record = Record("u4", orjson.loads(orjson.dumps(data)), "1", CREATED, CREATED)
    service.to_scim(service.types["User"], record, BASE)
    assert same(record.data, data)


def test_identity_mapping_hands_over_a_dict_and_copies_any_other_mapping() -> None:
    from types import MappingProxyType

    data = {"userName": "u", "name": {"givenName": "G"}}
    mapping = IdentityMapping()
    assert mapping.from_legacy("User", data) == data
    proxy = mapping.from_legacy("User", MappingProxyType(data))
    assert type(proxy) is dict
    assert same(proxy, data)


def params(**kw: Any) -> ListParams:
    values: dict[str, Any] = dict(
        filter=None,
        start_index=1,
        count=100,
        sort_by=None,
        descending=False,
        attributes=(),
        excluded_attributes=(),
    )
    return ListParams(**{**values, **kw})


async def test_a_list_shows_each_resource_exactly_as_a_get_does(service: ScimService) -> None:
    """Users with and without groups, the extension and a password; a group with members."""
    users, groups = service.types["User"], service.types["Group"]
    bodies = [
        {"schemas": [USER_URN], "userName": "bare"},
        {
            "schemas": [USER_URN, ENTERPRISE_URN],
            "userName": "rich",
            "password": "s3cret-pass",
            "name": {"givenName": "Ri", "familyName": "Ch"},
            "emails": [{"value": "rich@example.com", "type": "work", "primary": True}],
            ENTERPRISE_URN: {"employeeNumber": "42"},
        },
        {"schemas": [USER_URN], "userName": "member", "active": True, "displayName": "M"},
    ]
    ids = [(await service.create(users, body, BASE))["id"] for body in bodies]
    group = {"schemas": [GROUP_URN], "displayName": "Staff", "members": [{"value": ids[2]}]}
    group_id = (await service.create(groups, group, BASE))["id"]

    listed = await service.search([users], params(), BASE)
    singles = [await service.get(users, id, BASE) for id in ids]
    assert same(listed["Resources"], singles)
    assert [list(r) for r in listed["Resources"]] == [
        ["schemas", "id", "userName", "meta"],
        ["schemas", "id", "userName", "name", "emails", ENTERPRISE_URN, "meta"],
        ["schemas", "id", "userName", "active", "displayName", "groups", "meta"],
    ]
    assert listed["Resources"][1]["schemas"] == [USER_URN, ENTERPRISE_URN]
    assert list(listed["Resources"][2]["meta"]) == [
        "resourceType",
        "location",
        "created",
        "lastModified",
        "version",
    ]
    assert list(listed) == ["schemas", "totalResults", "itemsPerPage", "startIndex", "Resources"]

    both = await service.search([users, groups], params(), BASE)
    assert same(both["Resources"], [*singles, await service.get(groups, group_id, BASE)])

    # a projection still applies, per resource, as a GET's does
    narrow = await service.search([users], params(attributes=("userName",)), BASE)
    projection = Projection(attributes=("userName",))
    assert same(narrow["Resources"], [await service.get(users, id, BASE, projection) for id in ids])
    assert [list(r) for r in narrow["Resources"]] == [["schemas", "id", "userName"]] * 3
