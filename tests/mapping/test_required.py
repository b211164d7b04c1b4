"""A mapping's ``required:``: what the legacy app cannot do without, in /Schemas and enforced."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import InvalidValue
from gateway.mapping.engine import TemplateMapping
from gateway.scim.resource import check_required
from gateway.scim.schema import ENTERPRISE_URN, build_resource_types

USER = """\
to_legacy:
  login: "{{ userName }}"
  mail: "{{ emails | primary }}"
  family: "{{ name.familyName }}"
  dept: "{{ enterprise.department }}"
from_legacy:
  userName: "{{ record.login }}"
  emails: "{{ record.mail | multi(type='work') }}"
  name.familyName: "{{ record.family }}"
  enterprise.department: "{{ record.dept }}"
"""


def test_a_sub_attribute_requires_its_attribute_too(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(USER + "required: [emails.value, name.familyName]\n")
    assert mapping.required("User") == {"emails", "emails.value", "name", "name.familyname"}
    assert mapping.required("Group") == frozenset()


def test_a_plain_or_urn_qualified_attribute_is_required_alone(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(USER + "required: [emails, enterprise.department]\n")
    assert mapping.required("User") == {"emails", f"{ENTERPRISE_URN.lower()}:department"}


def test_without_required_nothing_more_is_required(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    assert load_user(USER).required("User") == frozenset()


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        ("[emials]", "required: emials: unknown SCIM attribute; did you mean 'emails'?"),
        ("[title]", "required: title: from_legacy does not give it"),
        ("[name.givenName]", "required: name.givenName: from_legacy does not give it"),
        ("[id]", "required: id: set by the gateway, not by clients"),
        ("[groups]", "required: groups: set by the gateway, not by clients"),
        ("emails", "required: must be a list of SCIM attributes"),
    ],
)
def test_a_wrong_required_entry_names_the_file_the_line_and_the_entry(
    load_errors: Callable[..., str], listed: str, message: str
) -> None:
    errors = load_errors(USER + f"required: {listed}\n")
    assert f"user.yaml:11: {message}" in errors


def test_required_paths_are_marked_in_the_schema_and_enforced() -> None:
    types = build_resource_types(
        {"User": {"username", "emails", "name.familyname", f"{ENTERPRISE_URN.lower()}:department"}},
        {"User": {"emails", "emails.value", f"{ENTERPRISE_URN.lower()}:department"}},
    )
    user = types["User"]
    emails = user.schema.attributes["emails"]
    assert emails.required and emails.sub_attributes["value"].required
    assert not emails.sub_attributes["type"].required
    assert not user.schema.attributes["name"].required
    (enterprise, _), *_ = user.extensions
    assert enterprise.attributes["department"].required
    assert types["Group"].schema.attributes["displayname"].required  # RFC 7643's own

    check_required(
        {
            "userName": "x",
            "emails": [{"value": "x@example.com"}],
            ENTERPRISE_URN: {"department": "d"},
        },
        user,
    )
    with pytest.raises(InvalidValue, match="'emails' is required"):
        check_required({"userName": "x", ENTERPRISE_URN: {"department": "d"}}, user)
    with pytest.raises(InvalidValue, match="'department' is required"):
        check_required({"userName": "x", "emails": [{"value": "x@example.com"}]}, user)
