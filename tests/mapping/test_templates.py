"""Templates: typed results, request values as data, the sandbox, strictness, and the filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from gateway.mapping.engine import MappingError, MappingRenderError, TemplateMapping
from gateway.mapping.sandbox import CompiledTemplate, MappingEnvironment
from gateway.scim.schema import ENTERPRISE_URN

ENV = MappingEnvironment()


def render(source: Any, **variables: Any) -> Any:
    return CompiledTemplate.compile(ENV, source).render(variables)


def user_mapping(to_legacy: str = "", from_legacy: str = "") -> str:
    return (
        "to_legacy:\n"
        '  login: "{{ userName }}"\n'
        f"{to_legacy}"
        "from_legacy:\n"
        '  userName: "{{ record.login }}"\n'
        f"{from_legacy}"
    )


# -- typed results ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("{{ status == 'enabled' }}", {"status": "enabled"}, True),
        ("{{ status == 'enabled' }}", {"status": "suspended"}, False),
        ("{{ true }}", {}, True),
        ("{{ 7 * 6 }}", {}, 42),
        ("{{ 2.5 }}", {}, 2.5),
        ("{{ none }}", {}, None),
        ("{{ [a, b] }}", {"a": 1, "b": "x"}, [1, "x"]),
        ("{{ {'value': a, 'primary': true} }}", {"a": "m@x"}, {"value": "m@x", "primary": True}),
        ("{{ a | map('upper') }}", {"a": ["x", "y"]}, ["X", "Y"]),
        ("{{ a }}", {"a": "0042"}, "0042"),
        ("{{ a | int }}", {"a": "0042"}, 42),
        (True, {}, True),
        (7, {}, 7),
    ],
)
def test_a_single_expression_keeps_its_python_type(
    source: Any, variables: dict[str, Any], expected: Any
) -> None:
    result = render(source, **variables)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("{{ a }} {{ b }}", {"a": "Barbara", "b": "Jensen"}, "Barbara Jensen"),
        ("{{ a }} {{ b }}", {"a": "Barbara", "b": None}, "Barbara"),
        ("{{ a }} {{ b }}", {"a": None, "b": None}, ""),
        ("id-{{ n }}", {"n": 42}, "id-42"),
        ("{{ a }}{{ b }}", {"a": "4", "b": "2"}, "42"),
        ("{% if a %}{{ a }}{% endif %}", {"a": True}, "True"),
        ("enabled", {}, "enabled"),
        ("  {{ a }}\n", {"a": [1]}, [1]),
    ],
)
def test_other_templates_render_text(source: str, variables: dict[str, Any], expected: Any) -> None:
    assert render(source, **variables) == expected


def test_an_if_without_else_gives_none() -> None:
    assert render("{{ a if a }}", a="") is None


def test_tilde_joins_none_as_nothing() -> None:
    assert render("{{ 'x-' ~ a }}", a=None) == "x-"


def test_none_safe_string_filters_give_none_for_none() -> None:
    for name in ("upper", "lower", "title", "trim", "string", "int", "capitalize"):
        assert render(f"{{{{ a | {name} }}}}", a=None) is None, name


def test_default_applies_to_none_not_only_to_undefined() -> None:
    assert render("{{ a | default('n/a') }}", a=None) == "n/a"
    assert render("{{ a | default('n/a') }}", a="") == ""
    assert render("{{ a | default('n/a', true) }}", a="") == "n/a"


# -- request values are data -------------------------------------------------------------

LITERALS = [
    "42",
    "0042",
    "True",
    "None",
    "[1, 2]",
    "{'a': 1}",
    "{{ 7*7 }}",
    "{% raw %}x",
    "{{ ''.__class__.__mro__ }}",
    " padded ",
]


@pytest.mark.parametrize("value", LITERALS)
def test_a_user_name_from_a_request_is_stored_literally(acme: TemplateMapping, value: str) -> None:
    login = acme.to_legacy("User", {"userName": value})["login"]
    assert login == value and type(login) is str


@pytest.mark.parametrize("value", LITERALS)
def test_a_login_from_the_legacy_app_comes_back_literally(
    acme: TemplateMapping, value: str
) -> None:
    user_name = acme.from_legacy("User", {"login": value})["userName"]
    assert user_name == value and type(user_name) is str


def test_request_values_inside_text_templates_stay_literal(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(user_mapping('  full: "{{ userName }} ({{ title }})"\n', "  title: x\n"))
    full = mapping.to_legacy("User", {"userName": "{{ 7*7 }}", "title": "[1]"})["full"]
    assert full == "{{ 7*7 }} ([1])"


# -- the sandbox ---------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ userName.__class__ }}",
    "{{ name.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ emails.append(1) }}",
    "{{ name.update({'givenName': 'x'}) }}",
    "{{ '{0.__class__}'.format(userName) }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ namespace.__init__.__globals__ }}",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_sandbox_escapes_are_refused_at_start_up(
    load_errors: Callable[..., str], escape: str
) -> None:
    message = load_errors(user_mapping(f'  x: "{escape}"\n'))
    assert "user.yaml:3: to_legacy.x: refused by the sandbox" in message


@pytest.mark.parametrize(
    "escape",
    ["{{ record.__class__ }}", "{{ record._data }}", "{{ record.login.__class__.__mro__ }}"],
)
def test_sandbox_escapes_through_the_record_are_refused(
    load_errors: Callable[..., str], escape: str
) -> None:
    message = load_errors(user_mapping("", f'  title: "{escape}"\n'))
    assert "user.yaml:5: from_legacy.title:" in message


@pytest.mark.parametrize(
    "name", ["lipsum", "cycler", "joiner", "config", "request", "os", "__builtins__"]
)
def test_jinja_globals_beyond_the_harmless_ones_are_gone(
    load_errors: Callable[..., str], name: str
) -> None:
    message = load_errors(user_mapping(f'  x: "{{{{ {name} }}}}"\n'))
    assert f"to_legacy.x: '{name}' is undefined" in message


def test_a_huge_range_is_refused(load_errors: Callable[..., str]) -> None:
    message = load_errors(user_mapping('  x: "{{ range(10**9) | list }}"\n'))
    assert "to_legacy.x: OverflowError: Range too big" in message


def test_templates_cannot_include_other_files(load_errors: Callable[..., str]) -> None:
    message = load_errors(user_mapping("  x: \"{% include '/etc/passwd' %}\"\n"))
    assert "user.yaml:3: to_legacy.x: line 1: mapping templates cannot extend, include" in message


# -- strictness -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ usrName }}",
        "{{ usrName | default('x') }}",
        "{{ 'a' if usrName is none else 'b' }}",
        "{{ [usrName] }}",
        "{{ {'a': usrName} }}",
        "{{ usrName | primary }}",
        "x{{ usrName }}",
    ],
)
def test_an_undefined_name_fails_even_where_jinja_would_let_it_pass(
    load_errors: Callable[..., str], template: str
) -> None:
    message = load_errors(user_mapping(f'  x: "{template}"\n'))
    assert "user.yaml:3: to_legacy.x: 'usrName' is undefined; did you mean 'userName'?" in message


def test_absent_attributes_are_none_and_absent_lists_empty(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(
        user_mapping(
            '  given: "{{ name.givenName is none }}"\n'
            '  emails_empty: "{{ emails == [] }}"\n'
            '  no_manager: "{{ not enterprise.manager }}"\n'
            "  dept: \"{{ extensions['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User']"
            '.department is none }}"\n',
            "  name.givenName: x\n  emails: x\n  enterprise.department: x\n"
            "  enterprise.manager.value: x\n",
        )
    )
    assert mapping.to_legacy("User", {"userName": "u"}) == {
        "login": "u",
        "given": True,
        "emails_empty": True,
        "no_manager": True,
        "dept": True,
    }


def test_a_template_failing_on_a_live_record_is_a_500_without_the_value(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(user_mapping("", '  title: "{{ record.hired | isodate }}"\n'))
    with pytest.raises(MappingRenderError) as err:
        mapping.from_legacy("User", {"login": "u", "hired": "secret-not-a-date"})
    assert err.value.status == 500
    assert "from_legacy.title (app/user.yaml:5)" in err.value.detail
    assert "isodate" in err.value.detail
    assert "secret-not-a-date" not in err.value.detail


def test_a_type_without_a_file_is_not_offered(load_user: Callable[[str], TemplateMapping]) -> None:
    mapping = load_user(user_mapping())
    assert mapping.attributes("Group") == frozenset()
    with pytest.raises(MappingRenderError):
        mapping.to_legacy("Group", {"displayName": "x"})


# -- filters ----------------------------------------------------------------------------------

EMAILS = [
    {"value": "home@x", "type": "home"},
    {"value": "work@x", "type": "Work", "primary": True, "display": "W"},
]
# Redmine's custom fields, as GET /users/{id}.json lists them.
CUSTOM = [
    {"id": 3, "name": "Phone", "value": "555"},
    {"id": 7, "name": "SCIM externalId", "value": "ext-7"},
    {"id": 9, "name": "Blank", "value": ""},
    {"id": 11, "name": "Tags", "multiple": True, "value": ["a", "b"]},
]


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ("{{ e | primary }}", {"e": EMAILS}, "work@x"),
        ("{{ e | primary }}", {"e": EMAILS[:1]}, "home@x"),
        ("{{ e | primary('display') }}", {"e": EMAILS}, "W"),
        ("{{ e | primary(attr=none) }}", {"e": EMAILS[:1]}, EMAILS[0]),
        ("{{ e | primary }}", {"e": []}, None),
        ("{{ e | primary }}", {"e": None}, None),
        ("{{ e | of_type('work') }}", {"e": EMAILS}, "work@x"),
        ("{{ e | of_type('other') }}", {"e": EMAILS}, None),
        ("{{ e | of_type('home', 'type') }}", {"e": EMAILS}, "home"),
        (
            "{{ v | multi(type='work', primary=true) }}",
            {"v": "m"},
            [{"value": "m", "type": "work", "primary": True}],
        ),
        ("{{ v | multi }}", {"v": ""}, []),
        (
            "{{ (a | multi(type='work')) + (b | multi(type='mobile')) }}",
            {"a": "1", "b": None},
            [{"value": "1", "type": "work"}],
        ),
        ("{{ v | split(';') }}", {"v": "a; b;;c"}, ["a", "b", "c"]),
        ("{{ v | split }}", {"v": " a  b "}, ["a", "b"]),
        ("{{ v | split }}", {"v": None}, None),
        ("{{ v | join(', ') }}", {"v": ["a", None, "", "b"]}, "a, b"),
        ("{{ e | join(',', attribute='value') }}", {"e": EMAILS}, "home@x,work@x"),
        ("{{ v | join }}", {"v": None}, None),
        ("{{ v | isodate }}", {"v": "2024-05-01T12:00:00+00:00"}, "2024-05-01T12:00:00Z"),
        ("{{ v | isodate }}", {"v": "2024-05-01"}, "2024-05-01T00:00:00"),
        ("{{ v | isodate('%d/%m/%Y %H:%M') }}", {"v": "31/12/2024 08:15"}, "2024-12-31T08:15:00"),
        ("{{ v | isodate }}", {"v": 0}, "1970-01-01T00:00:00Z"),
        ("{{ v | isodate }}", {"v": None}, None),
        ("{{ v | strftime('%d/%m/%Y') }}", {"v": "2024-05-01T12:00:00Z"}, "01/05/2024"),
        ("{{ v | from_timestamp }}", {"v": 1714564800}, "2024-05-01T12:00:00Z"),
        ("{{ v | from_timestamp('ms') }}", {"v": "1714564800000"}, "2024-05-01T12:00:00Z"),
        ("{{ v | timestamp }}", {"v": "2024-05-01T12:00:00Z"}, 1714564800),
        ("{{ v | timestamp('ms') }}", {"v": "2024-05-01T12:00:00"}, 1714564800000),
        ("{{ v | lower }}", {"v": "MiXed"}, "mixed"),
        ("{{ c | custom_field(7) }}", {"c": CUSTOM}, "ext-7"),
        ("{{ c | custom_field('7') }}", {"c": CUSTOM}, "ext-7"),
        ("{{ c | custom_field(' 3 ') }}", {"c": CUSTOM}, "555"),
        ("{{ c | custom_field(name='SCIM externalId') }}", {"c": CUSTOM}, "ext-7"),
        ("{{ c | custom_field(11) }}", {"c": CUSTOM}, ["a", "b"]),
        ("{{ c | custom_field(9) }}", {"c": CUSTOM}, None),
        ("{{ c | custom_field(8) }}", {"c": CUSTOM}, None),
        ("{{ c | custom_field(name='scim externalid') }}", {"c": CUSTOM}, None),
        ("{{ c | custom_field(7) }}", {"c": [{"id": "7", "value": "text id"}]}, "text id"),
        ("{{ c | custom_field(7) }}", {"c": [{"id": 7, "value": None}]}, None),
        ("{{ c | custom_field(7) }}", {"c": None}, None),
    ],
)
def test_filters(source: str, variables: dict[str, Any], expected: Any) -> None:
    assert render(source, **variables) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ v | isodate }}", "isodate: the value is not a date in ISO 8601"),
        ("{{ v | isodate('%Y') }}", "isodate: the value is not a date in the format '%Y'"),
        ("{{ v | from_timestamp }}", "from_timestamp: expects a number"),
        ("{{ v | split }}", None),
        ("{{ [] | custom_field(v) }}", "custom_field: the id must be a whole number"),
    ],
)
def test_filter_errors_never_quote_the_value(source: str, message: str | None) -> None:
    value = "s3cret-value" if message else 12345
    with pytest.raises(ValueError) as err:
        render(source, v=value)
    assert "s3cret" not in str(err.value) and "12345" not in str(err.value)
    if message:
        assert message in str(err.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ none | custom_field('seven') }}", "custom_field: the id must be a whole number"),
        ("{{ none | custom_field(true) }}", "custom_field: the id must be a whole number"),
        ("{{ none | custom_field(7.5) }}", "custom_field: the id must be a whole number"),
        ("{{ none | custom_field() }}", "custom_field: give the field's id or its name"),
        ("{{ none | custom_field(7, name='x') }}", "custom_field: give the field's id or its name"),
        ("{{ 'text' | custom_field(7) }}", "custom_field: expects a list"),
    ],
)
def test_custom_field_refuses_a_bad_id_even_before_there_is_a_list(
    source: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render(source)


def test_a_misspelt_sub_attribute_in_primary_fails(load_errors: Callable[..., str]) -> None:
    message = load_errors(
        user_mapping("  mail: \"{{ emails | primary('valu') }}\"\n", "  emails: x\n")
    )
    assert "to_legacy.mail: emails has no sub-attribute 'valu'; did you mean 'value'?" in message


def test_mapping_error_lists_one_line_per_problem(load_errors: Callable[..., str]) -> None:
    message = load_errors(
        user_mapping('  a: "{{ usrName }}"\n  b: "{{ x | nope }}"\n  c: "{{ }"\n')
    )
    assert len(message.splitlines()) == 3


def test_mapping_error_keeps_the_lines_as_a_list(load_errors: Callable[..., str]) -> None:
    with pytest.raises(MappingError) as err:
        raise MappingError(["a", "b"])
    assert err.value.errors == ["a", "b"] and str(err.value) == "a\nb"


def test_sql_values_become_json_data(load_user: Callable[[str], TemplateMapping]) -> None:
    mapping = load_user(
        user_mapping(
            "",
            '  externalId: "{{ record.uuid }}"\n'
            '  title: "{{ record.grade }}"\n'
            '  enterprise.costCenter: "{{ record.cost }}"\n'
            '  nickName: "{{ record.hired }}"\n',
        )
    )
    record = {
        "login": "u",
        "uuid": UUID("12345678-1234-5678-1234-567812345678"),
        "grade": Decimal("7"),
        "cost": Decimal("12.5"),
        "hired": datetime(2024, 5, 1, 12, tzinfo=UTC),
    }
    user = mapping.from_legacy("User", record)
    assert user["externalId"] == "12345678-1234-5678-1234-567812345678"
    assert user["title"] == "7"
    assert user[ENTERPRISE_URN] == {"costCenter": "12.5"}
    assert user["nickName"] == "2024-05-01T12:00:00Z"


@pytest.mark.parametrize(
    "key",
    [
        "enterprise.department",
        "enterprise:department",
        f"{ENTERPRISE_URN}:department",
        "department",
        f"{ENTERPRISE_URN.lower()}:DEPARTMENT",
    ],
)
def test_extension_attributes_can_be_keyed_any_way(
    load_user: Callable[[str], TemplateMapping], key: str
) -> None:
    mapping = load_user(
        user_mapping("", f'  "{key}": "{{{{ record.dept }}}}"\n') + f'fields:\n  "{key}": dept\n'
    )
    user = mapping.from_legacy("User", {"login": "u", "dept": "Tours"})
    assert user == {"userName": "u", ENTERPRISE_URN: {"department": "Tours"}}
    assert mapping.legacy_field("User", f"{ENTERPRISE_URN}:department".lower()) == "dept"


def test_the_whole_manager_may_come_from_a_plain_value(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(user_mapping("", '  enterprise.manager: "{{ record.boss }}"\n'))
    user = mapping.from_legacy("User", {"login": "u", "boss": "acc_1"})
    assert user[ENTERPRISE_URN] == {"manager": {"value": "acc_1"}}


def test_members_never_go_through_a_group_mapping(load_errors: Callable[..., str]) -> None:
    errors = load_errors(
        group='to_legacy:\n  ids: "{{ members }}"\n'
        'from_legacy:\n  displayName: "{{ record.name }}"\n'
    )
    assert "group.yaml:2: to_legacy.ids: 'members' is undefined: members never goes" in errors


def test_names_in_fields_and_record_fields_are_taken_as_written(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(
        "record_fields: [on, login]\n"
        + user_mapping("", '  title: "{{ record.on }}"\n')
        + "fields:\n  title: on\n"
    )
    assert mapping.legacy_field("User", "title") == "on"


@pytest.mark.parametrize(
    ("source", "value", "expected"),
    [
        ("{{ v | slug }}", "Zoë's Sales & Marketing", "zoe-s-sales-marketing"),
        ("{{ v | slug('_', 'upper') }}", "  Ops / Night shift ", "OPS_NIGHT_SHIFT"),
        ("{{ v | slug('', 'keep') }}", "R&D Team", "RDTeam"),
        ("{{ v | slug }}", None, None),
        ("{{ v | regex_replace('^ORG-', '') }}", "ORG-042", "042"),
        ("{{ v | regex_replace('(\\\\w+)@.*', '\\\\1') }}", "bjensen@example.com", "bjensen"),
        ("{{ v | regex_replace('x') }}", None, None),
    ],
)
def test_codes_are_made_from_names_with_slug_and_regex_replace(
    source: str, value: Any, expected: Any
) -> None:
    assert render(source, v=value) == expected


def test_regex_replace_refuses_a_huge_value_without_echoing_it() -> None:
    with pytest.raises(Exception, match="longer than 4096") as caught:
        render("{{ v | regex_replace('(a+)+$', '') }}", v="a" * 5000 + "!")
    assert "aaaa" not in str(caught.value)
