"""The shipped Acme HR mapping: both directions, round trips, push-down fields, and the service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from support import make_settings

from gateway.mapping.engine import TemplateMapping
from gateway.scim.schema import ENTERPRISE_URN
from gateway.sdk import Adapter, Capabilities, NotFound, Page, Query, Record
from gateway.service import ScimService

PAYLOADS = Path(__file__).parent.parent / "payloads"
BASE = "http://gw.test/apps/acme/scim/v2"

USER: dict[str, Any] = {
    "userName": "bjensen",
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "displayName": "Babs Jensen",
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
    "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
    "title": "Tour Guide",
    "active": True,
    ENTERPRISE_URN: {
        "department": "Tours",
        "employeeNumber": "701984",
        "manager": {"value": "acc_000001"},
    },
}

ACCOUNT: dict[str, Any] = {
    "login": "bjensen",
    "given": "Barbara",
    "family": "Jensen",
    "display": "Babs Jensen",
    "mail": "bjensen@example.com",
    "mail_kind": "work",
    "mail_primary": "y",
    "phone": "+1 555 0100",
    "phone_kind": "work",
    "title": "Tour Guide",
    "dept": "Tours",
    "employee_no": "701984",
    "manager_id": "acc_000001",
    "status": "enabled",
}

READ_ONLY = {
    "account_id": "acc_000042",
    "created_at": "2024-05-01T12:00:00Z",
    "updated_at": "2024-05-02T08:30:00Z",
}


def test_a_user_becomes_an_acme_account(acme: TemplateMapping) -> None:
    assert acme.to_legacy("User", USER) == ACCOUNT


def test_an_acme_account_becomes_a_user(acme: TemplateMapping) -> None:
    assert acme.from_legacy("User", {**ACCOUNT, **READ_ONLY}) == USER


def test_a_user_survives_the_round_trip_through_acme(acme: TemplateMapping) -> None:
    assert acme.from_legacy("User", acme.to_legacy("User", USER)) == USER


def test_an_account_survives_the_round_trip_through_scim(acme: TemplateMapping) -> None:
    assert acme.to_legacy("User", acme.from_legacy("User", {**ACCOUNT, **READ_ONLY})) == ACCOUNT


def test_an_inactive_user_is_a_suspended_account_and_back(acme: TemplateMapping) -> None:
    account = acme.to_legacy("User", {**USER, "active": False})
    assert account["status"] == "suspended"
    assert acme.from_legacy("User", account)["active"] is False


def test_a_user_without_active_leaves_the_status_unset(acme: TemplateMapping) -> None:
    # Acme HR enables a new account whose body has no status; null (a PUT or a PATCH
    # removing `active`) means "not set", and reads back without `active`.
    assert acme.to_legacy("User", {"userName": "x"}) == {"login": "x"}
    assert acme.from_legacy("User", {"login": "x", "status": None}) == {"userName": "x"}


def test_a_sparse_account_gives_only_what_it_holds(acme: TemplateMapping) -> None:
    user = acme.from_legacy("User", {"login": "x", "status": "suspended", "mail": None})
    assert user == {"userName": "x", "active": False}


def test_a_mail_and_phone_without_kind_read_as_work(acme: TemplateMapping) -> None:
    """Accounts made in Acme HR itself: IdPs still find `emails[type eq "work"]`."""
    user = acme.from_legacy("User", {"login": "x", "mail": "x@example.com", "phone": "1"})
    assert user["emails"] == [{"value": "x@example.com", "type": "work"}]
    assert user["phoneNumbers"] == [{"value": "1", "type": "work"}]


def test_the_mail_keeps_its_type_label_and_primary_flag(acme: TemplateMapping) -> None:
    emails = [{"value": "h@example.com", "type": "home", "display": "Home", "primary": False}]
    account = acme.to_legacy("User", {"userName": "x", "emails": emails})
    assert account == {
        "login": "x",
        "mail": "h@example.com",
        "mail_kind": "home",
        "mail_label": "Home",
        "mail_primary": "n",
    }
    assert acme.from_legacy("User", account)["emails"] == emails


def test_the_phone_keeps_its_type_label_and_primary_flag(acme: TemplateMapping) -> None:
    phones = [{"value": "+1 555 0199", "type": "mobile", "display": "Cell", "primary": True}]
    account = acme.to_legacy("User", {"userName": "x", "phoneNumbers": phones})
    assert account == {
        "login": "x",
        "phone": "+1 555 0199",
        "phone_kind": "mobile",
        "phone_label": "Cell",
        "phone_primary": "y",
    }
    assert acme.from_legacy("User", account)["phoneNumbers"] == phones


def test_the_primary_email_is_the_accounts_mail(acme: TemplateMapping) -> None:
    emails = [
        {"value": "home@example.com", "type": "home"},
        {"value": "work@example.com", "type": "work", "primary": True},
    ]
    assert acme.to_legacy("User", {"userName": "x", "emails": emails})["mail"] == (
        "work@example.com"
    )


def test_the_work_phone_is_kept_before_the_primary_one(acme: TemplateMapping) -> None:
    phones = [
        {"value": "+1 555 0199", "type": "mobile", "primary": True},
        {"value": "+1 555 0100", "type": "Work", "display": "Desk"},
    ]
    account = acme.to_legacy("User", {"userName": "x", "phoneNumbers": phones})
    assert account == {
        "login": "x",
        "phone": "+1 555 0100",
        "phone_kind": "Work",
        "phone_label": "Desk",
    }
    mobile_first = [{"value": "1", "type": "mobile"}, {"value": "2", "type": "home"}]
    account = acme.to_legacy("User", {"userName": "x", "phoneNumbers": mobile_first})
    assert (account["phone"], account["phone_kind"]) == ("1", "mobile")


def test_external_id_is_kept_in_the_external_reference(acme: TemplateMapping) -> None:
    account = acme.to_legacy("User", {"userName": "x", "externalId": "e-1"})
    assert account == {"login": "x", "ext_ref": "e-1"}
    assert acme.from_legacy("User", account)["externalId"] == "e-1"
    assert acme.legacy_field("User", "externalid") == "ext_ref"


def test_a_group_becomes_a_team_and_back(acme: TemplateMapping) -> None:
    team = acme.to_legacy("Group", {"displayName": "Tour Guides"})
    assert team == {"name": "Tour Guides"}
    record = {**team, "team_id": "team_0001", "description": "not SCIM", "member_ids": []}
    assert acme.from_legacy("Group", record) == {"displayName": "Tour Guides"}


def test_the_app_schema_lists_what_from_legacy_gives_and_member_refs(acme: TemplateMapping) -> None:
    ent = ENTERPRISE_URN.lower()
    assert acme.attributes("User") == {
        "username",
        "externalid",
        "name.givenname",
        "name.familyname",
        "displayname",
        "emails",
        "phonenumbers",
        "title",
        "active",
        f"{ent}:department",
        f"{ent}:employeenumber",
        f"{ent}:manager.value",
        "groups",
    }
    assert acme.attributes("Group") == {"displayname", "externalid", "members"}


@pytest.mark.parametrize(
    ("resource_type", "path", "field"),
    [
        ("User", "username", "login"),
        ("User", "userName", "login"),
        ("User", "name.familyname", "family"),
        ("User", "emails.value", "mail"),
        ("User", "emails", "mail"),
        ("User", f"{ENTERPRISE_URN.lower()}:employeenumber", "employee_no"),
        ("User", f"{ENTERPRISE_URN.lower()}:manager.value", "manager_id"),
        ("User", "employeeNumber", "employee_no"),
        ("User", "id", "account_id"),
        ("User", "meta.lastmodified", "updated_at"),
        ("User", "active", None),
        ("User", "externalid", "ext_ref"),
        ("User", "nosuchthing", None),
        ("Group", "displayname", "name"),
        ("Group", "id", "team_id"),
        ("Robot", "id", None),
    ],
)
def test_legacy_fields_are_declared_for_plain_copies(
    acme: TemplateMapping, resource_type: str, path: str, field: str | None
) -> None:
    assert acme.legacy_field(resource_type, path) == field


# -- through the service ------------------------------------------------------------------


class AccountsAdapter(Adapter):
    """Keeps legacy-shaped records, as a REST or SQL adapter would, and records every write."""

    capabilities = Capabilities(resource_types=frozenset({"User", "Group"}))

    def __init__(self, mapping: TemplateMapping) -> None:
        super().__init__(None, app="acme", mapping=mapping)
        self.records: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.created_members: list[list[str]] = []

    async def get(self, resource_type: str, id: str) -> Record:
        if id not in self.records:
            raise NotFound(id)
        return Record(id, dict(self.records[id]))

    async def search(self, query: Query) -> Page:
        records = [Record(i, dict(r)) for i, r in self.records.items()]
        return Page(records, len(records))

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        self.writes.append(("create", dict(data)))
        if resource_type == "Group":
            self.created_members.append(list(members))
        id = f"acc_{len(self.records) + 1:06d}"
        self.records[id] = {"account_id": id, **data}
        return await self.get(resource_type, id)

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        self.writes.append(("update", dict(changes)))
        for key, value in changes.items():
            if value is None:
                self.records[id].pop(key, None)
            else:
                self.records[id][key] = value
        return await self.get(resource_type, id)

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        del self.records[id]

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        self.writes.append(("add_members", {group_id: member_ids}))


@pytest.fixture
def service(acme: TemplateMapping) -> ScimService:
    return ScimService("acme", AccountsAdapter(acme), make_settings().apps["crm"])


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text("utf-8"))
    return data


def writes(service: ScimService) -> list[tuple[str, dict[str, Any]]]:
    assert isinstance(service.adapter, AccountsAdapter)
    return service.adapter.writes


async def test_an_entra_create_sends_acme_fields_and_answers_scim(service: ScimService) -> None:
    users = service.resource_type("Users")
    created = await service.create(users, payload("entra-create-user.json"), BASE)
    body = payload("entra-create-user.json")
    assert writes(service) == [
        (
            "create",
            {
                "login": body["userName"],
                "ext_ref": body["externalId"],
                "given": "givenName",
                "family": "familyName",
                "mail": body["emails"][0]["value"],
                "mail_kind": body["emails"][0]["type"],
                "mail_primary": "y",
                "employee_no": "1234",
                "status": "enabled",
            },
        )
    ]
    assert created["id"] == "acc_000001"
    assert created["userName"] == body["userName"]
    assert created[ENTERPRISE_URN] == {"employeeNumber": "1234"}
    assert created["externalId"] == body["externalId"]


async def test_an_entra_deactivation_changes_only_the_status(service: ScimService) -> None:
    users = service.resource_type("Users")
    created = await service.create(users, payload("entra-create-user.json"), BASE)
    patched = await service.patch(users, created["id"], payload("entra-deactivate.json"), BASE)
    assert writes(service)[-1] == ("update", {"status": "suspended"})
    assert patched is not None and patched["active"] is False


async def test_setting_the_manager_writes_manager_id(service: ScimService) -> None:
    users = service.resource_type("Users")
    created = await service.create(users, payload("entra-create-user.json"), BASE)
    await service.patch(users, created["id"], payload("entra-set-manager.json"), BASE)
    assert writes(service)[-1] == (
        "update",
        {"manager_id": "26b4e5cc-2ae0-4c71-a8b4-1c3a1c8e9a42"},
    )


async def test_a_put_without_an_attribute_clears_its_field(service: ScimService) -> None:
    users = service.resource_type("Users")
    created = await service.create(users, {**USER, "schemas": []}, BASE)
    replacement = {k: v for k, v in USER.items() if k != "title"}
    replaced = await service.replace(users, created["id"], replacement, BASE)
    assert writes(service)[-1] == ("update", {"title": None})
    assert "title" not in replaced


async def test_the_app_schema_offers_only_mapped_attributes(service: ScimService) -> None:
    users = service.resource_type("Users")
    assert set(users.schema.attributes) == {
        "username",
        "name",
        "displayname",
        "emails",
        "phonenumbers",
        "title",
        "active",
        "groups",
    }
    assert set(users.schema.attributes["name"].sub_attributes) == {"givenname", "familyname"}


async def test_group_members_still_travel_as_deltas(service: ScimService) -> None:
    groups = service.resource_type("Groups")
    assert "members" in groups.schema.attributes
    body = {"displayName": "Tour Guides", "members": [{"value": "acc_000007"}]}
    await service.create(groups, body, BASE)
    assert writes(service) == [("create", {"name": "Tour Guides"})]
    assert isinstance(service.adapter, AccountsAdapter)
    assert service.adapter.created_members == [["acc_000007"]]


def test_users_keep_their_groups_in_the_schema(service: ScimService) -> None:
    assert "groups" in service.resource_type("Users").schema.attributes


async def test_a_member_patch_sends_only_the_delta(service: ScimService) -> None:
    groups = service.resource_type("Groups")
    created = await service.create(groups, {"displayName": "Tour Guides"}, BASE)
    await service.patch(groups, created["id"], payload("entra-add-members.json"), BASE)
    members = [m["value"] for m in payload("entra-add-members.json")["Operations"][0]["value"]]
    assert writes(service)[1:] == [("add_members", {created["id"]: members})]
