"""PATCH parsing and application: every RFC 7644 3.5.2 example and the IdP forms."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import (
    BadRequest,
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
)
from gateway.scim.patch import PatchOp, apply_patch, parse_patch
from gateway.scim.schema import ENTERPRISE_URN, PATCH_URN, ResourceType, build_resource_types

PAYLOADS = Path(__file__).parent.parent / "payloads"
TYPES = build_resource_types()
USER = TYPES["User"]
GROUP = TYPES["Group"]

BABS = "2819c223-7f76-453a-919d-413861904646"
JAMES = "08e1d05d-121c-4561-8b96-473d93df9210"
OTHER = "902c246b-6245-4190-8e05-00816be7344a"
MANAGER = "26b4e5cc-2ae0-4c71-a8b4-1c3a1c8e9a42"


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text("utf-8"))


def patched(resource: dict[str, Any], payload: str, rtype: ResourceType = USER) -> dict[str, Any]:
    return apply_patch(resource, parse_patch(load(payload)), rtype)


def apply(resource: dict[str, Any], *ops: dict[str, Any], rtype: ResourceType = USER) -> Any:
    body = {"schemas": [PATCH_URN], "Operations": list(ops)}
    return apply_patch(resource, parse_patch(body), rtype)


def group(*member_ids: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [{"value": m, "display": m[:4]} for m in member_ids],
    }


def user(**extra: Any) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": BABS,
        "meta": {"resourceType": "User", "created": "2011-08-01T21:32:44.882Z"},
        "userName": "bjensen",
        "active": True,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        **extra,
    }


def member_ids(resource: dict[str, Any]) -> list[str]:
    return [m["value"] for m in resource.get("members", [])]


# -- parse_patch ----------------------------------------------------------------------


def test_a_patch_body_parses_into_frozen_operations() -> None:
    ops = parse_patch(load("rfc7644-3.5.2.2-remove-all-members-then-add.json"))

    assert [(op.op, op.path) for op in ops] == [("remove", "members"), ("add", "members")]
    with pytest.raises(AttributeError):
        ops[0].op = "add"  # type: ignore[misc]


def test_the_patch_op_urn_and_member_names_match_in_any_case() -> None:
    body = {
        "SCHEMAS": [PATCH_URN.upper()],
        "operations": [{"OP": "Replace", "Path": "active", "VALUE": False}],
    }

    assert parse_patch(body) == [PatchOp("replace", "active", False)]


@pytest.mark.parametrize("name", ["Add", "ADD", "add"])
def test_op_names_match_in_any_case(name: str) -> None:
    body = {"schemas": [PATCH_URN], "Operations": [{"op": name, "path": "title", "value": "x"}]}

    assert parse_patch(body)[0].op == "add"


@pytest.mark.parametrize(
    "body",
    [
        {"Operations": [{"op": "add", "path": "title", "value": "x"}]},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []},
        {"schemas": [PATCH_URN]},
        {"schemas": [PATCH_URN], "Operations": []},
        {"schemas": [PATCH_URN], "Operations": {"op": "add"}},
        {"schemas": [PATCH_URN], "Operations": ["add"]},
        {"schemas": [PATCH_URN], "Operations": [{"op": "move", "path": "title"}]},
        {"schemas": [PATCH_URN], "Operations": [{"path": "title", "value": "x"}]},
    ],
)
def test_a_malformed_patch_body_is_invalid_syntax(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidSyntax) as caught:
        parse_patch(body)

    assert caught.value.status == 400
    assert caught.value.scim_type == "invalidSyntax"


def test_remove_without_a_path_is_no_target() -> None:
    body = {"schemas": [PATCH_URN], "Operations": [{"op": "remove"}]}

    with pytest.raises(NoTarget) as caught:
        parse_patch(body)

    assert caught.value.scim_type == "noTarget"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "add", "path": "title"},
        {"op": "replace"},
        {"op": "replace", "value": "Babs"},
        {"op": "add", "value": None},
    ],
)
def test_add_or_replace_without_a_usable_value_is_invalid_value(
    operation: dict[str, Any],
) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_patch({"schemas": [PATCH_URN], "Operations": [operation]})

    assert caught.value.scim_type == "invalidValue"


def test_a_path_with_bad_syntax_is_rejected_at_parse_time_as_invalid_path() -> None:
    body = {"schemas": [PATCH_URN], "Operations": [{"op": "remove", "path": 'emails[type eq "wo'}]}

    with pytest.raises(InvalidPath) as caught:
        parse_patch(body)

    assert caught.value.scim_type == "invalidPath"
    assert "emails" not in caught.value.detail  # details never echo paths: filters hold values


# -- RFC 7644 3.5.2.1 add -------------------------------------------------------------


def test_rfc_add_members_appends_the_new_member() -> None:
    result = patched(group(OTHER), "rfc7644-3.5.2.1-add-members.json", GROUP)

    assert member_ids(result) == [OTHER, BABS]
    assert result["members"][1]["$ref"] == f"https://example.com/v2/Users/{BABS}"


def test_rfc_add_without_path_adds_an_email_and_sets_the_nickname() -> None:
    start = user(emails=[{"value": "bjensen@example.com", "type": "work"}])

    result = patched(start, "rfc7644-3.5.2.1-add-without-path.json")

    assert result["emails"] == [
        {"value": "bjensen@example.com", "type": "work"},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    assert result["nickName"] == "Babs"


# -- RFC 7644 3.5.2.2 remove ----------------------------------------------------------


def test_rfc_remove_one_member_by_filter_keeps_the_others() -> None:
    result = patched(group(BABS, OTHER), "rfc7644-3.5.2.2-remove-one-member.json", GROUP)

    assert member_ids(result) == [OTHER]


def test_rfc_remove_all_members_drops_the_attribute() -> None:
    result = patched(group(BABS, OTHER), "rfc7644-3.5.2.2-remove-all-members.json", GROUP)

    assert "members" not in result
    assert result["displayName"] == "Tour Guides"


def test_rfc_remove_emails_matching_a_compound_filter_removes_only_those() -> None:
    start = user(
        emails=[
            {"value": "babs@example.com", "type": "work"},
            {"value": "babs@example.org", "type": "work"},
            {"value": "babs@example.com", "type": "home"},
        ]
    )

    result = patched(start, "rfc7644-3.5.2.2-remove-work-emails.json")

    assert result["emails"] == [
        {"value": "babs@example.org", "type": "work"},
        {"value": "babs@example.com", "type": "home"},
    ]


def test_rfc_remove_all_members_then_add_replaces_the_membership() -> None:
    result = patched(group(OTHER), "rfc7644-3.5.2.2-remove-all-members-then-add.json", GROUP)

    assert member_ids(result) == [BABS, JAMES]


# -- RFC 7644 3.5.2.3 replace ---------------------------------------------------------


def test_rfc_replace_members_replaces_the_whole_list() -> None:
    result = patched(group(OTHER), "rfc7644-3.5.2.3-replace-members.json", GROUP)

    assert member_ids(result) == [BABS, JAMES]
    assert result["members"][1]["$ref"] == f"https://example.com/v2/Users/{JAMES}"


def test_rfc_replace_work_address_replaces_the_matching_address_only() -> None:
    start = user(
        addresses=[
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "LA"},
            {"type": "home", "streetAddress": "456 Hollywood Blvd", "primary": True},
        ]
    )

    result = patched(start, "rfc7644-3.5.2.3-replace-work-address.json")

    work, home = result["addresses"]
    assert work == {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    assert home == {"type": "home", "streetAddress": "456 Hollywood Blvd", "primary": False}


def test_rfc_replace_work_street_address_changes_that_sub_attribute_only() -> None:
    start = user(addresses=[{"type": "work", "streetAddress": "911 Universal", "region": "CA"}])

    result = patched(start, "rfc7644-3.5.2.3-replace-work-street-address.json")

    assert result["addresses"] == [
        {"type": "work", "streetAddress": "1010 Broadway Ave", "region": "CA"}
    ]


def test_rfc_replace_without_path_replaces_the_emails_and_the_nickname() -> None:
    start = user(emails=[{"value": "old@example.com", "type": "work"}], nickName="B")

    result = patched(start, "rfc7644-3.5.2.3-replace-without-path.json")

    assert result["emails"] == [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    assert result["nickName"] == "Babs"


# -- Entra ID -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "active"),
    [
        ("entra-deactivate.json", False),
        ("entra-deactivate-with-add.json", False),
        ("okta-deactivate.json", False),
    ],
)
def test_idp_deactivations_set_active_to_the_boolean_false(payload: str, active: bool) -> None:
    assert patched(user(), payload)["active"] is active


def test_entra_reactivation_with_the_string_true_sets_active() -> None:
    assert patched(user(active=False), "entra-reactivate.json")["active"] is True


def test_entra_pathless_replace_with_dotted_filtered_and_urn_keys() -> None:
    start = user(emails=[{"value": "old@contoso.com", "type": "work", "primary": True}])

    result = patched(start, "entra-aadoptscim-pathless-replace.json")

    assert result["displayName"] == "Jane Doe"
    assert result["name"] == {"givenName": "Jane", "familyName": "Doe"}
    assert result["active"] is False
    assert result["emails"] == [{"value": "jane.doe@contoso.com", "type": "work", "primary": True}]
    assert result[ENTERPRISE_URN] == {"employeeNumber": "701984", "department": "Finance"}


def test_entra_member_add_drops_null_refs_and_skips_members_already_there() -> None:
    result = patched(group(BABS), "entra-add-members.json", GROUP)

    assert result["members"] == [{"value": BABS, "display": "2819"}, {"value": JAMES}]


def test_entra_member_remove_with_a_value_list_removes_only_the_listed_members() -> None:
    result = patched(group(BABS, JAMES, OTHER), "entra-remove-members.json", GROUP)

    assert member_ids(result) == [JAMES, OTHER]


def test_a_member_remove_with_an_empty_value_list_removes_nothing() -> None:
    result = apply(
        group(BABS, JAMES), {"op": "Remove", "path": "members", "value": []}, rtype=GROUP
    )

    assert member_ids(result) == [BABS, JAMES]


def test_entra_add_on_a_filtered_path_with_no_match_creates_the_element() -> None:
    result = patched(user(), "entra-add-mobile-phone.json")

    assert result["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]


def test_entra_replace_on_a_filtered_path_updates_the_matching_element() -> None:
    start = user(
        emails=[
            {"value": "home@example.com", "type": "home"},
            {"value": "old@contoso.com", "type": "Work"},
        ]
    )

    result = patched(start, "entra-replace-work-email.json")

    assert result["emails"] == [
        {"value": "home@example.com", "type": "home"},
        {"value": "jane.doe@contoso.com", "type": "Work"},
    ]


def test_entra_replace_on_a_filtered_path_with_no_match_creates_the_element() -> None:
    result = patched(user(), "entra-replace-work-email.json")

    assert result["emails"] == [{"type": "work", "value": "jane.doe@contoso.com"}]


def test_entra_replace_of_a_sub_attribute_keeps_the_other_sub_attributes() -> None:
    result = patched(user(), "entra-replace-family-name.json")

    assert result["name"] == {"givenName": "Barbara", "familyName": "Smith"}


def test_entra_urn_qualified_path_sets_the_extension_attribute() -> None:
    result = patched(user(), "entra-replace-employee-number.json")

    assert result[ENTERPRISE_URN] == {"employeeNumber": "701984"}


def test_entra_manager_given_as_a_plain_string_is_stored_as_an_object() -> None:
    result = patched(user(), "entra-set-manager.json")

    assert result[ENTERPRISE_URN] == {"manager": {"value": MANAGER}}


def test_a_new_manager_replaces_the_old_manager_object_whole() -> None:
    old = {"value": "old-boss", "$ref": "../Users/old-boss", "displayName": "Old Boss"}

    result = patched(user(**{ENTERPRISE_URN: {"manager": old}}), "entra-set-manager.json")

    assert result[ENTERPRISE_URN]["manager"] == {"value": MANAGER}


def test_entra_remove_of_the_manager_by_filter_clears_the_manager() -> None:
    start = user(**{ENTERPRISE_URN: {"manager": {"value": MANAGER}, "department": "Sales"}})

    result = patched(start, "entra-remove-manager.json")

    assert result[ENTERPRISE_URN] == {"department": "Sales"}


def test_a_manager_remove_naming_another_manager_changes_nothing() -> None:
    start = user(**{ENTERPRISE_URN: {"manager": {"value": "someone-else"}}})

    result = patched(start, "entra-remove-manager.json")

    assert result[ENTERPRISE_URN] == {"manager": {"value": "someone-else"}}


def test_removing_the_only_extension_attribute_drops_the_extension_object() -> None:
    result = patched(
        user(**{ENTERPRISE_URN: {"manager": {"value": MANAGER}}}), "entra-remove-manager.json"
    )

    assert ENTERPRISE_URN not in result


def test_entra_roles_sent_as_json_text_are_parsed_and_coerced() -> None:
    result = patched(user(), "entra-add-roles-json-string.json")

    assert result["roles"] == [
        {
            "primary": True,
            "type": "WindowsAzureActiveDirectoryRole",
            "display": "Admin",
            "value": "Admin",
        }
    ]


# -- Okta and JumpCloud ---------------------------------------------------------------


def test_okta_group_rename_ignores_the_read_only_id_in_the_value() -> None:
    result = patched(group(BABS), "okta-group-rename.json", GROUP)

    assert result["displayName"] == "Test SCIMv2"
    assert result["id"] == "e9e30dba-f08f-4109-8486-d5c6a331660a"
    assert member_ids(result) == [BABS]


def test_okta_member_remove_and_add_in_one_request_both_apply() -> None:
    result = patched(group(BABS, OTHER), "okta-group-members.json", GROUP)

    assert member_ids(result) == [OTHER, JAMES]


def test_jumpcloud_repeated_member_adds_are_idempotent() -> None:
    result = patched(group(), "jumpcloud-repeated-member-add.json", GROUP)

    assert member_ids(result) == [BABS, JAMES]


def test_a_repeated_add_merges_new_sub_attributes_into_the_existing_value() -> None:
    start = user(emails=[{"value": "babs@example.com", "type": "work"}])

    result = apply(
        start,
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "babs@example.com", "display": "Babs"}],
        },
    )

    assert result["emails"] == [{"value": "babs@example.com", "type": "work", "display": "Babs"}]


# -- general semantics ----------------------------------------------------------------


def test_adding_an_equal_email_again_does_not_duplicate_it() -> None:
    start = user(emails=[{"value": "Babs@Example.com", "type": "work"}])

    result = apply(
        start,
        {"op": "add", "path": "emails", "value": {"value": "babs@example.com", "type": "work"}},
    )

    assert len(result["emails"]) == 1


def test_the_same_address_with_another_type_is_a_different_value() -> None:
    start = user(emails=[{"value": "babs@example.com", "type": "work"}])

    result = apply(
        start,
        {"op": "add", "path": "emails", "value": [{"value": "babs@example.com", "type": "home"}]},
    )

    assert [e["type"] for e in result["emails"]] == ["work", "home"]


def test_adding_a_primary_email_takes_primary_from_the_others() -> None:
    start = user(emails=[{"value": "a@example.com", "primary": True}])

    result = apply(
        start,
        {"op": "add", "path": "emails", "value": [{"value": "b@example.com", "primary": True}]},
    )

    assert result["emails"] == [
        {"value": "a@example.com", "primary": False},
        {"value": "b@example.com", "primary": True},
    ]


def test_making_an_earlier_element_primary_clears_the_later_primary() -> None:
    start = user(
        emails=[
            {"value": "a@example.com", "type": "home"},
            {"value": "b@example.com", "type": "work", "primary": True},
        ]
    )

    result = apply(
        start, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"}
    )

    assert [e.get("primary") for e in result["emails"]] == [True, False]


def test_a_value_filter_compares_booleans_given_as_strings() -> None:
    start = user(emails=[{"value": "a@example.com", "primary": True}, {"value": "b@example.com"}])

    result = apply(start, {"op": "remove", "path": 'emails[primary eq "True"]'})

    assert result["emails"] == [{"value": "b@example.com"}]


def test_the_errata_comparison_path_form_selects_like_a_value_filter() -> None:
    start = user(emails=[{"value": "a@example.com", "type": "work"}, {"value": "b@example.com"}])

    result = apply(start, {"op": "remove", "path": 'emails.type eq "work"'})

    assert result["emails"] == [{"value": "b@example.com"}]


def test_remove_on_a_filtered_path_with_no_match_is_a_no_op() -> None:
    start = group(BABS)

    result = apply(start, {"op": "remove", "path": 'members[value eq "nobody"]'}, rtype=GROUP)

    assert result == start


def test_add_on_a_filter_that_describes_no_element_is_no_target() -> None:
    with pytest.raises(NoTarget) as caught:
        apply(user(), {"op": "add", "path": 'emails[type ne "work"].value', "value": "a@b.c"})

    assert caught.value.scim_type == "noTarget"


def test_remove_of_a_whole_attribute_and_of_a_sub_attribute() -> None:
    result = apply(
        user(title="Tour Guide"),
        {"op": "remove", "path": "title"},
        {"op": "remove", "path": "name.familyName"},
    )

    assert "title" not in result
    assert result["name"] == {"givenName": "Barbara"}


def test_removing_the_last_sub_attribute_drops_the_emptied_complex_value() -> None:
    result = apply(user(name={"givenName": "Barbara"}), {"op": "remove", "path": "name.givenName"})

    assert "name" not in result


def test_remove_of_a_sub_attribute_of_a_multi_valued_attribute_applies_to_every_value() -> None:
    start = user(
        emails=[{"value": "a@example.com", "type": "work"}, {"value": "b@x.org", "type": "home"}]
    )

    result = apply(start, {"op": "remove", "path": "emails.type"})

    assert result["emails"] == [{"value": "a@example.com"}, {"value": "b@x.org"}]


def test_replace_with_a_null_or_empty_value_clears_the_target() -> None:
    result = apply(
        user(title="Tour Guide", nickName="Babs", emails=[{"value": "a@example.com"}]),
        {"op": "Replace", "path": "title", "value": None},
        {"op": "Replace", "path": "nickName", "value": ""},
        {"op": "replace", "path": "emails", "value": []},
    )

    assert not {"title", "nickName", "emails"} & result.keys()


def test_add_with_a_null_value_changes_nothing() -> None:
    start = user(title="Tour Guide")

    assert apply(start, {"op": "add", "path": "title", "value": None}) == start


def test_null_inside_a_complex_replace_value_leaves_that_sub_attribute_alone() -> None:
    result = apply(
        user(), {"op": "replace", "path": "name", "value": {"givenName": None, "familyName": "J"}}
    )

    assert result["name"] == {"givenName": "Barbara", "familyName": "J"}


def test_add_on_a_bare_extension_urn_path_sets_its_attributes() -> None:
    result = apply(
        user(),
        {
            "op": "add",
            "path": ENTERPRISE_URN,
            "value": {
                "department": "Tour Operations",
                "manager": {"value": MANAGER, "displayName": "X"},
            },
        },
    )

    assert result[ENTERPRISE_URN] == {
        "department": "Tour Operations",
        "manager": {"value": MANAGER},
    }


def test_a_pathless_value_may_carry_an_extension_object_under_its_urn() -> None:
    result = apply(user(), {"op": "add", "value": {ENTERPRISE_URN.lower(): {"costCenter": 4130}}})

    assert result[ENTERPRISE_URN] == {"costCenter": "4130"}


def test_a_pathless_value_ignores_read_only_and_unknown_keys() -> None:
    start = user()

    result = apply(
        start,
        {
            "op": "replace",
            "value": {
                "id": "other",
                "meta": {"created": "2000-01-01T00:00:00Z"},
                "schemas": ["urn:x"],
                "groups": [{"value": "g"}],
                "shoeSize": 9,
                "title": "Guide",
            },
        },
    )

    assert result == {**start, "title": "Guide"}


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["id", "meta.created", "meta", "groups", "schemas"])
def test_modifying_a_read_only_attribute_by_path_is_a_mutability_error(path: str) -> None:
    with pytest.raises(Mutability) as caught:
        apply(user(), {"op": "replace", "path": path, "value": "x"})

    assert caught.value.scim_type == "mutability"


def test_changing_an_immutable_member_value_in_place_is_a_mutability_error() -> None:
    with pytest.raises(Mutability, match=r"members\.value"):
        apply(
            group(BABS),
            {"op": "replace", "path": f'members[value eq "{BABS}"].value', "value": JAMES},
            rtype=GROUP,
        )


def test_adding_and_removing_member_elements_is_allowed_despite_the_immutable_value() -> None:
    result = apply(
        group(BABS),
        {"op": "add", "path": "members", "value": [{"value": JAMES}]},
        {"op": "remove", "path": f'members[value eq "{BABS}"]'},
        rtype=GROUP,
    )

    assert member_ids(result) == [JAMES]


@pytest.mark.parametrize(
    "path",
    [
        "shoeSize",
        "name.nickname",
        'emails[colour eq "red"].value',
        "urn:example:custom:2.0:User:badge",
        'title[value eq "x"]',
    ],
)
def test_an_unknown_attribute_in_a_path_is_invalid_path(path: str) -> None:
    with pytest.raises(InvalidPath) as caught:
        apply(user(), {"op": "replace", "path": path, "value": "x"})

    assert caught.value.scim_type == "invalidPath"


def test_ordering_a_boolean_in_a_value_filter_is_an_invalid_filter() -> None:
    with pytest.raises(InvalidFilter):
        apply(user(), {"op": "remove", "path": "emails[primary gt true]"})


def test_a_wrongly_typed_value_is_invalid_value_naming_the_attribute() -> None:
    with pytest.raises(InvalidValue) as caught:
        apply(user(), {"op": "Replace", "path": "active", "value": "Maybe"})

    assert caught.value.scim_type == "invalidValue"
    assert "active" in caught.value.detail
    assert "Maybe" not in caught.value.detail


def test_a_whole_element_value_for_a_filtered_path_must_be_a_single_value() -> None:
    with pytest.raises(InvalidValue):
        apply(
            user(emails=[{"value": "a@example.com", "type": "work"}]),
            {
                "op": "replace",
                "path": 'emails[type eq "work"]',
                "value": [{"value": "x"}, {"value": "y"}],
            },
        )


def test_all_errors_are_400_bad_requests() -> None:
    for op in (
        {"op": "replace", "path": "id", "value": "x"},
        {"op": "add", "path": "nope", "value": 1},
    ):
        with pytest.raises(BadRequest) as caught:
            apply(user(), op)
        assert caught.value.status == 400


# -- atomicity ------------------------------------------------------------------------


def test_a_failing_second_operation_leaves_the_input_unchanged() -> None:
    start = user(emails=[{"value": "a@example.com", "type": "work"}])
    snapshot = copy.deepcopy(start)

    with pytest.raises(Mutability):
        apply(
            start,
            {"op": "replace", "path": "title", "value": "Guide"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@example.com"},
            {"op": "replace", "path": "id", "value": "stolen"},
        )

    assert start == snapshot


def test_a_successful_patch_returns_a_new_resource_and_leaves_the_input_unchanged() -> None:
    start = group(BABS)
    snapshot = copy.deepcopy(start)

    result = patched(start, "okta-group-members.json", GROUP)

    assert start == snapshot
    assert result is not start
    assert result["members"] is not start["members"]


def test_replacing_a_filtered_member_keeps_its_immutable_values() -> None:
    start = group()
    start["members"] = [{"value": BABS, "$ref": f"../Users/{BABS}", "type": "User"}]

    result = apply(
        start,
        {"op": "replace", "path": f'members[value eq "{BABS}"]', "value": {"type": "User"}},
        rtype=GROUP,
    )

    assert result["members"] == [{"value": BABS, "$ref": f"../Users/{BABS}", "type": "User"}]


def test_a_core_urn_qualified_path_names_the_core_attribute() -> None:
    urn = "urn:ietf:params:scim:schemas:core:2.0:User"

    result = apply(
        user(),
        {"op": "replace", "path": f"{urn}:userName", "value": "babs"},
        {"op": "replace", "path": urn, "value": {"title": "Guide"}},
    )

    assert (result["userName"], result["title"]) == ("babs", "Guide")
