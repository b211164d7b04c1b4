"""Any filter text either parses, binds and evaluates, or is refused as a SCIM 400."""

from __future__ import annotations

import json
from typing import Any

from fuzz.checks import assert_client_error
from fuzz.strategies import filter_text
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.errors import ScimError
from gateway.scim.filter import (
    ScimFilter,
    _parse_simple,
    bind_filter,
    compile_filter,
    filter_depth,
    parse_filter,
)
from gateway.scim.schema import build_resource_types

TYPES = build_resource_types()
SAMPLES: list[dict[str, Any]] = [
    {},
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "1",
        "userName": "bjensen",
        "active": True,
        "name": {"givenName": "Barbara"},
        "emails": [{"value": "b@example.com", "type": "work", "primary": True}, "junk", None],
        "meta": {"created": "2011-08-01T21:32:44.882Z", "lastModified": "garbage"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "m"},
    },
    {"userName": 5, "emails": {"value": []}, "active": "yes", "name": "flat", "meta": []},
    {"displayName": "Staff", "members": [{"value": "1"}, {"value": None}]},
]


@given(filter_text)
@example('userName eq "a" and not (title pr)')
@example('emails[type eq "work" and value co "@"]')
@example("meta.created gt 99999999999999999999999")
@example('name[givenName eq "x"]')
@example('userName eq "unterminated')
@example("not (" * 40 + "userName pr" + ")" * 40)
def test_any_filter_parses_binds_and_evaluates_or_is_a_scim_400(text: str) -> None:
    try:
        node = parse_filter(text)
    except ScimError as exc:
        assert_client_error(exc)
        assert exc.scim_type == "invalidFilter"
        return
    assert filter_depth(node) <= 32
    for rtype in TYPES.values():
        try:
            predicate = compile_filter(bind_filter(node, rtype), rtype)
        except ScimError as exc:
            assert_client_error(exc)
            continue
        for resource in SAMPLES:
            assert predicate(resource) in (True, False)


@given(st.text(max_size=80), st.integers(min_value=1, max_value=40))
def test_the_length_and_depth_limits_hold_for_any_text(text: str, max_depth: int) -> None:
    try:
        node = parse_filter(text, max_length=40, max_depth=max_depth)
    except ScimError as exc:
        assert_client_error(exc)
        return
    assert len(text) <= 40
    assert filter_depth(node) <= max_depth


_NAME = st.text(alphabet="aZ09_-$.", min_size=1, max_size=8)
_OPERATOR = st.sampled_from(
    ["eq", "Eq", "NE", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "not"]
)
_LITERAL = st.one_of(
    st.text(max_size=12).map(lambda t: json.dumps(t, ensure_ascii=False)),
    st.text(max_size=12).map(json.dumps),  # \\u escapes
    st.text(alphabet='a"\\/bnu0é\t', max_size=8).map(lambda t: f'"{t}"'),  # odd escapes
)


@given(_NAME, _OPERATOR, _LITERAL)
@example("userName", "eq", '"bjensen"')
@example("not", "eq", '"x"')
@example("name.givenName", "sw", '"\\u00e9"')
def test_the_fast_path_for_simple_comparisons_reads_what_the_grammar_reads(
    name: str, op: str, literal: str
) -> None:
    text = f"{name} {op} {literal}"
    fast = _parse_simple(text)
    if fast is None:
        return  # not the simple form: the grammar alone reads it
    assert fast == ScimFilter(text).ast
