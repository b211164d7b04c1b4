"""The shipped Redmine 5 mapping (mappings/redmine): both directions and Redmine's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_fakes import redmine_settings
from support import make_settings

from adapters.rest import RestAdapter, RestSettings
from gateway.cli import main
from gateway.errors import InvalidValue
from gateway.mapping.engine import MAPPINGS_DIR, MappingError, TemplateMapping, load_mapping
from gateway.scim.patch import parse_patch
from gateway.scim.schema import USER_URN
from gateway.service import ScimService

REDMINE = MAPPINGS_DIR / "redmine"
# The ids of the custom fields "SCIM externalId" (users, groups) in this Redmine.
USER_FIELD, GROUP_FIELD = 7, 8
FIELD_ENV = {
    "REDMINE_USER_EXTERNAL_ID_FIELD": str(USER_FIELD),
    "REDMINE_GROUP_EXTERNAL_ID_FIELD": str(GROUP_FIELD),
}

USER: dict[str, Any] = {
    "userName": "alovelace",
    "externalId": "00u1ada",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
    "active": True,
}
RECORD: dict[str, Any] = {
    "login": "alovelace",
    "firstname": "Ada",
    "lastname": "Lovelace",
    "mail": "ada@example.com",
    "status": 1,
    "custom_fields": [{"id": USER_FIELD, "value": "00u1ada"}],
}
# The custom fields as GET /users/{id}.json lists them: with names, and other fields too.
ANSWERED_FIELDS = [
    {"id": 3, "name": "Phone extension", "value": "4711"},
    {"id": USER_FIELD, "name": "SCIM externalId", "value": "00u1ada"},
]
# What GET /users/{id}.json adds: none of it reaches SCIM, the api_key least of all.
READ_ONLY: dict[str, Any] = {
    "id": 7,
    "admin": False,
    "created_on": "2024-05-01T12:00:00Z",
    "updated_on": "2024-05-02T08:30:00Z",
    "last_login_on": None,
    "passwd_changed_on": None,
    "twofa_scheme": None,
    "api_key": "0123456789abcdef0123456789abcdef01234567",
    "groups": [{"id": 9, "name": "Eng"}],
}


def line_of(file: str, needle: str) -> int:
    text = (REDMINE / file).read_text("utf-8")
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(needle))


@pytest.fixture(scope="module")
def redmine() -> Iterator[TemplateMapping]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FIELD_ENV.items():
            env.setenv(name, value)
        yield load_mapping(REDMINE)


def test_a_user_becomes_a_redmine_user_and_back(redmine: TemplateMapping) -> None:
    assert redmine.to_legacy("User", USER) == RECORD
    assert redmine.from_legacy("User", {**RECORD, **READ_ONLY}) == USER
    answer = {**RECORD, **READ_ONLY, "custom_fields": ANSWERED_FIELDS}
    assert redmine.from_legacy("User", answer) == USER


def test_external_id_is_the_custom_field_of_the_configured_id(
    redmine: TemplateMapping,
) -> None:
    # Another field of the same name (not the configured one) is not read.
    others = [
        {"id": 3, "name": "Phone extension", "value": "4711"},
        {"id": 99, "name": "SCIM externalId", "value": "not-this-one"},
    ]
    answer = {**RECORD, **READ_ONLY, "custom_fields": others}
    assert "externalId" not in redmine.from_legacy("User", answer)
    # A Redmine whose field is not visible lists no custom_fields at all.
    without = {k: v for k, v in RECORD.items() if k != "custom_fields"}
    assert "externalId" not in redmine.from_legacy("User", without)


def test_a_removed_external_id_empties_the_field_and_reads_back_as_none(
    redmine: TemplateMapping,
) -> None:
    # Redmine answers 500 to "custom_fields": null: the field is always written, empty.
    record = redmine.to_legacy("User", {k: v for k, v in USER.items() if k != "externalId"})
    assert record["custom_fields"] == [{"id": USER_FIELD, "value": ""}]
    for emptied in ("", None):
        fields = [{"id": USER_FIELD, "name": "SCIM externalId", "value": emptied}]
        assert "externalId" not in redmine.from_legacy("User", {**record, "custom_fields": fields})


def test_an_update_sends_custom_fields_only_when_external_id_changes(
    redmine: TemplateMapping,
) -> None:
    settings = RestSettings.model_validate(redmine_settings("http://127.0.0.1:9"))
    adapter = RestAdapter(settings, app="redmine", mapping=redmine)
    service = ScimService("redmine", adapter, make_settings().apps["crm"])
    users, groups = service.resource_type("Users"), service.resource_type("Groups")
    renamed = {**USER, "name": {"givenName": "Augusta", "familyName": "Lovelace"}}
    assert service.plan_write(users, USER, renamed).changes == {"firstname": "Augusta"}
    changed = {**USER, "externalId": "00u2ada"}
    assert service.plan_write(users, USER, changed).changes == {
        "custom_fields": [{"id": USER_FIELD, "value": "00u2ada"}]
    }
    without = {k: v for k, v in USER.items() if k != "externalId"}
    assert service.plan_write(users, USER, without).changes == {
        "custom_fields": [{"id": USER_FIELD, "value": ""}]
    }
    group = {"displayName": "Eng", "externalId": "grp-1"}
    assert service.plan_write(groups, group, {**group, "externalId": "grp-2"}).changes == {
        "custom_fields": [{"id": GROUP_FIELD, "value": "grp-2"}]
    }


def test_deactivating_locks_and_activating_unlocks(redmine: TemplateMapping) -> None:
    assert redmine.to_legacy("User", {**USER, "active": False})["status"] == 3
    assert redmine.to_legacy("User", {**USER, "active": True})["status"] == 1
    assert redmine.to_legacy("User", {"userName": "x"})["status"] == 1


@pytest.mark.parametrize(("status", "active"), [(1, True), (2, False), (3, False)])
def test_only_status_1_reads_as_active(redmine: TemplateMapping, status: int, active: bool) -> None:
    assert redmine.from_legacy("User", {**RECORD, "status": status})["active"] is active


def test_missing_names_are_filled_with_the_login_and_read_back_as_none(
    redmine: TemplateMapping,
) -> None:
    record = redmine.to_legacy("User", {"userName": "nameless", "emails": USER["emails"]})
    assert (record["firstname"], record["lastname"]) == ("nameless", "nameless")
    assert "name" not in redmine.from_legacy("User", record)
    only_family = redmine.to_legacy("User", {"userName": "x", "name": {"familyName": "Doe"}})
    assert (only_family["firstname"], only_family["lastname"]) == ("x", "Doe")
    assert redmine.from_legacy("User", only_family)["name"] == {"familyName": "Doe"}


def test_names_are_cut_to_redmines_30_characters(redmine: TemplateMapping) -> None:
    login = "l" * 45
    long = {"givenName": "G" * 31, "familyName": "F" * 40}
    record = redmine.to_legacy("User", {"userName": login, "name": long})
    assert (record["firstname"], record["lastname"]) == ("G" * 30, "F" * 30)
    fallback = redmine.to_legacy("User", {"userName": login})
    assert (fallback["firstname"], fallback["lastname"]) == ("l" * 30, "l" * 30)
    assert "name" not in redmine.from_legacy("User", fallback)


def test_the_password_is_written_and_never_read_and_admin_is_never_written(
    redmine: TemplateMapping,
) -> None:
    record = redmine.to_legacy("User", {**USER, "password": "s3cret-pass"})
    assert record["password"] == "s3cret-pass"
    assert "admin" not in record
    assert redmine.from_legacy("User", {**record, **READ_ONLY}) == USER


def test_a_group_becomes_a_redmine_group_and_back(redmine: TemplateMapping) -> None:
    assert redmine.to_legacy("Group", {"displayName": "Eng", "externalId": "grp-1"}) == {
        "name": "Eng",
        "custom_fields": [{"id": GROUP_FIELD, "value": "grp-1"}],
    }
    assert redmine.to_legacy("Group", {"displayName": "Eng"}) == {
        "name": "Eng",
        "custom_fields": [{"id": GROUP_FIELD, "value": ""}],
    }
    group = {
        "id": 9,
        "name": "Eng",
        "custom_fields": [{"id": GROUP_FIELD, "name": "SCIM externalId", "value": "grp-1"}],
        "users": [{"id": 7, "name": "Ada Lovelace"}],
    }
    assert redmine.from_legacy("Group", group) == {"displayName": "Eng", "externalId": "grp-1"}
    # The user field's id is not the group field's.
    other = {**group, "custom_fields": [{"id": USER_FIELD, "value": "user-field"}]}
    assert redmine.from_legacy("Group", other) == {"displayName": "Eng"}


def test_the_schema_lists_what_redmine_keeps_and_requires_a_mail(
    redmine: TemplateMapping,
) -> None:
    assert redmine.attributes("User") == {
        "username",
        "externalid",
        "name.givenname",
        "name.familyname",
        "emails",
        "active",
        "password",
        "groups",
    }
    assert redmine.required("User") == {"emails", "emails.value"}
    assert redmine.attributes("Group") == {"displayname", "externalid", "members"}
    assert redmine.legacy_field("User", "userName") == "login"
    assert redmine.legacy_field("User", "emails.value") == "mail"
    # No plain copy: a filter on externalId is not sent to Redmine (it cannot filter on it).
    assert redmine.legacy_field("User", "externalId") is None
    assert redmine.legacy_field("Group", "externalId") is None


def test_check_accepts_the_shipped_redmine_mapping_with_its_rest_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDMINE_URL", "http://127.0.0.1:3000")
    monkeypatch.setenv("REDMINE_API_KEY", "0123456789abcdef")
    for name, value in FIELD_ENV.items():
        monkeypatch.setenv(name, value)
    settings = yaml.safe_load((REDMINE / "rest.yaml").read_text("utf-8"))
    app = {
        "adapter": "rest",
        "mapping": "redmine",
        "settings": settings,
        "auth": {"tokens": [{"name": "idp", "secret": "s3cret-value"}]},
    }
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"apps": {"redmine": app}}))
    assert main(["check", "--config", str(config)]) == 0
    assert "OK (1 app(s): redmine)" in capsys.readouterr().out

    # The field ids are required, and must be ids.
    monkeypatch.delenv("REDMINE_GROUP_EXTERNAL_ID_FIELD")
    monkeypatch.setenv("REDMINE_USER_EXTERNAL_ID_FIELD", "SCIM externalId")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    at = line_of("user.yaml", "  externalId:")
    assert f"user.yaml:{at}: from_legacy.externalId: custom_field: the id must be a whole" in err
    at = line_of("group.yaml", "  externalid_field:")
    assert (
        f"group.yaml:{at}: vars.externalid_field: environment variable "
        "REDMINE_GROUP_EXTERNAL_ID_FIELD is not set"
    ) in err


def test_the_mapping_needs_both_field_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in FIELD_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MappingError) as err:
        load_mapping(REDMINE)
    assert [line.split(": ", 1)[1] for line in err.value.errors] == [
        "vars.externalid_field: environment variable REDMINE_GROUP_EXTERNAL_ID_FIELD is not set",
        "vars.externalid_field: environment variable REDMINE_USER_EXTERNAL_ID_FIELD is not set",
    ]


async def test_the_app_publishes_a_required_mail_and_refuses_a_user_without_one(
    redmine: TemplateMapping,
) -> None:
    # Nothing listens on the app's port: the user is refused before any call.
    settings = RestSettings.model_validate(redmine_settings("http://127.0.0.1:9"))
    adapter = RestAdapter(settings, app="redmine", mapping=redmine)
    service = ScimService("redmine", adapter, make_settings().apps["crm"])
    users = service.resource_type("Users")
    (user_schema,) = [s for s in service.schemas("http://gw.test") if s["name"] == "User"]
    emails = next(a for a in user_schema["attributes"] if a["name"] == "emails")
    assert emails["required"] is True
    assert [s["name"] for s in emails["subAttributes"] if s["required"]] == ["value"]

    with pytest.raises(InvalidValue, match="'emails' is required"):
        await service.create(users, {"schemas": [USER_URN], "userName": "nomail"}, "http://gw")
    with pytest.raises(InvalidValue, match="'emails' is required"):
        service.patched(
            users,
            {"userName": "x", "emails": [{"value": "x@example.com"}]},
            parse_patch(
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "remove", "path": "emails"}],
                }
            ),
        )
