"""Body normalisation, type coercion, required attributes and response projection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InvalidValue
from gateway.scim.resource import check_required, coerce_value, normalize_resource, project
from gateway.scim.schema import (
    ENTERPRISE_URN,
    Attribute,
    ResourceType,
    Schema,
    build_resource_types,
)

PAYLOADS = Path(__file__).parent.parent / "payloads"
TYPES = build_resource_types()
USER = TYPES["User"]
GROUP = TYPES["Group"]


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text("utf-8"))


def attr(name: str, rtype: ResourceType = USER) -> Attribute:
    found = rtype.lookup(name)
    assert found is not None and not isinstance(found, Schema)
    return found.target


# -- normalize_resource ---------------------------------------------------------------


def test_keys_in_any_case_are_rewritten_to_canonical_names() -> None:
    body = {"USERNAME": "bjensen", "displayname": "Babs", "ExternalID": "b1"}

    assert normalize_resource(body, USER) == {
        "userName": "bjensen",
        "displayName": "Babs",
        "externalId": "b1",
    }


def test_sub_attribute_names_are_canonical_inside_complex_and_multi_valued_values() -> None:
    body = {
        "name": {"GIVENNAME": "Barbara", "familyname": "Jensen"},
        "Emails": [{"VALUE": "babs@example.com", "Type": "work", "PRIMARY": True}],
    }

    assert normalize_resource(body, USER) == {
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "babs@example.com", "type": "work", "primary": True}],
    }


def test_dotted_keys_land_inside_their_complex_attribute() -> None:
    body = {"name.givenName": "Barbara", "NAME": {"familyName": "Jensen"}, "name.Formatted": "BJ"}

    assert normalize_resource(body, USER)["name"] == {
        "givenName": "Barbara",
        "familyName": "Jensen",
        "formatted": "BJ",
    }


def test_urn_qualified_keys_land_in_the_extension_object() -> None:
    body = {
        "userName": "bjensen",
        f"{ENTERPRISE_URN}:employeeNumber": "701984",
        f"{ENTERPRISE_URN.upper()}:manager.value": "boss",
    }

    assert normalize_resource(body, USER) == {
        "userName": "bjensen",
        ENTERPRISE_URN: {"employeeNumber": "701984", "manager": {"value": "boss"}},
    }


def test_an_extension_object_under_its_urn_in_any_case_is_normalised_recursively() -> None:
    body = {ENTERPRISE_URN.lower(): {"EmployeeNumber": "7", "manager": {"VALUE": "boss"}}}

    assert normalize_resource(body, USER) == {
        ENTERPRISE_URN: {"employeeNumber": "7", "manager": {"value": "boss"}}
    }


def test_an_unqualified_enterprise_attribute_lands_in_the_extension_object() -> None:
    assert normalize_resource({"department": "Finance"}, USER) == {
        ENTERPRISE_URN: {"department": "Finance"}
    }


def test_read_only_attributes_and_schemas_are_dropped_not_rejected() -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "abc",
        "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z"},
        "groups": [{"value": "g1"}],
        "userName": "bjensen",
        ENTERPRISE_URN: {"manager": {"value": "boss", "displayName": "The Boss"}},
    }

    assert normalize_resource(body, USER) == {
        "userName": "bjensen",
        ENTERPRISE_URN: {"manager": {"value": "boss"}},
    }


def test_unknown_attributes_and_unknown_urns_are_ignored() -> None:
    body = {
        "userName": "bjensen",
        "favouriteColour": "blue",
        "name": {"nickname": "x", "givenName": "Barbara"},
        "urn:example:custom:2.0:User": {"badge": "42"},
        "urn:example:custom:2.0:User:badge": "42",
    }

    assert normalize_resource(body, USER) == {
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
    }


def test_null_and_empty_string_mean_not_provided_at_every_level() -> None:
    body = {
        "userName": "bjensen",
        "title": None,
        "nickName": "",
        "name": {"givenName": None, "familyName": ""},
        "emails": [{"value": None}, {"value": "b@example.com", "type": None}],
        "roles": [],
        ENTERPRISE_URN: {"department": None},
    }

    assert normalize_resource(body, USER) == {
        "userName": "bjensen",
        "emails": [{"value": "b@example.com"}],
    }


def test_several_primary_values_keep_only_the_last_primary() -> None:
    body = {
        "emails": [
            {"value": "a@example.com", "primary": True},
            {"value": "b@example.com", "primary": "true"},
            {"value": "c@example.com"},
        ]
    }

    assert [e.get("primary") for e in normalize_resource(body, USER)["emails"]] == [
        False,
        True,
        None,
    ]


def test_the_entra_create_user_body_drops_meta_empty_roles_and_nulls() -> None:
    user = normalize_resource(load("entra-create-user.json"), USER)

    assert user == {
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
            }
        ],
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        ENTERPRISE_URN: {"employeeNumber": "1234"},
    }


def test_the_entra_create_group_body_ignores_the_microsoft_schema_urn() -> None:
    group = normalize_resource(load("entra-create-group.json"), GROUP)

    assert group == {
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
    }


def test_the_okta_create_user_body_keeps_the_password_and_drops_empty_groups() -> None:
    user = normalize_resource(load("okta-create-user.json"), USER)

    assert user["password"] == "1mz050nq"
    assert user["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert "groups" not in user
    assert user["active"] is True


def test_the_okta_put_body_drops_id_meta_and_groups() -> None:
    user = normalize_resource(load("okta-replace-user.json"), USER)

    assert not {"id", "meta", "groups", "schemas"} & user.keys()
    assert user["name"] == {"givenName": "Another", "familyName": "User"}


def test_a_onelogin_body_with_an_odd_schema_urn_and_a_string_boolean_is_accepted() -> None:
    user = normalize_resource(load("onelogin-create-user.json"), USER)

    assert user["userName"] == "jdoe@example.com"
    assert user["active"] is True


def test_a_wrongly_typed_value_raises_invalid_value_naming_the_attribute_not_the_value() -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_resource({"userName": "bjensen", "active": "sometimes"}, USER)

    assert caught.value.scim_type == "invalidValue"
    assert "active" in caught.value.detail
    assert "sometimes" not in caught.value.detail


def test_a_wrongly_typed_sub_attribute_is_named_with_its_parent() -> None:
    with pytest.raises(InvalidValue) as caught:
        normalize_resource({"emails": [{"value": "a@example.com", "primary": "yes"}]}, USER)

    assert "emails.primary" in caught.value.detail


def test_an_extension_that_is_not_an_object_is_an_invalid_value() -> None:
    with pytest.raises(InvalidValue):
        normalize_resource({ENTERPRISE_URN: "Finance"}, USER)


# -- coerce_value ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (True, True),
        (False, False),
        ("True", True),
        ("False", False),
        ("true", True),
        ("false", False),
    ],
)
def test_booleans_accept_json_booleans_and_their_spellings_as_strings(
    given: Any, expected: bool
) -> None:
    assert coerce_value(attr("active"), given) is expected


@pytest.mark.parametrize("given", ["yes", 1, 0, [True], {"value": True}])
def test_booleans_reject_anything_else(given: Any) -> None:
    with pytest.raises(InvalidValue):
        coerce_value(attr("active"), given)


def test_integers_accept_numbers_and_numeric_strings() -> None:
    count = Attribute("count", "integer")

    assert coerce_value(count, 3) == 3
    assert coerce_value(count, 3.0) == 3
    assert coerce_value(count, " 42 ") == 42
    with pytest.raises(InvalidValue):
        coerce_value(count, 3.5)
    with pytest.raises(InvalidValue):
        coerce_value(count, True)


def test_decimals_accept_numbers_and_numeric_strings_but_not_infinity() -> None:
    weight = Attribute("weight", "decimal")

    assert coerce_value(weight, 2) == 2
    assert coerce_value(weight, "2.5") == 2.5
    with pytest.raises(InvalidValue):
        coerce_value(weight, "inf")
    with pytest.raises(InvalidValue):
        coerce_value(weight, "heavy")


def test_strings_accept_numbers_as_text_and_reject_objects_and_lists() -> None:
    employee_number = attr(f"{ENTERPRISE_URN}:employeeNumber")

    assert coerce_value(employee_number, 701984) == "701984"
    assert coerce_value(employee_number, 1.5) == "1.5"
    with pytest.raises(InvalidValue):
        coerce_value(employee_number, {"value": "701984"})
    with pytest.raises(InvalidValue):
        coerce_value(employee_number, ["701984"])


def test_date_times_must_be_iso_8601_strings() -> None:
    created = Attribute("created", "dateTime")

    assert coerce_value(created, "2011-08-01T21:32:44.882Z") == "2011-08-01T21:32:44.882Z"
    with pytest.raises(InvalidValue):
        coerce_value(created, "yesterday")
    with pytest.raises(InvalidValue):
        coerce_value(created, 1312234364)


def test_references_must_be_strings() -> None:
    with pytest.raises(InvalidValue):
        coerce_value(attr("profileUrl"), 42)


def test_a_complex_attribute_without_a_value_sub_attribute_must_be_an_object() -> None:
    with pytest.raises(InvalidValue) as caught:
        coerce_value(attr("name"), "Barbara Jensen")

    assert "name" in caught.value.detail


def test_a_single_value_of_a_multi_valued_attribute_is_wrapped_in_a_list() -> None:
    assert coerce_value(attr("emails"), {"value": "a@example.com"}) == [{"value": "a@example.com"}]
    assert coerce_value(attr("emails"), "a@example.com") == [{"value": "a@example.com"}]


@pytest.mark.parametrize(
    "given",
    [
        "boss-id",
        {"value": "boss-id"},
        [{"$ref": None, "value": "boss-id"}],
        [{"value": "boss-id"}, {"value": "other"}],
    ],
)
def test_a_manager_given_as_string_object_or_list_becomes_one_object(given: Any) -> None:
    assert coerce_value(attr(f"{ENTERPRISE_URN}:manager"), given) == {"value": "boss-id"}


def test_roles_given_as_json_text_are_parsed() -> None:
    roles = attr("roles")
    text = '[{"value": "Admin", "primary": "True", "type": "WindowsAzureActiveDirectoryRole"}]'

    assert coerce_value(roles, text) == [
        {"value": "Admin", "primary": True, "type": "WindowsAzureActiveDirectoryRole"}
    ]
    assert coerce_value(roles, '{"value": "Reader"}') == [{"value": "Reader"}]
    assert coerce_value(roles, "Reader") == [{"value": "Reader"}]


def test_roles_given_as_malformed_json_text_are_an_invalid_value() -> None:
    with pytest.raises(InvalidValue) as caught:
        coerce_value(attr("roles"), '[{"value": ')

    assert "roles" in caught.value.detail


def test_values_that_amount_to_nothing_coerce_to_none() -> None:
    assert coerce_value(attr("title"), None) is None
    assert coerce_value(attr("title"), "") is None
    assert coerce_value(attr("emails"), []) is None
    assert coerce_value(attr("name"), {"givenName": None}) is None


# -- check_required -------------------------------------------------------------------


def test_a_user_without_user_name_fails_the_required_check_naming_it() -> None:
    with pytest.raises(InvalidValue) as caught:
        check_required({"displayName": "Babs"}, USER)

    assert caught.value.scim_type == "invalidValue"
    assert "userName" in caught.value.detail


def test_a_group_without_display_name_fails_the_required_check() -> None:
    with pytest.raises(InvalidValue, match="displayName"):
        check_required({"members": [{"value": "u1"}]}, GROUP)


def test_an_empty_string_does_not_satisfy_a_required_attribute() -> None:
    with pytest.raises(InvalidValue):
        check_required({"userName": ""}, USER)


def test_resources_with_their_required_attributes_pass_the_check() -> None:
    check_required({"userName": "bjensen"}, USER)
    check_required({"displayName": "Admins"}, GROUP)


# -- project --------------------------------------------------------------------------

STORED_USER: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
    "id": "2819c223",
    "externalId": "bjensen",
    "meta": {"resourceType": "User", "created": "2011-08-01T21:32:44.882Z"},
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "password": "t1meMa$heen",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    ENTERPRISE_URN: {"employeeNumber": "701984", "manager": {"value": "boss"}},
}


def test_by_default_everything_but_the_password_is_returned() -> None:
    shown = project(STORED_USER, USER)

    assert shown == {k: v for k, v in STORED_USER.items() if k != "password"}
    assert shown is not STORED_USER


def test_a_resource_type_that_hides_nothing_is_returned_as_an_equal_copy() -> None:
    group = {"schemas": ["s"], "id": "g1", "displayName": "Admins", "members": [{"value": "u"}]}

    shown = project(group, GROUP)

    assert shown == group
    assert shown is not group


def test_attributes_keeps_the_named_ones_plus_id_and_schemas() -> None:
    shown = project(STORED_USER, USER, attributes=["userName"])

    assert shown == {"schemas": STORED_USER["schemas"], "id": "2819c223", "userName": "bjensen"}


def test_a_named_sub_attribute_keeps_only_that_sub_attribute_of_every_value() -> None:
    shown = project(STORED_USER, USER, attributes=["emails.value", "name.familyName"])

    assert shown["emails"] == [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
    assert shown["name"] == {"familyName": "Jensen"}


def test_attribute_names_match_in_any_case_and_unknown_names_are_ignored() -> None:
    shown = project(STORED_USER, USER, attributes=["USERNAME", "Name.GivenName", "shoeSize"])

    assert shown == {
        "schemas": STORED_USER["schemas"],
        "id": "2819c223",
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
    }


def test_urn_qualified_and_bare_extension_names_select_extension_attributes() -> None:
    one = project(STORED_USER, USER, attributes=[f"{ENTERPRISE_URN}:employeeNumber"])
    whole = project(STORED_USER, USER, attributes=[ENTERPRISE_URN.lower()])
    sub = project(STORED_USER, USER, attributes=[f"{ENTERPRISE_URN}:manager.value"])

    assert one[ENTERPRISE_URN] == {"employeeNumber": "701984"}
    assert whole[ENTERPRISE_URN] == STORED_USER[ENTERPRISE_URN]
    assert sub[ENTERPRISE_URN] == {"manager": {"value": "boss"}}
    assert "userName" not in whole


def test_the_password_is_never_returned_even_when_asked_for() -> None:
    assert "password" not in project(STORED_USER, USER, attributes=["password", "userName"])


def test_excluded_attributes_are_removed_from_the_default_set() -> None:
    shown = project(STORED_USER, USER, excluded=["emails", "name.givenName", "meta"])

    assert "emails" not in shown
    assert "meta" not in shown
    assert shown["name"] == {"familyName": "Jensen"}
    assert shown["userName"] == "bjensen"


def test_excluding_an_always_returned_attribute_has_no_effect() -> None:
    shown = project(STORED_USER, USER, excluded=["id"])

    assert shown["id"] == "2819c223"


def test_excluding_the_extension_urn_removes_the_whole_extension_object() -> None:
    assert ENTERPRISE_URN not in project(STORED_USER, USER, excluded=[ENTERPRISE_URN])


def test_excluding_every_extension_attribute_drops_the_emptied_extension_object() -> None:
    shown = project(STORED_USER, USER, excluded=["employeeNumber", "manager"])

    assert ENTERPRISE_URN not in shown


def test_excluded_members_leave_a_group_without_them() -> None:
    group = {"schemas": ["s"], "id": "g1", "displayName": "Admins", "members": [{"value": "u"}]}

    assert project(group, GROUP, excluded=["members"]) == {
        "schemas": ["s"],
        "id": "g1",
        "displayName": "Admins",
    }


def test_attributes_returned_on_request_only_appear_when_named() -> None:
    schema = Schema(
        id="urn:example:Thing",
        name="Thing",
        description="",
        attributes={
            "label": Attribute("label"),
            "secretnote": Attribute("secretNote", returned="request"),
        },
    )
    things = ResourceType("Thing", "/Things", "", schema)
    thing = {"id": "t1", "label": "x", "secretNote": "y"}

    assert project(thing, things) == {"id": "t1", "label": "x"}
    assert project(thing, things, attributes=["secretnote"]) == {"id": "t1", "secretNote": "y"}


def test_projection_leaves_the_stored_resource_untouched() -> None:
    before = json.dumps(STORED_USER, sort_keys=True)

    project(STORED_USER, USER, attributes=["emails.value"], excluded=["name"])

    assert json.dumps(STORED_USER, sort_keys=True) == before


def test_resolved_keys_are_kept_per_type_and_bounded() -> None:
    """lookup_key keeps its answers per resource type (a restricted type resolves a key
    its full twin would), and a body of many unknown keys does not grow the table."""
    from gateway.scim import resource

    restricted = build_resource_types({"User": {"username"}})["User"]
    assert resource.lookup_key(USER, "title") is not None
    assert resource.lookup_key(restricted, "title") is None
    assert resource.lookup_key(USER, "title") is not None  # the full type's own answer
    for i in range(2 * resource._MAX_CACHED_KEYS):
        assert resource.lookup_key(USER, f"unknown{i}") is None
    assert len(USER.resolved_keys) <= resource._MAX_CACHED_KEYS
    assert resource.lookup_key(USER, " USERNAME ") == resource._lookup_key(USER, "userName")
