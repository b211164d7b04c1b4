"""Start-up checks: every problem is reported with the file, the line and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.mapping.engine import MappingError, TemplateMapping, load_mapping

GOOD_TO_LEGACY = """\
to_legacy:
  login: "{{ userName }}"
  given: "{{ name.givenName }}"
  mail: "{{ emails | primary }}"
"""
GOOD_FROM_LEGACY = """\
from_legacy:
  userName: "{{ record.login }}"
  name.givenName: "{{ record.given }}"
  emails: "{{ record.mail | multi(type='work') }}"
"""


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


CASES = [
    # (description, user.yaml, the line's marker, field, what the message says)
    (
        "bad syntax",
        GOOD_TO_LEGACY + '  bad: "{{ userName }"\n' + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "template syntax error: unexpected '}'",
    ),
    (
        "unknown filter",
        GOOD_TO_LEGACY + '  bad: "{{ emails | primry }}"\n' + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "unknown filter 'primry'; did you mean 'primary'?",
    ),
    (
        "unknown test",
        GOOD_TO_LEGACY + '  bad: "{{ userName is nun }}"\n' + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "unknown test 'nun'",
    ),
    (
        "misspelt attribute",
        GOOD_TO_LEGACY + '  bad: "{{ usrName }}"\n' + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "'usrName' is undefined; did you mean 'userName'?",
    ),
    (
        "misspelt sub-attribute",
        GOOD_TO_LEGACY + '  bad: "{{ name.givnName }}"\n' + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "name has no sub-attribute 'givnName'; did you mean 'givenName'?",
    ),
    (
        "misspelt extension attribute",
        GOOD_TO_LEGACY + '  bad: "{{ enterprise.departmnt }}"\n' + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "the enterprise extension has no attribute 'departmnt'; did you mean 'department'?",
    ),
    (
        "misspelt element sub-attribute",
        GOOD_TO_LEGACY
        + '  bad: "{% for e in emails %}{{ e.vlaue }}{% endfor %}"\n'
        + GOOD_FROM_LEGACY,
        "bad:",
        "to_legacy.bad",
        "emails has no sub-attribute 'vlaue'; did you mean 'value'?",
    ),
    (
        "an attribute requests never carry",
        GOOD_TO_LEGACY + '  nick: "{{ nickName }}"\n' + GOOD_FROM_LEGACY,
        "nick:",
        "to_legacy.nick",
        "reads nickname, which from_legacy does not give",
    ),
    (
        "unknown SCIM path in from_legacy",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + '  nickNam: "{{ record.nick }}"\n',
        "nickNam:",
        "from_legacy.nickNam",
        "unknown SCIM attribute of User; did you mean 'nickName'?",
    ),
    (
        "a gateway-owned attribute in from_legacy",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + '  id: "{{ record.account_id }}"\n',
        "id:",
        "from_legacy.id",
        "id is set by the gateway, never by a mapping",
    ),
    (
        "part of a multi-valued attribute in from_legacy",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + '  phoneNumbers.value: "{{ record.phone }}"\n',
        "phoneNumbers.value:",
        "from_legacy.phoneNumbers.value",
        "map the multi-valued phoneNumbers whole",
    ),
    (
        "overlapping paths in from_legacy",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "  name: \"{{ {'givenName': record.given} }}\"\n",
        "  name:",
        "from_legacy.name",
        "overlaps from_legacy.name.givenName",
    ),
    (
        "an unknown sub-attribute in a from_legacy result",
        GOOD_TO_LEGACY
        + GOOD_FROM_LEGACY.replace(
            "record.mail | multi(type='work')", "[{'value': record.mail, 'typ': 'work'}]"
        ),
        "emails:",
        "from_legacy.emails",
        "emails has no sub-attribute 'typ'; did you mean 'type'?",
    ),
    (
        "a list for a single-valued attribute",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + '  title: "{{ [record.title] }}"\n',
        "title:",
        "from_legacy.title",
        "title takes one value; the template gives a list",
    ),
    (
        "a value of the wrong type",
        GOOD_TO_LEGACY
        + "  status: \"{{ 'enabled' if active else 'suspended' }}\"\n"
        + GOOD_FROM_LEGACY
        + '  active: "{{ record.status }}"\n',
        "active:",
        "from_legacy.active",
        "Attribute 'active' must be of type boolean",
    ),
    (
        "a misspelt record field",
        "record_fields: [login, given, mail, display]\n"
        + GOOD_TO_LEGACY
        + GOOD_FROM_LEGACY
        + '  displayName: "{{ record.dispaly }}"\n',
        "displayName:",
        "from_legacy.displayName",
        "record has no field 'dispaly' (not in record_fields); did you mean 'display'?",
    ),
    (
        "a fields target the mapping does not know",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "fields:\n  userName: logn\n",
        "userName: logn",
        "fields.userName",
        "'logn' is not a legacy field this mapping reads or writes; did you mean 'login'?",
    ),
    (
        "a fields target that is not a plain copy",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "fields:\n  userName: mail\n",
        "userName: mail",
        "fields.userName",
        "from_legacy.userName does not read record.mail, so userName is not a plain copy",
    ),
    (
        "a fields key that is no SCIM attribute",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "fields:\n  usrName: login\n",
        "usrName: login",
        "fields.usrName",
        "unknown SCIM attribute of User",
    ),
    (
        "a fields key from_legacy does not give",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "fields:\n  title: login\n",
        "title: login",
        "fields.title",
        "from_legacy does not give title",
    ),
    (
        "a key given twice",
        GOOD_TO_LEGACY + '  login: "{{ userName | lower }}"\n' + GOOD_FROM_LEGACY,
        "userName | lower",
        "to_legacy.login",
        "given twice (first on line 2)",
    ),
    (
        "an unknown section",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "default:\n  status: enabled\n",
        "default:",
        "default",
        "unknown section",
    ),
    (
        "a resource that is not the file's",
        "resource: Group\n" + GOOD_TO_LEGACY + GOOD_FROM_LEGACY,
        "resource:",
        "resource",
        "user.yaml maps User, not 'Group'",
    ),
    (
        "a template in defaults",
        GOOD_TO_LEGACY + GOOD_FROM_LEGACY + 'defaults:\n  status: "{{ 1 }}"\n',
        "status:",
        "defaults.status",
        "defaults are constants, not templates",
    ),
    (
        "an empty template",
        GOOD_TO_LEGACY + "  empty:\n" + GOOD_FROM_LEGACY,
        "empty:",
        "to_legacy.empty",
        "is empty",
    ),
    (
        "an object instead of a template",
        GOOD_TO_LEGACY + "  obj: {a: 1}\n" + GOOD_FROM_LEGACY,
        "obj:",
        "to_legacy.obj",
        "must be a template (a string)",
    ),
    (
        "a User without userName",
        GOOD_TO_LEGACY + 'from_legacy:\n  title: "{{ record.title }}"\n',
        "from_legacy:",
        "from_legacy",
        "must give userName",
    ),
]


@pytest.mark.parametrize(
    ("text", "marker", "field", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_start_up_error_names_file_line_and_field(
    load_errors: Callable[..., str], text: str, marker: str, field: str, message: str
) -> None:
    errors = load_errors(text)
    expected = f"user.yaml:{line_of(text, marker)}: {field}: {message}"
    assert expected in errors, errors


def test_the_good_parts_of_those_cases_load(load_user: Callable[[str], TemplateMapping]) -> None:
    mapping = load_user(GOOD_TO_LEGACY + GOOD_FROM_LEGACY + "fields:\n  userName: login\n")
    assert mapping.legacy_field("User", "username") == "login"


def test_a_syntax_error_in_a_multi_line_template_names_the_template_line(
    load_errors: Callable[..., str],
) -> None:
    text = (
        GOOD_TO_LEGACY + "  bad: |\n    {% if userName %}\n      {{ userName }\n    {% endif %}\n"
    )
    errors = load_errors(text + GOOD_FROM_LEGACY)
    assert "user.yaml:5: to_legacy.bad: template syntax error:" in errors
    assert "(template line 2)" in errors


def test_a_template_too_large_or_too_deep_to_compile_is_reported_not_a_crash(
    load_errors: Callable[..., str],
) -> None:
    # Jinja folds constants while compiling: 10 ** 5000 has no text form (ValueError),
    # and a few hundred nested parentheses exhaust the parser's recursion.
    deep = "(" * 500 + "1" + ")" * 500
    text = GOOD_TO_LEGACY + f'  big: "{{{{ 10 ** 5000 }}}}"\n  deep: "{{{{ {deep} }}}}"\n'
    errors = load_errors(text + GOOD_FROM_LEGACY)
    assert "to_legacy.big: a constant in the template is too large" in errors
    assert "to_legacy.deep: the template nests too deeply" in errors


def test_invalid_yaml_names_the_file_and_line(load_errors: Callable[..., str]) -> None:
    errors = load_errors('to_legacy:\n  login: "{{ userName }}\nfrom_legacy: x\n')
    assert "user.yaml:4: not valid YAML:" in errors


def test_a_file_that_is_not_a_mapping_is_reported(load_errors: Callable[..., str]) -> None:
    assert "user.yaml:1: (top level): must be a mapping" in load_errors("- a\n- b\n")


def test_errors_in_both_files_are_all_reported(load_errors: Callable[..., str]) -> None:
    errors = load_errors(
        GOOD_TO_LEGACY + '  bad: "{{ usrName }}"\n' + GOOD_FROM_LEGACY,
        'to_legacy:\n  name: "{{ displayNme }}"\n'
        'from_legacy:\n  displayName: "{{ record.name }}"\n',
    )
    assert "user.yaml:5: to_legacy.bad:" in errors
    assert "group.yaml:2: to_legacy.name: 'displayNme' is undefined" in errors


def test_a_directory_without_mapping_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rest.yaml").write_text("base_url: x\n")
    with pytest.raises(MappingError, match=r"no user\.yaml or group\.yaml"):
        load_mapping(tmp_path)


def test_other_files_beside_the_mapping_are_ignored(
    write_mapping: Callable[..., Path],
) -> None:
    directory = write_mapping(GOOD_TO_LEGACY + GOOD_FROM_LEGACY)
    (directory / "rest.yaml").write_text("not: [a mapping\n")
    assert load_mapping(directory).attributes("User")


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="not a directory of mapping files"):
        load_mapping(tmp_path / "nope")


def test_legacy_field_names_are_kept_as_written(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(
        'to_legacy:\n  "on": "{{ active }}"\n  yes: "{{ userName }}"\n'
        'from_legacy:\n  userName: "{{ record.yes }}"\n  active: "{{ record.on }}"\n'
    )
    assert mapping.to_legacy("User", {"userName": "u", "active": True}) == {"on": True, "yes": "u"}


def test_password_reaches_to_legacy_though_never_returned(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(GOOD_TO_LEGACY + '  pwd: "{{ password }}"\n' + GOOD_FROM_LEGACY)
    assert "password" in (mapping.attributes("User") or ())
    assert mapping.to_legacy("User", {"userName": "u", "password": "pw"})["pwd"] == "pw"
