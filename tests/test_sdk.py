"""The filter helpers adapter authors import from gateway.sdk."""

from __future__ import annotations

import gateway.sdk
from gateway.scim.filter import parse_filter
from gateway.sdk import eq_filter, eq_value, filter_leaves, record_matches, split_conjuncts

BJENSEN = {"id": "7", "userName": "bjensen", "name": {"familyName": "Jensen"}, "active": True}


def test_the_helpers_are_part_of_the_public_surface() -> None:
    helpers = {"eq_filter", "eq_value", "filter_leaves", "record_matches", "split_conjuncts"}
    assert helpers <= set(gateway.sdk.__all__)


def test_eq_value_finds_an_eq_term_among_and_terms_in_any_case() -> None:
    node = parse_filter('name.familyName sw "J" and USERNAME eq "bjensen"')
    assert eq_value(node, "userName") == "bjensen"
    assert eq_value(node, "name.familyName") is None  # sw, not eq
    assert eq_value(parse_filter('userName eq "a" or userName eq "b"'), "userName") is None
    assert eq_value(None, "userName") is None


def test_split_conjuncts_and_filter_leaves_say_what_a_filter_tests() -> None:
    node = parse_filter('userName eq "a" and (active eq true or name.familyName pr)')
    terms = split_conjuncts(node)
    assert len(terms) == 2
    assert filter_leaves(terms[1]) == [("active", "eq"), ("name.familyname", "pr")]


def test_eq_filter_quotes_any_value_safely() -> None:
    hostile = 'x" or userName pr or userName eq "y'
    node = eq_filter("userName", hostile)
    assert eq_value(node, "userName") == hostile
    assert not record_matches(node, BJENSEN, "User")


def test_record_matches_checks_the_whole_filter() -> None:
    assert record_matches(parse_filter('userName eq "BJENSEN" and active eq true'), BJENSEN, "User")
    assert not record_matches(parse_filter('name.familyName eq "Smith"'), BJENSEN, "User")
    assert record_matches(None, BJENSEN, "User")
