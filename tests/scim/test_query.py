"""List parameters from query strings and from POST .search bodies (RFC 7644 3.4.2, 3.4.3)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidFilter, InvalidSyntax, InvalidValue
from gateway.scim.query import ListParams, parse_list_params, parse_search_request
from gateway.scim.schema import SEARCH_URN

LIMITS = {"default_count": 100, "max_count": 1000}


def from_query(**query: str) -> ListParams:
    return parse_list_params(query, **LIMITS)


def from_body(**body: Any) -> ListParams:
    return parse_search_request({"schemas": [SEARCH_URN], **body}, **LIMITS)


# -- query strings --------------------------------------------------------------------


def test_no_parameters_give_the_defaults() -> None:
    assert from_query() == ListParams(
        filter=None,
        start_index=1,
        count=100,
        sort_by=None,
        descending=False,
        attributes=(),
        excluded_attributes=(),
    )


def test_okta_import_paging_is_read_as_integers() -> None:
    params = parse_list_params(
        {"filter": 'userName eq "x"', "startIndex": "101", "count": "100"}, **LIMITS
    )
    assert (params.filter, params.start_index, params.count) == ('userName eq "x"', 101, 100)


def test_parameter_names_match_without_regard_to_case() -> None:
    params = parse_list_params(
        {
            "FILTER": "title pr",
            "StartIndex": "3",
            "COUNT": "5",
            "sortby": "userName",
            "SortOrder": "DESCENDING",
            "ATTRIBUTES": "userName",
        },
        **LIMITS,
    )
    assert params == ListParams("title pr", 3, 5, "userName", True, ("userName",), ())


def test_unknown_and_empty_parameter_names_are_ignored() -> None:
    params = parse_list_params(
        {"aadOptscim062020": "", "": "", "foo": "bar", "count": "7"}, **LIMITS
    )
    assert params == from_query(count="7")


def test_the_first_of_two_spellings_of_a_parameter_wins() -> None:
    assert parse_list_params({"count": "5", "Count": "9"}, **LIMITS).count == 5


@pytest.mark.parametrize(("given", "start"), [("0", 1), ("-5", 1), ("1", 1), ("42", 42)])
def test_start_index_below_one_is_read_as_one(given: str, start: int) -> None:
    assert from_query(startIndex=given).start_index == start


@pytest.mark.parametrize(("given", "count"), [("-1", 0), ("0", 0), ("10", 10), ("5000", 1000)])
def test_count_is_clamped_between_zero_and_the_maximum(given: str, count: int) -> None:
    assert from_query(count=given).count == count


def test_a_default_count_above_the_maximum_is_clamped() -> None:
    assert parse_list_params({}, default_count=500, max_count=50).count == 50


@pytest.mark.parametrize(("given", "value"), [("+5", 5), (" 7 ", 7), ("007", 7), ("-0", 0)])
def test_integers_may_carry_a_sign_spaces_and_leading_zeros(given: str, value: int) -> None:
    assert from_query(count=given).count == value


def test_enormous_integers_are_clamped_not_rejected() -> None:
    params = from_query(startIndex="9" * 5000, count="9" * 5000)
    assert params.count == 1000
    assert params.start_index == 10**18


@pytest.mark.parametrize("given", ["ten", "1.5", "0x10", "1e3", "\u0661\u0662", "5 5"])
@pytest.mark.parametrize("name", ["startIndex", "count"])
def test_a_non_integer_is_an_invalid_value_naming_the_parameter(name: str, given: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        from_query(**{name: given})
    assert caught.value.detail == f"{name} must be an integer"
    assert caught.value.scim_type == "invalidValue"


def test_empty_values_count_as_missing() -> None:
    params = from_query(filter=" ", startIndex="", count="", sortBy="", sortOrder="", attributes="")
    assert params == from_query()


@pytest.mark.parametrize(("given", "descending"), [("ascending", False), ("Descending", True)])
def test_sort_order_is_read_in_any_case(given: str, descending: bool) -> None:
    assert from_query(sortOrder=given).descending is descending


def test_an_unknown_sort_order_is_an_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="sortOrder"):
        from_query(sortOrder="up")


def test_attribute_lists_are_split_trimmed_and_emptied_of_blanks() -> None:
    params = from_query(attributes=" userName, name.givenName,, emails ,")
    assert params.attributes == ("userName", "name.givenName", "emails")


def test_excluded_attributes_are_read_like_attributes() -> None:
    params = from_query(excludedAttributes="members")  # Entra's group lookup
    assert params.excluded_attributes == ("members",)
    assert params.attributes == ()


def test_attributes_win_over_excluded_attributes() -> None:
    params = from_query(attributes="id", excludedAttributes="members")
    assert params.attributes == ("id",)
    assert params.excluded_attributes == ()


def test_the_filter_is_kept_as_text_without_its_outer_spaces() -> None:
    assert (
        from_query(filter='  id eq "u" and manager eq "m" ').filter
        == 'id eq "u" and manager eq "m"'
    )


# -- search bodies --------------------------------------------------------------------


def test_a_full_search_request_is_read() -> None:
    params = from_body(
        filter='userName sw "b"',
        startIndex=2,
        count=10,
        sortBy="name.familyName",
        sortOrder="descending",
        attributes=["userName", "displayName"],
        excludedAttributes=[],
    )
    assert params == ListParams(
        'userName sw "b"', 2, 10, "name.familyName", True, ("userName", "displayName"), ()
    )


def test_a_search_request_without_parameters_gives_the_defaults() -> None:
    assert from_body() == from_query()


def test_search_request_keys_match_without_regard_to_case() -> None:
    params = parse_search_request(
        {"SCHEMAS": [SEARCH_URN.upper()], "StartIndex": 4, "COUNT": 3, "sortorder": "ASCENDING"},
        **LIMITS,
    )
    assert (params.start_index, params.count, params.descending) == (4, 3, False)


def test_a_single_schema_string_is_accepted() -> None:
    params = parse_search_request({"schemas": SEARCH_URN, "count": 1}, **LIMITS)
    assert params.count == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"schemas": []},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]},
        {"schemas": [None, 5]},
        {"schemas": {"urn": SEARCH_URN}},
    ],
)
def test_a_search_request_must_name_the_search_request_schema(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidSyntax) as caught:
        parse_search_request(body, **LIMITS)
    assert SEARCH_URN in caught.value.detail
    assert caught.value.scim_type == "invalidSyntax"


def test_a_search_request_that_is_not_an_object_is_invalid_syntax() -> None:
    with pytest.raises(InvalidSyntax):
        parse_search_request([SEARCH_URN], **LIMITS)  # type: ignore[arg-type]


def test_attributes_may_be_a_comma_separated_string_or_a_list_of_them() -> None:
    assert from_body(attributes="id, userName").attributes == ("id", "userName")
    assert from_body(attributes=["id,userName", " emails "]).attributes == (
        "id",
        "userName",
        "emails",
    )


@pytest.mark.parametrize("given", [5, ["id", 5], {"id": True}])
def test_attributes_of_the_wrong_type_are_an_invalid_value(given: Any) -> None:
    with pytest.raises(InvalidValue, match="excludedAttributes must be a list"):
        from_body(excludedAttributes=given)


@pytest.mark.parametrize(("given", "count"), [("10", 10), (10.0, 10), (None, 100)])
def test_numbers_may_be_json_numbers_digit_strings_or_null(given: Any, count: int) -> None:
    assert from_body(count=given).count == count


@pytest.mark.parametrize("given", [True, 10.5, [10], "ten"])
def test_a_count_that_is_no_integer_is_an_invalid_value(given: Any) -> None:
    with pytest.raises(InvalidValue, match="count must be an integer"):
        from_body(count=given)


def test_a_filter_that_is_no_string_is_an_invalid_filter() -> None:
    with pytest.raises(InvalidFilter, match="filter must be a string"):
        from_body(filter={"userName": "x"})


def test_a_sort_by_that_is_no_string_is_an_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="sortBy must be a string"):
        from_body(sortBy=["userName"])
