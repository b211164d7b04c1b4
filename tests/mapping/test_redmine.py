"""The shipped Redmine 5 mapping (mappings/redmine): both directions and Redmine's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_fakes import redmine_settings
from support import make_settings

from adapters.rest import RestAdapter, RestSettings
from gateway.cli import main
from gateway.errors import InvalidValue
from gateway.mapping.engine import MAPPINGS_DIR, TemplateMapping, load_mapping
from gateway.scim.patch import parse_patch
from gateway.scim.schema import USER_URN
from gateway.service import ScimService

REDMINE = MAPPINGS_DIR / "redmine"

USER: dict[str, Any] = {
    "userName": "alovelace",
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
}
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


@pytest.fixture(scope="module")
def redmine() -> TemplateMapping:
    return load_mapping(REDMINE)


def test_a_user_becomes_a_redmine_user_and_back(redmine: TemplateMapping) -> None:
    assert redmine.to_legacy("User", USER) == RECORD
    assert redmine.from_legacy("User", {**RECORD, **READ_ONLY}) == USER


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
    assert redmine.to_legacy("Group", {"displayName": "Eng"}) == {"name": "Eng"}
    group = {"id": 9, "name": "Eng", "users": [{"id": 7, "name": "Ada Lovelace"}]}
    assert redmine.from_legacy("Group", group) == {"displayName": "Eng"}


def test_the_schema_lists_what_redmine_keeps_and_requires_a_mail(
    redmine: TemplateMapping,
) -> None:
    assert redmine.attributes("User") == {
        "username",
        "name.givenname",
        "name.familyname",
        "emails",
        "active",
        "password",
        "groups",
    }
    assert redmine.required("User") == {"emails", "emails.value"}
    assert redmine.attributes("Group") == {"displayname", "members"}
    assert redmine.legacy_field("User", "userName") == "login"
    assert redmine.legacy_field("User", "emails.value") == "mail"


def test_check_accepts_the_shipped_redmine_mapping_with_its_rest_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDMINE_URL", "http://127.0.0.1:3000")
    monkeypatch.setenv("REDMINE_API_KEY", "0123456789abcdef")
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
