"""Microsoft Entra ID, as its provisioning service sends SCIM (IDP-RULES.md, "Microsoft Entra ID").

Entra writes with ``Content-Type: application/scim+json; charset=utf-8``,
encodes filter spaces as ``+``, capitalises ``op`` by default, and may carry
``?aadOptscim062020`` on every URL. Payloads come from Microsoft Learn
("Develop and plan provisioning for a SCIM endpoint", "Known issues").
"""

from __future__ import annotations

import uuid
from typing import Any

from idp.helpers import (
    ENTERPRISE_URN,
    GROUP_URN,
    LIST_URN,
    USER_URN,
    Scim,
    eq,
    members_of,
    patch_body,
    plus,
)

WRITE = {"Content-Type": "application/scim+json; charset=utf-8"}
FLAG = "aadOptscim062020"


async def entra_user(scim: Scim, payload: Any, user_name: str | None = None) -> dict[str, Any]:
    body = payload("entra-create-user.json")
    if user_name is not None:
        body["userName"] = user_name
        body["emails"][0]["value"] = f"{user_name}@contoso.com"
        body["externalId"] = str(uuid.uuid4())
    answer = await scim.post("/Users", body, headers=WRITE)
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


# -- test connection ---------------------------------------------------------------------


async def test_entra_test_connection_with_a_random_guid_gets_an_empty_list_not_a_404(
    scim: Scim,
) -> None:
    """Rules 12, 14, 15: `filter=userName+eq+"<guid>"` with no Accept header is 200, empty."""
    guid = str(uuid.uuid4())
    answer = await scim.get(f"/Users?filter={eq('userName', guid)}", accept=None)
    assert answer.status == 200, answer.text
    assert answer.content_type == "application/scim+json"
    body = answer.json()
    assert body["schemas"] == [LIST_URN]
    assert body["totalResults"] == 0
    assert body["Resources"] == []
    assert body["startIndex"] == 1


async def test_entra_test_connection_on_a_tenant_url_with_the_aadoptscim062020_flag(
    scim: Scim,
) -> None:
    """Rules 12, 14: the unknown `aadOptscim062020` parameter is ignored; no match is 200."""
    guid = str(uuid.uuid4())
    for target in (
        f"/Users?{FLAG}&filter={eq('userName', guid)}",
        f"/Users?filter={eq('externalId', guid)}&{FLAG}",
    ):
        answer = await scim.get(target, accept=None)
        assert answer.status == 200, (target, answer.text)
        body = answer.json()
        assert (body["totalResults"], body["Resources"], body["startIndex"]) == (0, [], 1)


async def test_entra_tenant_url_with_a_trailing_slash_gives_double_slashes_that_still_work(
    scim: Scim, payload: Any
) -> None:
    """Rule 23: Entra joins `.../scim/v2/` and `/Users`, so paths arrive as `v2//Users`."""
    base = "/apps/crm/scim/v2/"
    guid = str(uuid.uuid4())
    probe = await scim.get(f"{base}/Users?filter={eq('userName', guid)}", accept=None)
    assert probe.status == 200, probe.text
    assert probe.json()["totalResults"] == 0
    created = await scim.post(f"{base}/Users", payload("entra-create-user.json"), headers=WRITE)
    assert created.status == 201, created.text
    user_id = created.json()["id"]
    again = await scim.get(f"{base}/Users/{user_id}/")
    assert again.status == 200, again.text
    assert again.json()["id"] == user_id
    deactivate = await scim.patch(f"{base}/Users/{user_id}", payload("entra-deactivate.json"))
    assert deactivate.status == 200, deactivate.text
    assert (await scim.read(f"/Users/{user_id}"))["active"] is False


# -- create flow ---------------------------------------------------------------------------


async def test_entra_create_flow_queries_then_posts_with_meta_empty_roles_and_nulls(
    scim: Scim, payload: Any
) -> None:
    """Rules 8, 11, 14, 18: query, POST with `meta`, `roles: []` and nulls, then the manager."""
    body = payload("entra-create-user.json")
    lookup = await scim.get(f"/Users?filter={eq('userName', body['userName'])}")
    assert lookup.status == 200 and lookup.json()["totalResults"] == 0

    answer = await scim.post("/Users", body, headers=WRITE)
    assert answer.status == 201, answer.text
    created = answer.json()
    assert created["id"] and created["meta"]["resourceType"] == "User"
    assert created["meta"]["location"].endswith(f"/Users/{created['id']}")
    assert "created" in created["meta"] and "lastModified" in created["meta"]

    user = await scim.read(f"/Users/{created['id']}")
    assert user["userName"] == body["userName"]
    assert user["externalId"] == body["externalId"]
    assert user["active"] is True
    assert user["name"]["familyName"] == "familyName"
    assert user["emails"][0]["value"] == body["emails"][0]["value"]
    assert "title" not in user  # null means "not provided"
    assert not user.get("roles")  # an empty list is no roles
    assert user[ENTERPRISE_URN] == {"employeeNumber": "1234"}  # department: null dropped
    assert set(user["schemas"]) == {USER_URN, ENTERPRISE_URN}

    # The manager comes later, in its own PATCH, as a plain string; then Entra checks it.
    manager = await scim.user("the.manager@contoso.com")
    set_manager = payload("entra-set-manager.json")
    set_manager["Operations"][0]["value"] = manager["id"]
    answer = await scim.patch(f"/Users/{user['id']}", set_manager, headers=WRITE)
    assert answer.status == 200, answer.text
    check = plus(f'id eq "{user["id"]}" and manager eq "{manager["id"]}"')
    found = (await scim.get(f"/Users?filter={check}&attributes=id")).json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored[ENTERPRISE_URN]["manager"]["value"] == manager["id"]
    assert stored[ENTERPRISE_URN]["employeeNumber"] == "1234"


async def test_entra_finds_a_created_user_by_each_matching_attribute(
    scim: Scim, payload: Any
) -> None:
    """Rules 12, 13: lookups by userName, externalId and `emails[type eq "work"].value`."""
    user = await entra_user(scim, payload)
    email = user["emails"][0]["value"]
    for text in (
        f'userName eq "{user["userName"]}"',
        f'externalId eq "{user["externalId"]}"',
        f'emails[type eq "work"].value eq "{email}"',
    ):
        found = await scim.find("Users", text)
        assert [u["id"] for u in found] == [user["id"]], text


# -- manager -------------------------------------------------------------------------------


async def test_entra_sets_the_manager_with_a_plain_string_and_reads_it_back_as_an_object(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 4, 8, 19: `Add` on the URN-qualified manager path with a string value."""
    manager = await scim.user("manager@contoso.com")
    user = await entra_user(scim, payload)
    body = payload("entra-set-manager.json")
    body["Operations"][0]["value"] = manager["id"]
    answer = await scim.patch(f"/Users/{user['id']}", body, headers=WRITE)
    assert answer.status == 200, answer.text
    assert answer.json()[ENTERPRISE_URN]["manager"]["value"] == manager["id"]

    stored = (await scim.read(f"/Users/{user['id']}"))[ENTERPRISE_URN]
    assert isinstance(stored["manager"], dict)
    assert stored["manager"]["value"] == manager["id"]
    assert stored["employeeNumber"] == "1234"  # the rest of the extension is kept


async def test_entra_manager_check_filter_with_attributes_id_matches_only_the_right_manager(
    scim: Scim, payload: Any
) -> None:
    """Rules 8, 12, 13: `filter=id eq "u" and manager eq "m"&attributes=id`, spaces as `+`."""
    manager = await scim.user("boss@contoso.com")
    user = await entra_user(scim, payload)
    body = payload("entra-set-manager.json")
    body["Operations"][0]["value"] = manager["id"]
    assert (await scim.patch(f"/Users/{user['id']}", body, headers=WRITE)).status == 200

    check = plus(f'id eq "{user["id"]}" and manager eq "{manager["id"]}"')
    answer = await scim.get(f"/Users?filter={check}&attributes=id")
    assert answer.status == 200, answer.text
    found = answer.json()
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == user["id"]
    assert "userName" not in found["Resources"][0]

    other = plus(f'id eq "{user["id"]}" and manager eq "{uuid.uuid4()}"')
    answer = await scim.get(f"/Users?filter={other}&attributes=id")
    assert answer.status == 200, answer.text
    assert (answer.json()["totalResults"], answer.json()["Resources"]) == (0, [])


async def test_entra_removes_the_manager_with_a_value_filter_and_a_second_remove_is_a_no_op(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 5, 8: `Remove` `manager[value eq "id"]`; removing again matches nothing."""
    manager = await scim.user("lead@contoso.com")
    user = await entra_user(scim, payload)
    add = payload("entra-set-manager.json")
    add["Operations"][0]["value"] = manager["id"]
    assert (await scim.patch(f"/Users/{user['id']}", add, headers=WRITE)).status == 200

    remove = payload("entra-remove-manager.json")
    remove["Operations"][0]["path"] = f'manager[value eq "{manager["id"]}"]'
    for _ in range(2):
        answer = await scim.patch(f"/Users/{user['id']}", remove, headers=WRITE)
        assert answer.status == 200, answer.text
        stored = await scim.read(f"/Users/{user['id']}")
        assert "manager" not in stored.get(ENTERPRISE_URN, {})
        assert stored[ENTERPRISE_URN]["employeeNumber"] == "1234"


# -- attribute updates -------------------------------------------------------------------


async def test_entra_capitalised_replace_ops_update_one_attribute_each(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 4, 19: `Replace` on `name.familyName`, a filtered email and a URN path."""
    user = await entra_user(scim, payload)
    home = {"type": "home", "value": "home@example.org"}
    seed = patch_body({"op": "Add", "path": "emails", "value": [home]})
    assert (await scim.patch(f"/Users/{user['id']}", seed, headers=WRITE)).status == 200

    for name in (
        "entra-replace-family-name.json",
        "entra-replace-work-email.json",
        "entra-replace-employee-number.json",
    ):
        answer = await scim.patch(f"/Users/{user['id']}", payload(name), headers=WRITE)
        assert answer.status == 200, (name, answer.text)
        assert answer.json()["id"] == user["id"]

    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["name"]["familyName"] == "Smith"
    assert stored["name"]["givenName"] == "givenName"
    emails = {e["type"]: e["value"] for e in stored["emails"]}
    assert emails == {"work": "jane.doe@contoso.com", "home": "home@example.org"}
    assert stored[ENTERPRISE_URN]["employeeNumber"] == "701984"
    # the "." in "2.0" did not split the path into a bogus attribute
    assert {k for k in stored if k.lower().startswith("urn:")} == {ENTERPRISE_URN}


async def test_entra_adding_a_mobile_phone_to_a_user_without_phones_creates_the_element(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 5: `Add` on `phoneNumbers[type eq "mobile"].value` with no match creates it."""
    user = await entra_user(scim, payload)
    assert "phoneNumbers" not in user
    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-add-mobile-phone.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    phones = (await scim.read(f"/Users/{user['id']}"))["phoneNumbers"]
    assert [(p["type"], p["value"]) for p in phones] == [("mobile", "+1 555 0100")]

    replace = patch_body(
        {"op": "Replace", "path": 'phoneNumbers[type eq "work"].value', "value": "+1 555 0199"}
    )
    assert (await scim.patch(f"/Users/{user['id']}", replace, headers=WRITE)).status == 200
    phones = (await scim.read(f"/Users/{user['id']}"))["phoneNumbers"]
    assert sorted((p["type"], p["value"]) for p in phones) == [
        ("mobile", "+1 555 0100"),
        ("work", "+1 555 0199"),
    ]


async def test_entra_remove_on_a_filtered_path_with_no_match_changes_nothing(
    scim: Scim, payload: Any
) -> None:
    """Rule 5: `Remove` `phoneNumbers[type eq "fax"]` on a user without a fax is a no-op."""
    user = await entra_user(scim, payload)
    await scim.patch(f"/Users/{user['id']}", payload("entra-add-mobile-phone.json"))
    remove = patch_body({"op": "Remove", "path": 'phoneNumbers[type eq "fax"]'})
    answer = await scim.patch(f"/Users/{user['id']}", remove, headers=WRITE)
    assert answer.status == 200, answer.text
    stored = await scim.read(f"/Users/{user['id']}")
    assert [p["type"] for p in stored["phoneNumbers"]] == ["mobile"]


async def test_entra_roles_sent_as_json_text_are_stored_as_a_list(scim: Scim, payload: Any) -> None:
    """Rules 2, 9: `Add` `roles` whose value is a JSON string with `"primary":"True"`."""
    user = await entra_user(scim, payload)
    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-add-roles-json-string.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    roles = (await scim.read(f"/Users/{user['id']}"))["roles"]
    assert len(roles) == 1
    assert roles[0]["value"] == "Admin"
    assert roles[0]["display"] == "Admin"
    assert roles[0]["type"] == "WindowsAzureActiveDirectoryRole"
    assert roles[0]["primary"] is True


# -- deactivate --------------------------------------------------------------------------


async def test_entra_deactivates_with_the_string_False_and_the_user_stays_readable(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 2, 20: `Replace` `active` with `"False"`; GET and filters still find the user."""
    user = await entra_user(scim, payload)
    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-deactivate.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    assert answer.json()["active"] is False

    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["active"] is False
    assert stored["userName"] == user["userName"]
    by_name = await scim.find("Users", f'userName eq "{user["userName"]}"')
    assert [(u["id"], u["active"]) for u in by_name] == [(user["id"], False)]
    inactive = await scim.find("Users", "active eq false")
    assert user["id"] in {u["id"] for u in inactive}

    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-reactivate.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    assert (await scim.read(f"/Users/{user['id']}"))["active"] is True


async def test_entra_deactivates_with_add_and_a_lowercase_false_string(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 2, 20: `{"op":"Add","path":"active","value":"false"}` also deactivates."""
    user = await entra_user(scim, payload)
    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-deactivate-with-add.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    assert (await scim.read(f"/Users/{user['id']}"))["active"] is False


async def test_entra_aadoptscim062020_folds_dotted_and_urn_keys_into_one_pathless_replace(
    scim: Scim, payload: Any
) -> None:
    """Rules 3, 4, 12: a path-less `replace` with `name.givenName` and URN-qualified keys."""
    user = await entra_user(scim, payload)
    answer = await scim.patch(
        f"/Users/{user['id']}?{FLAG}",
        payload("entra-aadoptscim-pathless-replace.json"),
        headers=WRITE,
    )
    assert answer.status == 200, answer.text
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["displayName"] == "Jane Doe"
    assert stored["name"]["givenName"] == "Jane"
    assert stored["name"]["familyName"] == "Doe"
    assert stored["active"] is False
    assert [e["value"] for e in stored["emails"] if e["type"] == "work"] == ["jane.doe@contoso.com"]
    assert stored[ENTERPRISE_URN]["employeeNumber"] == "701984"
    assert stored[ENTERPRISE_URN]["department"] == "Finance"
    assert stored["userName"] == user["userName"]


# -- groups --------------------------------------------------------------------------------


async def test_entra_group_lookup_then_post_with_the_adscim_schema_urn(
    scim: Scim, payload: Any
) -> None:
    """Rules 10, 12, 14: `excludedAttributes=members` lookup; the extra ADSCIM URN is ignored."""
    body = payload("entra-create-group.json")
    lookup = f"/Groups?excludedAttributes=members&filter={eq('displayName', 'displayName')}"
    answer = await scim.get(lookup)
    assert answer.status == 200, answer.text
    assert (answer.json()["totalResults"], answer.json()["Resources"]) == (0, [])

    created = await scim.post("/Groups", body, headers=WRITE)
    assert created.status == 201, created.text
    group = created.json()
    assert group["schemas"] == [GROUP_URN]
    assert group["meta"]["resourceType"] == "Group"
    assert group["displayName"] == "displayName"
    assert group["externalId"] == body["externalId"]

    member = await scim.user("member@contoso.com")
    add = payload("entra-add-members.json")
    add["Operations"][0]["value"] = [{"$ref": None, "value": member["id"]}]
    assert (await scim.patch(f"/Groups/{group['id']}", add, headers=WRITE)).status == 204

    found = (await scim.get(lookup)).json()
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == group["id"]
    assert "members" not in found["Resources"][0]


async def test_entra_adds_several_members_with_null_refs_in_one_patch(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 7, 19: `Add` `members` with `{"$ref": null, "value": id}` items; 204."""
    group = (await scim.post("/Groups", payload("entra-create-group.json"), headers=WRITE)).json()
    a = await scim.user("a@contoso.com")
    b = await scim.user("b@contoso.com")
    add = payload("entra-add-members.json")
    add["Operations"][0]["value"][0]["value"] = a["id"]
    add["Operations"][0]["value"][1]["value"] = b["id"]
    answer = await scim.patch(f"/Groups/{group['id']}", add, headers=WRITE)
    assert answer.status == 204, answer.text
    assert answer.body is None

    stored = await scim.read(f"/Groups/{group['id']}")
    assert members_of(stored) == sorted([a["id"], b["id"]])
    user = await scim.read(f"/Users/{a['id']}")
    assert [g["value"] for g in user["groups"]] == [group["id"]]


async def test_entra_default_member_remove_removes_only_the_listed_members(
    scim: Scim, payload: Any
) -> None:
    """Rules 1, 6, 19: `Remove` `members` with a value list must not empty the group."""
    group = (await scim.post("/Groups", payload("entra-create-group.json"), headers=WRITE)).json()
    users = [await scim.user(f"m{n}@contoso.com") for n in range(3)]
    ids = [u["id"] for u in users]
    add = patch_body(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": i} for i in ids]}
    )
    assert (await scim.patch(f"/Groups/{group['id']}", add, headers=WRITE)).status == 204

    remove = payload("entra-remove-members.json")
    remove["Operations"][0]["value"] = [{"value": ids[0]}]
    answer = await scim.patch(f"/Groups/{group['id']}", remove, headers=WRITE)
    assert answer.status == 204, answer.text

    stored = await scim.read(f"/Groups/{group['id']}")
    assert members_of(stored) == sorted(ids[1:])
    assert "groups" not in await scim.read(f"/Users/{ids[0]}")
    kept = await scim.read(f"/Users/{ids[1]}")
    assert [g["value"] for g in kept["groups"]] == [group["id"]]


async def test_entra_replacing_the_work_email_of_a_user_without_emails_creates_it(
    scim: Scim,
) -> None:
    """Rules 1, 5: `Replace` `emails[type eq "work"].value` with no email creates a work one."""
    user = await scim.user("no.mail@contoso.com")
    answer = await scim.patch(
        f"/Users/{user['id']}",
        patch_body(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "w@contoso.com"}
        ),
        headers=WRITE,
    )
    assert answer.status == 200, answer.text
    emails = (await scim.read(f"/Users/{user['id']}"))["emails"]
    assert [(e["type"], e["value"]) for e in emails] == [("work", "w@contoso.com")]
    found = await scim.find("Users", 'emails[type eq "work"].value eq "w@contoso.com"')
    assert [u["id"] for u in found] == [user["id"]]


async def test_entra_finds_a_user_by_a_urn_qualified_enterprise_attribute(
    scim: Scim, payload: Any
) -> None:
    """Rules 4, 13: `urn:...:enterprise:2.0:User:employeeNumber eq "1234"` as the match."""
    user = await entra_user(scim, payload)
    await scim.user("someone.else@contoso.com", **{ENTERPRISE_URN: {"employeeNumber": "999"}})
    found = await scim.find("Users", f'{ENTERPRISE_URN}:employeeNumber eq "1234"')
    assert [u["id"] for u in found] == [user["id"]]


async def test_entra_pathless_replace_may_carry_the_manager_as_a_urn_key_with_a_string(
    scim: Scim, payload: Any
) -> None:
    """Rules 3, 8, 12: `{"urn:...:User:manager": "id"}` in a path-less replace."""
    manager = await scim.user("flag.manager@contoso.com")
    user = await entra_user(scim, payload)
    body = patch_body(
        {
            "op": "replace",
            "value": {
                f"{ENTERPRISE_URN}:manager": manager["id"],
                "title": "Analyst",
                "active": True,
            },
        }
    )
    answer = await scim.patch(f"/Users/{user['id']}?{FLAG}", body, headers=WRITE)
    assert answer.status == 200, answer.text
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored[ENTERPRISE_URN]["manager"]["value"] == manager["id"]
    assert stored[ENTERPRISE_URN]["employeeNumber"] == "1234"
    assert stored["title"] == "Analyst"

    remove = patch_body({"op": "Remove", "path": f"{ENTERPRISE_URN}:manager"})
    assert (await scim.patch(f"/Users/{user['id']}", remove, headers=WRITE)).status == 200
    assert "manager" not in (await scim.read(f"/Users/{user['id']}"))[ENTERPRISE_URN]


async def test_entra_member_remove_ignores_ids_that_are_not_members(
    scim: Scim, payload: Any
) -> None:
    """Rules 5, 6: a value list naming one member and one stranger removes just the member."""
    group = (await scim.post("/Groups", payload("entra-create-group.json"), headers=WRITE)).json()
    users = [await scim.user(f"s{n}@contoso.com") for n in range(3)]
    ids = [u["id"] for u in users]
    add = patch_body({"op": "Add", "path": "members", "value": [{"value": i} for i in ids[:2]]})
    assert (await scim.patch(f"/Groups/{group['id']}", add, headers=WRITE)).status == 204

    remove = payload("entra-remove-members.json")
    remove["Operations"][0]["value"] = [{"value": ids[0]}, {"value": ids[2]}]
    answer = await scim.patch(f"/Groups/{group['id']}", remove, headers=WRITE)
    assert answer.status == 204, answer.text
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == [ids[1]]


async def test_entra_unassigning_disables_the_user_who_stays_readable_and_a_member(
    scim: Scim, payload: Any
) -> None:
    """Rules 2, 20: after the disable, GET, the group and an `active eq false` filter see it."""
    user = await entra_user(scim, payload)
    group = await scim.group("Unassigned", [user["id"]])
    assert (
        await scim.patch(f"/Users/{user['id']}", payload("entra-deactivate.json"), headers=WRITE)
    ).status == 200
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == [user["id"]]
    found = await scim.find("Users", f'userName eq "{user["userName"]}" and active eq false')
    assert [(u["id"], u["active"]) for u in found] == [(user["id"], False)]
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["active"] is False
    assert [g["value"] for g in stored["groups"]] == [group["id"]]
