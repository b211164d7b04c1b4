"""Look-alike names are one name (issue 13, item 11): NFKC, no invisible characters,
no padding, case folded; per app, on by default (``normalize_names``)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from support import TOKEN, make_settings

from gateway.app import create_app
from gateway.scim.normalize import clean_name, compare_key

USERS = "/apps/crm/scim/v2/Users"
GROUPS = "/apps/crm/scim/v2/Groups"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LOOKALIKES = [
    "\uff41\uff44\uff41@example.com",  # fullwidth a d a
    "ada\u200b@example.com",  # a zero-width space
    "  ada@example.com ",  # padded
    "ADA@EXAMPLE.COM",  # another case
    "a\u00adda@example.com",  # a soft hyphen inside
]


def test_compare_key_folds_width_case_invisible_characters_and_padding() -> None:
    assert {compare_key(name) for name in LOOKALIKES} == {"ada@example.com"}
    assert compare_key("Straße") == compare_key("STRASSE")
    assert clean_name(" \uff21da\u200b ") == "Ada"  # the case is kept in what is written
    assert clean_name("Ada  Lovelace") == "Ada Lovelace"


async def scim(aiohttp_client: Any, **app: Any) -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        create_app(make_settings(**app)), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return client


@pytest.mark.parametrize("lookalike", LOOKALIKES)
async def test_a_lookalike_username_is_the_same_account(
    aiohttp_client: Any, lookalike: str
) -> None:
    client = await scim(aiohttp_client)
    first = await client.post(USERS, json={"schemas": [SCHEMA], "userName": "ada@example.com"})
    assert first.status == 201
    second = await client.post(USERS, json={"schemas": [SCHEMA], "userName": lookalike})
    assert second.status == 409
    assert (await second.json())["scimType"] == "uniqueness"
    listed = await (await client.get(USERS)).json()
    assert listed["totalResults"] == 1


async def test_names_are_written_clean_with_their_case(aiohttp_client: Any) -> None:
    client = await scim(aiohttp_client)
    created = await client.post(USERS, json={"schemas": [SCHEMA], "userName": " \uff21da\u200b "})
    assert (await created.json())["userName"] == "Ada"
    group = await client.post(GROUPS, json={"displayName": "Sales\u200b  Team "})
    assert (await group.json())["displayName"] == "Sales Team"


async def test_the_switch_off_keeps_names_as_sent(aiohttp_client: Any) -> None:
    """Off, names are written as sent; the built-in adapters still compare them folded."""
    client = await scim(aiohttp_client, normalize_names=False)
    resp = await client.post(USERS, json={"schemas": [SCHEMA], "userName": " bob\u200b "})
    assert resp.status == 201
    assert (await resp.json())["userName"] == " bob\u200b "
