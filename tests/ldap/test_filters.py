"""SCIM filters become LDAP filters with every value escaped per RFC 4515 (no server)."""

from __future__ import annotations

import pytest
from scim2_models.path import ScimFilter

from adapters.ldap.filters import LdapFilter, escape_value
from gateway.sdk import InvalidFilter

ATTRIBUTES = {"username": "uid", "name.givenname": "givenName", "emails.value": "mail"}


def render(text: str) -> str:
    return LdapFilter(ATTRIBUTES.get).render(ScimFilter(text).ast)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("*", "\\2a"),
        ("a(b)c", "a\\28b\\29c"),
        ("back\\slash", "back\\5cslash"),
        ("nul\0", "nul\\00"),
        ("*)(uid=*", "\\2a\\29\\28uid=\\2a"),
        ("Ünïcödé", "Ünïcödé"),
    ],
)
def test_values_are_escaped_per_rfc_4515(value: str, escaped: str) -> None:
    assert escape_value(value) == escaped


@pytest.mark.parametrize(
    ("scim", "ldap"),
    [
        ('userName eq "bjensen"', "(uid=bjensen)"),
        ('userName ne "bjensen"', "(!(uid=bjensen))"),
        ('userName co "jen"', "(uid=*jen*)"),
        ('userName sw "bj"', "(uid=bj*)"),
        ('userName ew "sen"', "(uid=*sen)"),
        ('userName sw ""', "(uid=*)"),
        ("userName pr", "(uid=*)"),
        ('userName eq "a*)(uid=*"', "(uid=a\\2a\\29\\28uid=\\2a)"),
        (
            'userName eq "a" and (name.givenName sw "B" or not (emails.value pr))',
            "(&(uid=a)(|(givenName=B*)(!(mail=*))))",
        ),
        ('emails[value ew "@example.com"]', "(mail=*@example.com)"),
    ],
)
def test_scim_filters_become_ldap_filters(scim: str, ldap: str) -> None:
    assert render(scim) == ldap


def test_an_attribute_without_an_ldap_attribute_is_an_invalid_filter() -> None:
    with pytest.raises(InvalidFilter):
        render('nickName eq "x"')
