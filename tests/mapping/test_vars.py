"""``vars:``: constants per installation, read by templates of both directions, and strict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.mapping.engine import TemplateMapping, load_mapping

LoadErrors = Callable[..., str]
WriteMapping = Callable[..., Path]

# A Redmine-like user mapping: externalId in the custom field whose id vars.field gives.
CUSTOM_FIELD_USER = """\
vars:
  field: {field}
to_legacy:
  login: "{{{{ userName }}}}"
  custom_fields: "{{{{ [{{'id': vars.field | int, 'value': externalId or ''}}] }}}}"
from_legacy:
  userName: "{{{{ record.login }}}}"
  externalId: "{{{{ record.custom_fields | custom_field(vars.field) }}}}"
"""


def user_with_vars(vars_section: str, to_legacy: str = "", from_legacy: str = "") -> str:
    return (
        f"{vars_section}"
        "to_legacy:\n"
        '  login: "{{ userName }}"\n'
        f"{to_legacy}"
        "from_legacy:\n"
        '  userName: "{{ record.login }}"\n'
        f"{from_legacy}"
    )


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_templates_of_both_directions_read_vars(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(
        user_with_vars(
            "vars:\n  tenant: acme\n  roles: [a, b]\n  ids: {external: 7}\n",
            '  tenant: "{{ vars.tenant }}"\n  roles: "{{ vars.roles }}"\n',
            '  externalId: "{{ record.ext[vars.ids.external | string] if record.ext }}"\n',
        )
    )
    record = mapping.to_legacy("User", {"userName": "bjensen"})
    assert record == {"login": "bjensen", "tenant": "acme", "roles": ["a", "b"]}
    user = mapping.from_legacy("User", {"login": "bjensen", "ext": {"7": "00u7"}})
    assert user == {"userName": "bjensen", "externalId": "00u7"}


def test_env_and_file_references_are_resolved_when_the_mapping_loads(
    write_mapping: WriteMapping, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "tenant.txt"
    secret_file.write_text("acme\n")
    monkeypatch.setenv("FIELD_ID", "12")
    directory = write_mapping(CUSTOM_FIELD_USER.format(field="${env:FIELD_ID}"))
    text = (directory / "user.yaml").read_text()
    (directory / "user.yaml").write_text(
        text.replace("vars:\n", f"vars:\n  tenant: ${{file:{secret_file}}}\n").replace(
            "to_legacy:\n", 'to_legacy:\n  tenant: "t-{{ vars.tenant }}"\n'
        )
    )
    mapping = load_mapping(directory)
    monkeypatch.setenv("FIELD_ID", "99")  # read once, at load
    record = mapping.to_legacy("User", {"userName": "u", "externalId": "x1"})
    assert record == {
        "login": "u",
        "tenant": "t-acme",
        "custom_fields": [{"id": 12, "value": "x1"}],
    }
    answer = {"login": "u", "custom_fields": [{"id": 12, "name": "SCIM externalId", "value": "x1"}]}
    assert mapping.from_legacy("User", answer) == {"userName": "u", "externalId": "x1"}
    removed = mapping.to_legacy("User", {"userName": "u"})
    assert removed["custom_fields"] == [{"id": 12, "value": ""}]
    assert mapping.from_legacy("User", {"login": "u", **removed}) == {"userName": "u"}


def test_an_unset_environment_variable_is_one_error_naming_it_and_the_line(
    load_errors: LoadErrors, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_FIELD_ID", raising=False)
    text = CUSTOM_FIELD_USER.format(field="${env:NO_SUCH_FIELD_ID}")
    message = load_errors(text)
    assert message.splitlines() == [
        f"{message.split(':', 1)[0]}:{line_of(text, 'field:')}: vars.field: "
        "environment variable NO_SUCH_FIELD_ID is not set"
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("seven", "from_legacy.externalId: custom_field: the id must be a whole number"),
        ("'${env:EMPTY_FIELD_ID}'", "vars.field: is empty once its references are resolved"),
        ("", "vars.field: is empty"),
        ("'{{ userName }}'", "vars.field: vars are constants, not templates"),
        ("${file:/nonexistent/field-id}", "vars.field: cannot read secret file /nonexistent/"),
    ],
)
def test_a_bad_field_id_fails_the_start_up_check(
    load_errors: LoadErrors, monkeypatch: pytest.MonkeyPatch, value: str, error: str
) -> None:
    monkeypatch.setenv("EMPTY_FIELD_ID", "")
    assert error in load_errors(CUSTOM_FIELD_USER.format(field=value))


def test_a_misspelt_variable_fails_with_a_hint(load_errors: LoadErrors) -> None:
    text = user_with_vars(
        "vars:\n  tenant: acme\n",
        '  tenant: "{{ vars.tenant }}"\n',
        '  externalId: "{{ record.ext if vars.tennant }}"\n',
    )
    message = load_errors(text)
    assert (
        f":{line_of(text, 'externalId')}: from_legacy.externalId: vars has no variable "
        "'tennant'; did you mean 'tenant'?"
    ) in message


def test_a_variable_no_template_reads_is_an_error(load_errors: LoadErrors) -> None:
    text = user_with_vars("vars:\n  tenant: acme\n  unused: 1\n", '  tenant: "{{ vars.tenant }}"\n')
    message = load_errors(text)
    assert message.splitlines() == [
        f"{message.split(':', 1)[0]}:{line_of(text, 'unused')}: vars.unused: "
        "no template reads it (as vars.unused)"
    ]


def test_vars_read_by_a_computed_name_count_as_read(
    load_user: Callable[[str], TemplateMapping],
) -> None:
    mapping = load_user(
        user_with_vars(
            "vars:\n  a: 1\n  b: 2\n", "  pick: \"{{ vars['a' if userName else 'b'] }}\"\n"
        )
    )
    assert mapping.to_legacy("User", {"userName": "x"})["pick"] == 1


def test_a_variable_name_must_be_a_name(load_errors: LoadErrors) -> None:
    message = load_errors(user_with_vars("vars:\n  bad-name: 1\n"))
    assert "vars.bad-name: must be a name: letters, digits and _" in message


def test_a_template_without_vars_in_its_file_cannot_read_any(load_errors: LoadErrors) -> None:
    message = load_errors(user_with_vars("", '  tenant: "{{ vars.tenant }}"\n'))
    assert "to_legacy.tenant: vars has no variable 'tenant'" in message
