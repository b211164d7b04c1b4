"""SCIM filters as SQL: the clause each operator becomes, with every value a parameter.

No database here: the builder is given the payroll columns as the adapter reads
them from information_schema.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.sql.filters import Params, SqlFilter, escape_like
from adapters.sql.values import Column
from gateway.errors import InvalidFilter, InvalidValue
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types

USER = build_resource_types()["User"]
COLUMNS = {
    "id": Column("emp_no", '"emp_no"', "int4"),
    "username": Column("logon_name", '"logon_name"', "varchar"),
    "name.familyname": Column("last_nm", '"last_nm"', "varchar"),
    "emails.value": Column("email_addr", '"email_addr"', "varchar"),
    "emails.type": Column("email_typ", '"email_typ"', "varchar"),
    "externalid": Column("ext_ref", '"ext_ref"', "varchar"),
    "meta.created": Column("crt_ts", '"crt_ts"', "timestamptz"),
}
BUILDER = SqlFilter(USER, COLUMNS.get)


def where(text: str) -> tuple[str, list[Any]]:
    params = Params()
    sql = BUILDER.where(bind_filter(parse_filter(text), USER), params)
    return sql, params.values


def test_user_name_eq_compares_lower_on_both_sides_with_the_value_bound() -> None:
    assert where('userName eq "BJensen"') == ('lower("logon_name") = lower($1)', ["BJensen"])


def test_a_case_exact_attribute_compares_as_is() -> None:
    assert where('externalId eq "A1"') == ('"ext_ref" = $1', ["A1"])


def test_ne_also_holds_where_the_column_is_empty() -> None:
    sql, values = where('userName ne "x"')
    assert sql == (
        '(("logon_name" IS NULL OR "logon_name" = \'\') OR lower("logon_name") <> lower($1))'
    )
    assert values == ["x"]


@pytest.mark.parametrize(
    ("op", "pattern"),
    [("co", "%a\\%b\\_c\\\\%"), ("sw", "a\\%b\\_c\\\\%"), ("ew", "%a\\%b\\_c\\\\")],
)
def test_co_sw_ew_escape_like_wildcards_in_the_bound_pattern(op: str, pattern: str) -> None:
    sql, values = where(f'userName {op} "a%b_c\\\\"')
    assert sql == "lower(\"logon_name\") LIKE lower($1) ESCAPE '\\'"
    assert values == [pattern]


def test_escape_like_leaves_other_characters_alone() -> None:
    assert escape_like("o'neil;--") == "o'neil;--"
    assert escape_like("50%_\\") == "50\\%\\_\\\\"


def test_pr_means_not_null_and_not_empty_for_text() -> None:
    assert where("userName pr") == ('("logon_name" IS NOT NULL AND "logon_name" <> \'\')', [])


def test_pr_on_a_timestamp_is_not_null() -> None:
    assert where("meta.created pr") == ('"crt_ts" IS NOT NULL', [])


def test_not_turns_unknown_into_true_so_absent_values_match() -> None:
    sql, _ = where('not (userName eq "x")')
    assert sql == '(lower("logon_name") = lower($1)) IS NOT TRUE'


def test_and_or_nest_with_parentheses_and_number_parameters_in_order() -> None:
    sql, values = where('(userName sw "a" or userName sw "b") and name.familyName eq "C"')
    assert sql == (
        "((lower(\"logon_name\") LIKE lower($1) ESCAPE '\\' OR "
        'lower("logon_name") LIKE lower($2) ESCAPE \'\\\') AND lower("last_nm") = lower($3))'
    )
    assert values == ["a%", "b%", "C"]


def test_a_date_comparison_binds_a_datetime() -> None:
    sql, values = where('meta.created gt "2024-05-01T12:00:00Z"')
    assert sql == '"crt_ts" > $1'
    assert values[0].isoformat() == "2024-05-01T12:00:00+00:00"


def test_an_id_that_is_no_integer_matches_nothing_without_a_parameter() -> None:
    assert where('id eq "abc"') == ("FALSE", [])
    assert where('id ne "abc"') == ('"emp_no" IS NULL', [])
    assert where('id eq "42"') == ('"emp_no" = $1', [42])


def test_eq_null_is_absent_and_ne_null_present() -> None:
    assert where("userName eq null")[0] == '("logon_name" IS NULL OR "logon_name" = \'\')'
    assert where("userName ne null")[0] == '("logon_name" IS NOT NULL AND "logon_name" <> \'\')'


def test_a_value_path_filters_the_sub_attribute_columns() -> None:
    sql, values = where('emails[type eq "work" and value co "@x"]')
    assert sql == (
        '(lower("email_typ") = lower($1) AND lower("email_addr") LIKE lower($2) ESCAPE \'\\\')'
    )
    assert values == ["work", "%@x%"]


def test_co_on_an_integer_column_compares_its_text() -> None:
    assert where('id co "12"') == ("(\"emp_no\")::text LIKE $1 ESCAPE '\\'", ["%12%"])


def test_an_attribute_without_a_column_is_refused() -> None:
    with pytest.raises(InvalidFilter):
        where('title eq "x"')


def test_order_by_the_sort_column_then_the_id_both_in_the_asked_direction() -> None:
    id_column = COLUMNS["id"]
    assert BUILDER.order_by("userName", False, id_column) == 'lower("logon_name"), "emp_no"'
    assert BUILDER.order_by("userName", True, id_column) == (
        'lower("logon_name") DESC, "emp_no" DESC'
    )
    assert BUILDER.order_by(None, False, id_column) == '"emp_no"'


def test_sorting_by_an_attribute_without_a_column_is_an_invalid_value() -> None:
    with pytest.raises(InvalidValue):
        BUILDER.order_by("title", False, COLUMNS["id"])
