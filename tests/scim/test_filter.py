"""Filters (RFC 7644 3.4.2.2) and sorting (3.4.2.3) over plain resource dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from gateway.errors import InvalidFilter, InvalidValue
from gateway.scim.filter import (
    bind_filter,
    compile_filter,
    filter_leaves,
    implied_terms,
    matches,
    parse_filter,
    sort_key_path,
    sort_resources,
    split_conjuncts,
    uses_logic,
)
from gateway.scim.schema import (
    ENTERPRISE_URN,
    USER_URN,
    Attribute,
    ResourceType,
    Schema,
    build_resource_types,
)

TYPES = build_resource_types()
USER = TYPES["User"]
GROUP = TYPES["Group"]

# RFC 7643 section 8.2, "Full User Representation" (certificate shortened).
BJENSEN: dict[str, Any] = {
    "schemas": [USER_URN],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "701984",
    "userName": "bjensen@example.com",
    "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III",
    },
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "addresses": [
        {
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
            "primary": True,
        },
        {
            "type": "home",
            "streetAddress": "456 Hollywood Blvd",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA",
        },
    ],
    "phoneNumbers": [
        {"value": "555-555-5555", "type": "work"},
        {"value": "555-555-4444", "type": "mobile"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "photos": [
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"},
        {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"},
    ],
    "userType": "Employee",
    "title": "Tour Guide",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": True,
    "password": "t1meMa$heen",
    "groups": [
        {
            "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
            "display": "Tour Guides",
        },
        {
            "value": "fc348aa8-3835-40eb-a20b-c726e15c55b5",
            "$ref": "https://example.com/v2/Groups/fc348aa8-3835-40eb-a20b-c726e15c55b5",
            "display": "Employees",
        },
        {
            "value": "71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
            "$ref": "https://example.com/v2/Groups/71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
            "display": "US Employees",
        },
    ],
    "x509Certificates": [
        {"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}
    ],
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"a330bc54f0671c9"',
        "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
    },
}

# RFC 7643 section 8.3: the same user with the enterprise extension.
BJENSEN_ENTERPRISE: dict[str, Any] = {
    **copy.deepcopy(BJENSEN),
    "schemas": [USER_URN, ENTERPRISE_URN],
    ENTERPRISE_URN: {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {
            "value": "26118915-6090-4610-87e4-49d8ca9f808d",
            "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
            "displayName": "John Smith",
        },
    },
}

# A second user that the RFC examples mostly classify the other way round.
JSMITH: dict[str, Any] = {
    "schemas": [USER_URN],
    "id": "b4b0ab4e-1111-4c1e-a0a0-000000000001",
    "userName": "Jsmith",
    "name": {"familyName": "O'Malley", "givenName": "John"},
    "userType": "Intern",
    "emails": [{"value": "js@jsmith.net", "type": "home"}],
    "ims": [{"value": "js@foo.com", "type": "xmpp"}],
    "active": False,
    "meta": {"resourceType": "User", "lastModified": "2012-01-01T00:00:00Z"},
}

GROUP_TOUR_GUIDES: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
    "displayName": "Tour Guides",
    "members": [
        {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
        {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"},
    ],
}


def evaluate(text: str, resource: dict[str, Any], rtype: ResourceType = USER) -> bool:
    return compile_filter(bind_filter(parse_filter(text), rtype), rtype)(resource)


def bound(text: str, rtype: ResourceType = USER) -> Any:
    return bind_filter(parse_filter(text), rtype)


# -- parsing --------------------------------------------------------------------------


def test_a_quoted_comparison_parses_into_a_comparison_node() -> None:
    node = parse_filter('userName eq "bjensen"')
    assert node == Comparison(AttrPath("userName"), CompareOperator.eq, "bjensen")


def test_operators_and_keywords_match_in_any_case() -> None:
    node = parse_filter('username Eq "x" AND NOT (title PR) Or nickName CO "b"')
    assert str(node) == 'username eq "x" and not (title pr) or nickName co "b"'


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("userName eq bjensen", "bjensen"),
        ("id eq 2819c223-7f76", "2819c223-7f76"),
        ("emails co @acme.com", "@acme.com"),
        ("employeeNumber eq 007", "007"),
        ("userName eq truex", "truex"),
        ("(userName eq bob)", "bob"),
    ],
)
def test_unquoted_token_is_read_as_a_string(text: str, value: str) -> None:
    node = parse_filter(text)
    assert isinstance(node, Comparison)
    assert node.value == value


def test_unquoted_token_inside_a_value_filter_is_read_as_a_string() -> None:
    node = parse_filter("members[value eq abc-123]")
    assert node == ValuePath(
        AttrPath("members"), Comparison(AttrPath("value"), CompareOperator.eq, "abc-123")
    )


def test_unquoted_literals_keep_their_json_type_when_other_tokens_are_quoted() -> None:
    node = parse_filter("userName eq bob and active eq True and x eq null and y gt -1.5e2")
    assert isinstance(node, LogicalExpr)
    assert [t.value for t in node.terms if isinstance(t, Comparison)] == ["bob", True, None, -150.0]


def test_an_operator_word_in_value_position_is_quoted_as_a_value() -> None:
    node = parse_filter("title eq and")
    assert node == Comparison(AttrPath("title"), CompareOperator.eq, "and")


def test_a_valid_filter_is_never_rewritten() -> None:
    node = parse_filter('title eq "a eq b" or title eq ""')
    assert isinstance(node, LogicalExpr)
    assert [t.value for t in node.terms if isinstance(t, Comparison)] == ["a eq b", ""]


def test_syntax_error_reports_the_column() -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter('userName eq "x" garbage')
    assert caught.value.detail == "invalid filter syntax at column 17"
    assert caught.value.scim_type == "invalidFilter"


def test_a_failed_retry_reports_the_error_of_the_original_text() -> None:
    with pytest.raises(InvalidFilter) as caught:
        parse_filter("title eq Tour Guide")
    assert caught.value.detail == "invalid filter syntax at column 10"


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_filter_is_rejected(text: str) -> None:
    with pytest.raises(InvalidFilter, match="empty"):
        parse_filter(text)


def test_a_filter_longer_than_the_limit_is_rejected() -> None:
    with pytest.raises(InvalidFilter, match="longer than 4096"):
        parse_filter('userName eq "' + "a" * 5000 + '"')
    with pytest.raises(InvalidFilter, match="longer than 10"):
        parse_filter("title pr and nickName pr", max_length=10)


def test_a_deeply_nested_filter_is_rejected() -> None:
    with pytest.raises(InvalidFilter, match="nests more than"):
        parse_filter("not (" * 100 + "title pr" + ")" * 100)


def test_redundant_parentheses_do_not_count_as_nesting() -> None:
    assert parse_filter("(" * 1500 + "title pr" + ")" * 1500) == Present(AttrPath("title"))


@pytest.mark.parametrize(
    "text",
    [
        "userName eq",
        'userName eq "unterminated',
        "((title pr)",
        "title pr)",
        "[[[[",
        "eq eq eq",
        'userName eq "\x00"',
        "userName eq 1e999",
        'emails[type eq "work"][value pr]',
        'emails[type eq "work"].value',
        'emails.value[type eq "work"]',
        'emails[ims[type eq "aim"]]',
        "and or not",
        'userName eq "x" ' * 200,
        "\u202euserName eq x",
        "title pr and",
    ],
)
def test_hostile_input_raises_invalid_filter_only(text: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(text, max_length=10_000)


# -- binding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('USERNAME eq "x"', AttrPath("userName")),
        ('name.FAMILYNAME eq "x"', AttrPath("name", "familyName")),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"', AttrPath("userName")),
        ('urn:ietf:params:scim:schemas:core:2.0:user:USERNAME eq "x"', AttrPath("userName")),
        ('META.lastmodified gt "2011-01-01T00:00:00Z"', AttrPath("meta", "lastModified")),
        ('EXTERNALID eq "x"', AttrPath("externalId")),
        (
            'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"',
            AttrPath("employeeNumber", None, ENTERPRISE_URN),
        ),
        (
            'URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.DISPLAYNAME eq "x"',
            AttrPath("manager", "displayName", ENTERPRISE_URN),
        ),
        ('employeenumber eq "1"', AttrPath("employeeNumber", None, ENTERPRISE_URN)),
    ],
)
def test_binding_gives_canonical_attribute_paths(text: str, path: AttrPath) -> None:
    node = bound(text)
    assert isinstance(node, Comparison)
    assert node.attr_path == path


@pytest.mark.parametrize(
    ("text", "path", "rtype"),
    [
        ('manager eq "m"', AttrPath("manager", "value", ENTERPRISE_URN), USER),
        ('emails eq "x"', AttrPath("emails", "value"), USER),
        ('members eq "id"', AttrPath("members", "value"), GROUP),
    ],
)
def test_comparing_a_complex_attribute_compares_its_value(
    text: str, path: AttrPath, rtype: ResourceType
) -> None:
    node = bound(text, rtype)
    assert isinstance(node, Comparison)
    assert node.attr_path == path


def test_value_filter_paths_stay_relative_sub_attributes() -> None:
    node = bound('EMAILS[TYPE eq "work"].VALUE eq "x"')
    assert node == ValuePath(
        AttrPath("emails"),
        LogicalExpr(
            LogicalOperator.and_,
            (
                Comparison(AttrPath("type"), CompareOperator.eq, "work"),
                Comparison(AttrPath("value"), CompareOperator.eq, "x"),
            ),
        ),
    )


def test_bound_filter_renders_back_as_a_canonical_filter() -> None:
    node = bound('username eq "a" and not (EMAILS[type eq "work"]) or title PR')
    assert str(node) == 'userName eq "a" and not (emails[type eq "work"]) or title pr'


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('email Co "@acme"', "'email'"),
        ('name.nickname eq "x"', "'name.nickname'"),
        ('emails[kind eq "work"]', "'kind'"),
        ('urn:example:custom:2.0:User:badge eq "x"', "'urn:example:custom:2.0:User:badge'"),
        ('displayName eq "x" and foo pr', "'foo'"),
    ],
)
def test_unknown_attribute_is_named_in_the_error(text: str, named: str) -> None:
    with pytest.raises(InvalidFilter) as caught:
        bound(text)
    assert named in caught.value.detail


def test_a_bare_extension_urn_is_not_an_attribute() -> None:
    with pytest.raises(InvalidFilter, match="is a schema, not an attribute"):
        bound("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr")


def test_group_attributes_are_unknown_on_users() -> None:
    with pytest.raises(InvalidFilter, match="'members'"):
        bound('members eq "x"', USER)


@pytest.mark.parametrize(
    "text",
    [
        "active gt true",
        'emails.primary ge "true"',
        'x509Certificates.value lt "MII"',
        'emails gt "a"',
        'manager lt "m"',
        'name ge "a"',
    ],
)
def test_ordering_a_boolean_binary_or_complex_attribute_is_rejected(text: str) -> None:
    with pytest.raises(InvalidFilter, match=r"cannot order|is complex"):
        bound(text)


@pytest.mark.parametrize("text", ['name eq "Barbara"', 'meta co "x"'])
def test_a_complex_attribute_without_value_cannot_be_compared(text: str) -> None:
    with pytest.raises(InvalidFilter, match="is complex"):
        bound(text)


def test_a_value_filter_needs_a_complex_attribute() -> None:
    with pytest.raises(InvalidFilter, match="not a complex attribute"):
        bound('userName[value eq "x"]')


def test_password_cannot_be_filtered_on() -> None:
    with pytest.raises(InvalidFilter, match="'password' cannot be used"):
        bound('password sw "t"')


def test_boolean_strings_are_bound_as_booleans() -> None:
    assert bound('active eq "False"') == Comparison(AttrPath("active"), CompareOperator.eq, False)
    assert bound('emails[primary eq "TRUE"]') == ValuePath(
        AttrPath("emails"), Comparison(AttrPath("primary"), CompareOperator.eq, True)
    )


def test_a_number_compared_with_a_string_attribute_is_bound_as_its_digits() -> None:
    node = bound("externalId eq 701984")
    assert node == Comparison(AttrPath("externalId"), CompareOperator.eq, "701984")


def test_schemas_can_be_filtered_on() -> None:
    node = bound(f'SCHEMAS eq "{ENTERPRISE_URN}"')
    assert node == Comparison(AttrPath("schemas"), CompareOperator.eq, ENTERPRISE_URN)


# -- pushdown planning ----------------------------------------------------------------


def test_leaves_are_lower_case_canonical_paths_with_their_operator() -> None:
    node = bound(
        'userName eq "x" and name.familyName pr or emails[type eq "work" and value co "@x"]'
        ' or urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1"'
        ' or not (manager eq "m")'
    )
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"
    assert filter_leaves(node) == [
        ("username", "eq"),
        ("name.familyname", "pr"),
        ("emails.type", "eq"),
        ("emails.value", "co"),
        (f"{enterprise}:employeenumber", "eq"),
        (f"{enterprise}:manager.value", "eq"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "x"', False),
        ("title pr", False),
        ('emails[type eq "work"]', False),
        ('emails[type eq "work" and value co "x"]', True),
        ('emails[type eq "work"].value eq "x"', True),
        ('emails[not (type eq "work")]', True),
        ('userName eq "x" and title pr', True),
        ('userName eq "x" or title pr', True),
        ("not (title pr)", True),
    ],
)
def test_uses_logic_tells_whether_and_or_not_are_needed(text: str, expected: bool) -> None:
    assert uses_logic(bound(text)) is expected


def test_split_conjuncts_flattens_nested_ands() -> None:
    node = bound('(userName eq "a" and title pr) and (nickName pr and displayName pr)')
    assert [str(t) for t in split_conjuncts(node)] == [
        'userName eq "a"',
        "title pr",
        "nickName pr",
        "displayName pr",
    ]


@pytest.mark.parametrize("text", ['userName eq "a" or title pr', "not (title pr and nickName pr)"])
def test_split_conjuncts_keeps_anything_else_whole(text: str) -> None:
    node = bound(text)
    assert split_conjuncts(node) == [node]


@pytest.mark.parametrize(
    ("text", "implied"),
    [
        ('emails[type eq "work"].value eq "x"', ['emails.type eq "work"', 'emails.value eq "x"']),
        ('emails[type eq "work" and value pr]', ['emails.type eq "work"', "emails.value pr"]),
        (
            f'{ENTERPRISE_URN}:manager[value eq "m"]',
            [f'{ENTERPRISE_URN}:manager.value eq "m"'],
        ),
        ('emails[type eq "work" or value eq "x"]', []),
        ('emails[not (type eq "work")]', []),
        ('userName eq "x"', []),
    ],
)
def test_implied_terms_are_the_plain_tests_a_value_path_implies(
    text: str, implied: list[str]
) -> None:
    node = bound(text)
    terms = implied_terms(node)
    assert [str(t) for t in terms] == implied
    # Weaker, never stronger: what matches the value path matches each term it implies.
    holder = {
        "userName": "j",
        "emails": [{"type": "home", "value": "y"}, {"type": "work", "value": "x"}],
        ENTERPRISE_URN: {"manager": {"value": "m"}},
    }
    if terms:
        assert matches(node, holder, USER)
        assert all(matches(bind_filter(t, USER), holder, USER) for t in terms)


# -- evaluation: RFC 7644 3.4.2.2 examples --------------------------------------------

RFC_EXAMPLES = [
    # (filter, matches bjensen, matches jsmith)
    ('userName eq "bjensen"', False, False),
    ('name.familyName co "O\'Malley"', False, True),
    ('userName sw "J"', False, True),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', False, True),
    ("title pr", True, False),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False, True),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True, True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False, False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True, False),
    ('title pr and userType eq "Employee"', True, False),
    ('title pr or userType eq "Intern"', True, True),
    ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', False, False),
    (
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        True,
        False,
    ),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
        True,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True, False),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True, False),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        True,
        True,
    ),
]


@pytest.mark.parametrize(("text", "bjensen", "jsmith"), RFC_EXAMPLES)
def test_rfc_7644_example_filters_evaluate_per_the_rfc(
    text: str, bjensen: bool, jsmith: bool
) -> None:
    match = compile_filter(bound(text), USER)
    assert match(BJENSEN) is bjensen
    assert match(JSMITH) is jsmith


def test_schemas_filter_matches_the_enterprise_user() -> None:
    text = 'schemas eq "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER"'
    assert evaluate(text, BJENSEN_ENTERPRISE) is True


def test_schemas_are_derived_from_extension_objects_when_not_listed() -> None:
    resource = {k: v for k, v in BJENSEN_ENTERPRISE.items() if k != "schemas"}
    assert evaluate(f'schemas eq "{ENTERPRISE_URN}"', resource) is True
    assert evaluate(f'schemas eq "{USER_URN}"', resource) is True
    assert evaluate(f'schemas eq "{ENTERPRISE_URN}"', JSMITH | {"schemas": None}) is False


# -- evaluation: IdP filters ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen@example.com"', True),
        ('userName eq "3bd5e2a6-33f0-4a3c-9c0b-6d2c7f1b1e11"', False),  # Entra test connection
        ('externalId eq "701984"', True),
        ('emails[type eq "work"].value eq "bjensen@example.com"', True),
        ('emails[type eq "work"].value eq "babs@jensen.org"', False),
        (
            'id eq "2819c223-7f76-453a-919d-413861904646" and '
            'manager eq "26118915-6090-4610-87e4-49d8ca9f808d"',
            True,
        ),
        ('id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "someone-else"', False),
        ('username Eq "BJensen@Example.com"', True),  # Ping, admin-written
        ('emails Co "@EXAMPLE.com"', True),
        ("userName eq bjensen@example.com", True),  # unquoted
        ("active eq True", True),
    ],
)
def test_identity_provider_filters_match_as_expected(text: str, expected: bool) -> None:
    assert evaluate(text, BJENSEN_ENTERPRISE) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('displayName eq "tour guides"', True),
        ('members eq "2819c223-7f76-453a-919d-413861904646"', True),
        ('members[value eq "902c246b-6245-4190-8e05-00816be7344a"]', True),
        ('members[value eq "902C246B-6245-4190-8E05-00816BE7344A"]', False),
        ('members.display co "mandy"', True),
    ],
)
def test_group_filters_match_members_and_names(text: str, expected: bool) -> None:
    assert evaluate(text, GROUP_TOUR_GUIDES, GROUP) is expected


# -- evaluation: semantics ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "BJENSEN@EXAMPLE.COM"', True),
        ('displayName co "BABS"', True),
        ('displayName sw "babs j"', True),
        ('displayName ew "JENSEN"', True),
        ('id eq "2819C223-7F76-453A-919D-413861904646"', False),
        ('id eq "2819c223-7f76-453a-919d-413861904646"', True),
        ('id sw "2819C"', False),
        ('profileUrl eq "HTTPS://LOGIN.EXAMPLE.COM/BJENSEN"', False),
        ('groups.value eq "E9E30DBA-F08F-4109-8486-D5C6A331660A"', False),
        ('groups.display eq "tour guides"', True),
        ('meta.resourceType eq "user"', False),
    ],
)
def test_case_sensitivity_follows_case_exact(text: str, expected: bool) -> None:
    assert evaluate(text, BJENSEN) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('emails.type eq "home"', True),
        ('emails.value ew "jensen.org"', True),
        ('phoneNumbers.type eq "fax"', False),
        ('emails eq "babs@jensen.org"', True),
        ('emails.type ne "work"', True),
        ('ims.type ne "aim"', False),
        ('addresses[type eq "work" and primary eq true]', True),
        ('addresses[type eq "home" and primary eq true]', False),
        ('addresses.primary eq "True"', True),
        ('photos[type eq "thumbnail" and value ew "/T"]', True),
    ],
)
def test_multi_valued_attributes_match_when_any_value_matches(text: str, expected: bool) -> None:
    assert evaluate(text, BJENSEN) is expected


def test_a_value_filter_requires_one_value_to_match_every_condition() -> None:
    # Across values, "home" and "example.com" both occur, but not in one email.
    assert evaluate('emails.type eq "home" and emails.value co "example.com"', BJENSEN) is True
    assert evaluate('emails[type eq "home" and value co "example.com"]', BJENSEN) is False


def test_a_value_filter_on_a_single_valued_complex_attribute_tests_that_value() -> None:
    assert evaluate('name[givenName eq "barbara" and familyName eq "jensen"]', BJENSEN) is True
    assert evaluate('name[givenName eq "barbara" and familyName eq "smith"]', BJENSEN) is False


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        ("title pr", BJENSEN, True),
        ("title pr", {"title": ""}, False),
        ("title pr", {"title": None}, False),
        ("emails pr", BJENSEN, True),
        ("emails pr", {"emails": []}, False),
        ("emails pr", {"emails": [{"value": None}, {}]}, False),
        ("name pr", {"name": {"givenName": None, "familyName": ""}}, False),
        ("name.middleName pr", BJENSEN, True),
        ("emails.primary pr", BJENSEN, True),
        ("phoneNumbers.primary pr", BJENSEN, False),
        ("active pr", {"active": False}, True),
    ],
)
def test_present_means_a_non_empty_value(
    text: str, resource: dict[str, Any], expected: bool
) -> None:
    assert evaluate(text, resource) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('nickName ne "Babs"', True),
        ('title ne "Tour Guide"', False),
        ('costCenter ne "4130"', True),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq "4130"', False),
        ('emails.display ne "x"', True),
        ('nickName eq "x"', False),
        ("title eq null", False),
        ("nickName eq null", True),
        ("title ne null", True),
        ("nickName ne null", False),
        ("title co null", False),
    ],
)
def test_absent_attributes_satisfy_only_ne_and_eq_null(text: str, expected: bool) -> None:
    resource = {k: v for k, v in BJENSEN.items() if k != "nickName"}
    assert evaluate(text, resource) is expected


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        ("active eq true", BJENSEN, True),
        ('active eq "True"', BJENSEN, True),
        ('active eq "true"', BJENSEN, True),
        ('active eq "False"', BJENSEN, False),
        ('active eq "false"', JSMITH, True),
        ("active ne false", BJENSEN, True),
        ("active eq false", {"active": "False"}, True),  # a sloppy backend's string
        ('active eq "yes"', BJENSEN, False),
        ('active ne "yes"', BJENSEN, False),
        ('active co "t"', BJENSEN, False),
        ("active eq 1", BJENSEN, False),
    ],
)
def test_booleans_accept_true_false_and_their_strings(
    text: str, resource: dict[str, Any], expected: bool
) -> None:
    assert evaluate(text, resource) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('meta.lastModified eq "2011-05-13T06:42:34+02:00"', True),
        ('meta.lastModified eq "2011-05-13T04:42:34.0000000Z"', True),
        ('meta.lastModified gt "2011-05-13T04:42:33.9Z"', True),
        ('meta.lastModified lt "2011-05-13T00:00:00-05:00"', True),
        ('meta.created lt "2011-01-01"', True),
        ("meta.created lt 2011-01-01T00:00:00Z", True),  # unquoted
        ('meta.created gt "yesterday"', False),
        ('meta.created ne "yesterday"', False),
        ('meta.created co "2010"', False),
        ("meta.created gt 2010", False),
    ],
)
def test_date_times_compare_as_instants(text: str, expected: bool) -> None:
    assert evaluate(text, BJENSEN) is expected


def test_an_unparseable_stored_date_time_matches_nothing() -> None:
    resource = {"meta": {"lastModified": "last tuesday"}}
    assert evaluate('meta.lastModified lt "2999-01-01T00:00:00Z"', resource) is False
    assert evaluate('meta.lastModified gt "1970-01-01T00:00:00Z"', resource) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName gt "bjensen"', True),
        ('userName lt "BZ"', True),
        ('userName ge "BJENSEN@EXAMPLE.COM"', True),
        ('id lt "2819C"', False),  # caseExact: "2819c" sorts after "2819C"
        ('id gt "2819C"', True),
        ("externalId ge 701984", True),  # a number against a string reads as its digits
        ("externalId gt 701984", False),
    ],
)
def test_strings_order_lexicographically_per_case_exact(text: str, expected: bool) -> None:
    assert evaluate(text, BJENSEN) is expected


DEVICE = ResourceType(
    name="Device",
    endpoint="/Devices",
    description="Device",
    schema=Schema(
        id="urn:example:params:scim:schemas:core:2.0:Device",
        name="Device",
        description="",
        attributes={
            "size": Attribute("size", "integer"),
            "ratio": Attribute("ratio", "decimal"),
        },
    ),
)


@pytest.mark.parametrize(
    ("text", "resource", "expected"),
    [
        ("size gt 5", {"size": 6}, True),
        ("size gt 5", {"size": 5}, False),
        ("size eq 5.0", {"size": 5}, True),
        ("size ge 5", {"size": 5}, True),
        ("ratio le 0.5", {"ratio": 0.25}, True),
        ("ratio lt 1", {"ratio": 1.5}, False),
        ('size eq "5"', {"size": 5}, False),
        ("size eq 1", {"size": True}, False),
        ("size co 5", {"size": 5}, False),
        ("size eq 5", {"size": "5"}, False),
    ],
)
def test_numbers_compare_numerically(text: str, resource: dict[str, Any], expected: bool) -> None:
    assert evaluate(text, resource, DEVICE) is expected


def test_extension_attributes_are_read_from_their_urn_object() -> None:
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert evaluate(f'{enterprise}:employeeNumber eq "701984"', BJENSEN_ENTERPRISE) is True
    assert evaluate(f'{enterprise}:manager.displayName co "smith"', BJENSEN_ENTERPRISE) is True
    assert (
        evaluate('manager.value eq "26118915-6090-4610-87E4-49D8CA9F808D"', BJENSEN_ENTERPRISE)
        is False
    )
    assert evaluate(f"{enterprise}:employeeNumber pr", BJENSEN) is False


ODD: dict[str, Any] = {
    "userName": 42,
    "name": "Barbara",
    "emails": "bjensen@example.com",
    "phoneNumbers": [None, 5, "x", {"value": None}],
    "active": "maybe",
    "meta": None,
    ENTERPRISE_URN: "oops",
    "groups": {"value": "g1"},
}


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "42"',
        'userName co "4"',
        'name.givenName eq "Barbara"',
        'emails.value co "example"',
        'emails[type eq "work"]',
        'phoneNumbers.value eq "x"',
        "phoneNumbers.value pr",
        "active eq true",
        "active eq false",
        'meta.lastModified gt "2000-01-01T00:00:00Z"',
        'manager eq "m"',
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr",
    ],
)
def test_mismatched_data_types_never_match_and_never_raise(text: str) -> None:
    assert evaluate(text, ODD) is False


def test_a_single_value_where_a_list_is_expected_is_still_read() -> None:
    assert evaluate('groups.value eq "g1"', ODD) is True


def test_compile_also_accepts_an_unbound_tree() -> None:
    match = compile_filter(parse_filter('USERNAME eq "bjensen@example.com" and EMAILS pr'), USER)
    assert match(BJENSEN) is True
    assert match(JSMITH) is False


def test_compile_rejects_an_unknown_attribute_like_bind() -> None:
    with pytest.raises(InvalidFilter, match="'nope'"):
        compile_filter(parse_filter("nope pr"), USER)


def test_matches_is_a_one_shot_compile_and_test() -> None:
    node = bound('name.familyName eq "jensen"')
    assert matches(node, BJENSEN, USER) is True
    assert matches(node, JSMITH, USER) is False


def test_a_wide_or_chain_evaluates_without_recursion() -> None:
    text = " or ".join(f'userName eq "u{i}"' for i in range(600))
    match = compile_filter(bound_long(text), USER)
    assert match({"userName": "u599"}) is True
    assert match({"userName": "u600"}) is False


def bound_long(text: str) -> Any:
    return bind_filter(parse_filter(text, max_length=len(text)), USER)


def test_a_compiled_filter_selects_from_many_resources() -> None:
    people = [{"id": str(i), "userName": f"user{i}", "active": i % 2 == 0} for i in range(1000)]
    match = compile_filter(bound('userName sw "USER99" and active eq "True"'), USER)
    assert [p["id"] for p in people if match(p)] == ["990", "992", "994", "996", "998"]


# -- sorting --------------------------------------------------------------------------


def names(resources: list[dict[str, Any]], key: str = "userName") -> list[Any]:
    return [r.get(key) for r in resources]


def test_sorting_strings_ignores_case_unless_case_exact() -> None:
    people: list[dict[str, Any]] = [
        {"userName": "bob", "id": "b"},
        {"userName": "Alice", "id": "a"},
        {"userName": "carol", "id": "C"},
    ]
    assert names(sort_resources(people, "username", False, USER)) == ["Alice", "bob", "carol"]
    assert names(sort_resources(people, "id", False, USER), "id") == ["C", "a", "b"]


def test_resources_without_a_value_sort_last_ascending_and_first_descending() -> None:
    people: list[dict[str, Any]] = [
        {"id": "1", "title": "b"},
        {"id": "2"},
        {"id": "3", "title": "a"},
        {"id": "4", "title": ""},
        {"id": "5", "title": None},
    ]
    ascending = sort_resources(people, "title", False, USER)
    descending = sort_resources(people, "title", True, USER)
    assert names(ascending, "id") == ["3", "1", "2", "4", "5"]
    assert names(descending, "id") == ["2", "4", "5", "1", "3"]


def test_sorting_is_stable_in_both_directions() -> None:
    people = [{"id": str(i), "userType": "Employee" if i % 2 else "employee"} for i in range(6)]
    assert names(sort_resources(people, "userType", False, USER), "id") == list("012345")
    assert names(sort_resources(people, "userType", True, USER), "id") == list("012345")


def test_sorting_does_not_change_the_given_list() -> None:
    people = [{"userName": "b"}, {"userName": "a"}]
    result = sort_resources(people, "userName", False, USER)
    assert names(people) == ["b", "a"]
    assert names(result) == ["a", "b"]


def test_a_multi_valued_attribute_sorts_by_its_primary_value_else_its_first() -> None:
    people: list[dict[str, Any]] = [
        {"id": "1", "emails": [{"value": "a@x"}, {"value": "z@x", "primary": True}]},
        {"id": "2", "emails": [{"value": "m@x"}, {"value": "b@x"}]},
        {"id": "3", "emails": [{"value": "c@x", "primary": "True"}]},
        {"id": "4", "emails": []},
    ]
    assert names(sort_resources(people, "emails", False, USER), "id") == ["3", "2", "1", "4"]
    assert names(sort_resources(people, "EMAILS.value", True, USER), "id") == ["4", "1", "2", "3"]


def test_date_times_sort_as_instants() -> None:
    people: list[dict[str, Any]] = [
        {"id": "late", "meta": {"lastModified": "2011-05-13T05:00:00Z"}},
        {"id": "early", "meta": {"lastModified": "2011-05-13T06:00:00+02:00"}},
        {"id": "broken", "meta": {"lastModified": "soon"}},
    ]
    ordered = sort_resources(people, "meta.lastModified", False, USER)
    assert names(ordered, "id") == ["early", "late", "broken"]


def test_booleans_and_extension_attributes_sort() -> None:
    people: list[dict[str, Any]] = [
        {"id": "1", "active": True, ENTERPRISE_URN: {"employeeNumber": "30"}},
        {"id": "2", "active": "false", ENTERPRISE_URN: {"employeeNumber": "10"}},
        {"id": "3", "active": False},
    ]
    assert names(sort_resources(people, "active", False, USER), "id") == ["2", "3", "1"]
    by_number = sort_resources(people, "employeeNumber", False, USER)
    assert names(by_number, "id") == ["2", "1", "3"]


def test_values_of_the_wrong_type_sort_as_missing_without_error() -> None:
    people: list[dict[str, Any]] = [
        {"id": "1", "userName": 5},
        {"id": "2", "userName": "a"},
        {"id": "3", "userName": ["b"]},
    ]
    assert names(sort_resources(people, "userName", False, USER), "id") == ["2", "3", "1"]


@pytest.mark.parametrize(
    ("sort_by", "path"),
    [
        ("username", "userName"),
        ("name.familyname", "name.familyName"),
        ("emails", "emails.value"),
        ("META.LASTMODIFIED", "meta.lastModified"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber",
            f"{ENTERPRISE_URN}:employeeNumber",
        ),
        ("manager", f"{ENTERPRISE_URN}:manager.value"),
    ],
)
def test_sort_key_path_is_the_canonical_dotted_path(sort_by: str, path: str) -> None:
    assert sort_key_path(sort_by, USER) == path


def test_a_canonical_sort_key_path_sorts_like_the_original() -> None:
    people = [{"id": "1", "emails": [{"value": "z@x"}]}, {"id": "2", "emails": [{"value": "a@x"}]}]
    path = sort_key_path("emails", USER)
    assert names(sort_resources(people, path, False, USER), "id") == ["2", "1"]


@pytest.mark.parametrize(
    "sort_by",
    ["nope", "name", "password", "", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
)
def test_sorting_by_something_that_is_not_a_sortable_attribute_is_invalid(sort_by: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        sort_resources([{"userName": "a"}], sort_by, False, USER)
    assert caught.value.scim_type == "invalidValue"
    with pytest.raises(InvalidValue):
        sort_key_path(sort_by, USER)


def test_not_node_is_bound_and_evaluated() -> None:
    node = bound('not (userName eq "bjensen@example.com")')
    assert isinstance(node, Not)
    assert compile_filter(node, USER)(BJENSEN) is False
    assert compile_filter(node, USER)(JSMITH) is True
