"""Ping Identity, as its provisioners send SCIM (IDP-RULES.md, "Ping").

Admins write the filters by hand (``username Eq "x"``, ``emails Co "@acme"``;
``email`` is no SCIM attribute, so the attribute is ``emails``), and older
provisioners PUT whole groups with all their members.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import GROUP_URN, Scim, members_of, patch_body, pct, plus

HEADERS = {"Content-Type": "application/json"}


async def ping_filter(scim: Scim, text: str, *, encode: Any = plus) -> list[str]:
    answer = await scim.get(f"/Users?filter={encode(text)}", headers=HEADERS)
    assert answer.status == 200, (text, answer.text)
    body = answer.json()
    assert body["totalResults"] == len(body["Resources"])
    return sorted(u["userName"] for u in body["Resources"])


async def people(scim: Scim) -> dict[str, dict[str, Any]]:
    users = {}
    for user_name, email in (
        ("bjensen", "bjensen@acme.com"),
        ("jsmith", "jsmith@ACME.org"),
        ("mdoe", "mdoe@other.org"),
    ):
        users[user_name] = await scim.user(
            user_name,
            emails=[{"type": "work", "value": email, "primary": True}],
            title="Staff",
            active=True,
        )
    return users


async def test_ping_admin_filter_with_a_lowercase_attribute_and_a_capitalised_operator(
    scim: Scim,
) -> None:
    """Rules 1, 13: `username Eq "bjensen"` finds the user `userName` bjensen."""
    await people(scim)
    assert await ping_filter(scim, 'username Eq "bjensen"') == ["bjensen"]
    assert await ping_filter(scim, 'USERNAME EQ "BJensen"') == ["bjensen"]
    assert await ping_filter(scim, 'username Eq "nobody"') == []


async def test_ping_emails_co_filter_finds_every_user_of_a_domain(scim: Scim) -> None:
    """Rules 1, 13: `emails Co "@acme"` matches the email values, without regard to case."""
    await people(scim)
    assert await ping_filter(scim, 'emails Co "@acme"') == ["bjensen", "jsmith"]
    assert await ping_filter(scim, 'emails.value co "@ACME."', encode=pct) == [
        "bjensen",
        "jsmith",
    ]
    assert await ping_filter(scim, 'emails Co "@nowhere"') == []


async def test_ping_unquoted_filter_values_are_tolerated(scim: Scim) -> None:
    """Rules 2, 13: `userName eq bjensen` and `active Eq False` without quotes."""
    users = await people(scim)
    deactivate = patch_body({"op": "replace", "path": "active", "value": False})
    await scim.patch(f"/Users/{users['mdoe']['id']}", deactivate)
    assert await ping_filter(scim, "userName eq bjensen") == ["bjensen"]
    assert await ping_filter(scim, "active Eq False") == ["mdoe"]
    assert await ping_filter(scim, 'active eq "False"') == ["mdoe"]
    assert await ping_filter(scim, 'active eq "true"') == ["bjensen", "jsmith"]


async def test_ping_filters_use_the_full_rfc_grammar(scim: Scim) -> None:
    """Rule 13: `and`/`or`/`not`, parentheses, value paths, `pr`, `sw`/`ew` and dates."""
    await people(scim)
    cases = {
        '(userName sw "b" or userName ew "th") and title pr': ["bjensen", "jsmith"],
        'emails[type eq "work" and value co "acme"]': ["bjensen", "jsmith"],
        'not (emails co "acme") and title eq "Staff"': ["mdoe"],
        'meta.lastModified gt "2000-01-01T00:00:00Z"': ["bjensen", "jsmith", "mdoe"],
        'userName Ne "bjensen" AND userName NE "jsmith"': ["mdoe"],
        "nickName pr": [],
    }
    for text, expected in cases.items():
        assert await ping_filter(scim, text) == expected, text


async def test_ping_puts_a_whole_group_with_all_its_members(scim: Scim) -> None:
    """Rules 11, 18: a full PUT carrying `id`, `meta` and every member replaces the list."""
    users = await people(scim)
    a, b, c = (users[n]["id"] for n in ("bjensen", "jsmith", "mdoe"))
    group = await scim.group("Ping Group", [a, b])
    body = {
        "schemas": [GROUP_URN],
        "id": group["id"],
        "meta": {"resourceType": "Group", "created": "2020-01-01T00:00:00Z"},
        "displayName": "Ping Group",
        "members": [
            {"value": b, "display": "jsmith", "type": "User"},
            {"value": c, "display": "mdoe", "type": "User"},
        ],
    }
    answer = await scim.put(f"/Groups/{group['id']}", body, headers=HEADERS)
    assert answer.status == 200, answer.text
    assert members_of(answer.json()) == sorted([b, c])

    stored = await scim.read(f"/Groups/{group['id']}")
    assert members_of(stored) == sorted([b, c])
    assert stored["meta"]["created"] == group["meta"]["created"]
    assert "groups" not in await scim.read(f"/Users/{a}")
    assert [g["value"] for g in (await scim.read(f"/Users/{c}"))["groups"]] == [group["id"]]


async def test_ping_unquoted_emails_and_ids_are_read_as_strings(scim: Scim) -> None:
    """Rule 13: bare `userName eq jsmith`, `emails.value eq mdoe@other.org`, ids with digits."""
    users = await people(scim)
    await scim.patch(
        f"/Users/{users['mdoe']['id']}",
        patch_body({"op": "add", "path": "externalId", "value": "00ujl29u0le5T6Aj10h7"}),
    )
    assert await ping_filter(scim, "userName eq jsmith") == ["jsmith"]
    assert await ping_filter(scim, "emails.value eq mdoe@other.org") == ["mdoe"]
    assert await ping_filter(scim, "externalId eq 00ujl29u0le5T6Aj10h7") == ["mdoe"]
