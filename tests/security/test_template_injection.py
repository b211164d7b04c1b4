"""Template syntax in request values is stored literally: values are data, never template source.

The acme-hr mapping renders each legacy field with a Jinja template over the SCIM
resource; a value holding ``{{ ... }}`` or ``{% ... %}`` must come out as those very
characters in Acme HR's database and in every SCIM answer, byte for byte.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer
from security.hostile import ACME, GROUP, PATCH, USER, Client

from gateway.demo.legacy_app import STORE
from gateway.mapping.engine import MAPPINGS_DIR, load_mapping

PAYLOADS = {
    "userName": "{{ 7*7 }}",
    "displayName": "{% for x in range(10**9) %}{{ x }}{% endfor %}",
    "givenName": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "familyName": "{{ config }}{{ self.__init__.__globals__ }}",
    "title": "${env:HOME} {# comment #} {%raw%}{{ record }}{%endraw%}",
    "email": "{{7*7}}@example.com",
    "group": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
}


def user() -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": PAYLOADS["userName"],
        "displayName": PAYLOADS["displayName"],
        "name": {"givenName": PAYLOADS["givenName"], "familyName": PAYLOADS["familyName"]},
        "title": PAYLOADS["title"],
        "emails": [{"value": PAYLOADS["email"], "type": "work", "primary": True}],
    }


def assert_literal(resource: dict[str, Any]) -> None:
    assert resource["userName"] == PAYLOADS["userName"]
    assert resource["displayName"] == PAYLOADS["displayName"]
    assert resource["name"]["givenName"] == PAYLOADS["givenName"]
    assert resource["name"]["familyName"] == PAYLOADS["familyName"]
    assert resource["title"] == PAYLOADS["title"]
    assert resource["emails"][0]["value"] == PAYLOADS["email"]


async def test_template_syntax_in_a_user_is_stored_and_read_back_literally(
    scim: Client, acme_server: TestServer
) -> None:
    resp = await scim.post(f"{ACME}/Users", json=user())
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert_literal(created)

    account = acme_server.app[STORE].get_account(created["id"])
    assert (account["login"], account["display"], account["given"], account["family"]) == (
        PAYLOADS["userName"],
        PAYLOADS["displayName"],
        PAYLOADS["givenName"],
        PAYLOADS["familyName"],
    )
    assert (account["title"], account["mail"]) == (PAYLOADS["title"], PAYLOADS["email"])

    assert_literal(await (await scim.get(f"{ACME}/Users/{created['id']}")).json())
    found = await scim.get(f"{ACME}/Users", params={"filter": 'userName eq "{{ 7*7 }}"'})
    (listed,) = (await found.json())["Resources"]
    assert_literal(listed)


async def test_template_syntax_in_a_patch_and_a_group_is_stored_literally(
    scim: Client, acme_server: TestServer
) -> None:
    created = await (await scim.post(f"{ACME}/Users", json={**user(), "userName": "plain"})).json()
    ops = [{"op": "replace", "path": "title", "value": "{{ 6*7 }}{% if true %}x{% endif %}"}]
    resp = await scim.patch(
        f"{ACME}/Users/{created['id']}", json={"schemas": [PATCH], "Operations": ops}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["title"] == "{{ 6*7 }}{% if true %}x{% endif %}"
    account = acme_server.app[STORE].get_account(created["id"])
    assert account["title"] == "{{ 6*7 }}{% if true %}x{% endif %}"

    resp = await scim.post(
        f"{ACME}/Groups", json={"schemas": [GROUP], "displayName": PAYLOADS["group"]}
    )
    assert resp.status == 201, await resp.text()
    group = await resp.json()
    assert group["displayName"] == PAYLOADS["group"]
    team = acme_server.app[STORE].get_team(group["id"])
    assert team["name"] == PAYLOADS["group"]
    read = await (await scim.get(f"{ACME}/Groups/{group['id']}")).json()
    assert read["displayName"] == PAYLOADS["group"]


def test_the_mapping_engine_renders_template_syntax_as_data() -> None:
    mapping = load_mapping(MAPPINGS_DIR / "acme-hr")
    legacy = mapping.to_legacy("User", user())
    assert (legacy["login"], legacy["display"], legacy["given"], legacy["family"]) == (
        PAYLOADS["userName"],
        PAYLOADS["displayName"],
        PAYLOADS["givenName"],
        PAYLOADS["familyName"],
    )
    back = mapping.from_legacy("User", {**legacy, "account_id": "acc_1", "status": "enabled"})
    assert_literal(back)
