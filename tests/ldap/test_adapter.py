"""The LDAP adapter's own rules against slapd: deactivation modes, names, errors, secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ldap3
import pytest

from adapters.ldap import LdapAdapter, LdapSettings
from adapters.ldap.slapd import BIND_DN, BIND_PASSWORD
from gateway.sdk import InvalidValue, Query, UpstreamError, UpstreamUnavailable

from .conftest import Directory, _mapping_pack, open_adapter, root_connection

USER_ACCOUNT_CONTROL = "userAccountControl"


def person(uid: str, **extra: Any) -> dict[str, Any]:
    return {"uid": uid, "cn": uid, "sn": uid, **extra}


@pytest.fixture
async def ad_style(directory: Directory) -> AsyncIterator[LdapAdapter]:
    """Active Directory's way: objectClass user, disabled is userAccountControl's bit 0x2."""
    settings = directory.settings()
    settings["users"].update(
        object_classes=["top", "person", "organizationalPerson", "user"],
        deactivation={"by": "bit", "attribute": USER_ACCOUNT_CONTROL, "bit": 2, "initial": 512},
    )
    adapter = await open_adapter(settings)
    yield adapter
    await adapter.aclose()


def ad_user(uid: str, active: bool) -> dict[str, Any]:
    # msuser.schema's mstop must-haves; a real AD fills them itself.
    return person(
        uid,
        active=active,
        instanceType="4",
        nTSecurityDescriptor="x",
        objectCategory="cn=Person,cn=Schema,cn=Configuration,dc=example,dc=org",
    )


def uac(directory: Directory, uid: str) -> int:
    found = directory.entry(f"uid={uid},ou=people,{directory.base}", [USER_ACCOUNT_CONTROL])
    assert found is not None
    return int(found[USER_ACCOUNT_CONTROL][0])


async def test_the_bit_mode_sets_and_clears_only_its_bit(
    ad_style: LdapAdapter, directory: Directory
) -> None:
    created = await ad_style.create("User", ad_user("ad.user", active=True))
    assert (created.data["active"], uac(directory, "ad.user")) == (True, 512)
    dn = f"uid=ad.user,ou=people,{directory.base}"
    with root_connection(directory.server) as conn:  # DONT_EXPIRE_PASSWORD, set by someone else
        conn.modify(dn, {USER_ACCOUNT_CONTROL: [(ldap3.MODIFY_REPLACE, ["66048"])]})
    off = await ad_style.update("User", created.id, {"active": False})
    assert (off.data["active"], uac(directory, "ad.user")) == (False, 66050)
    on = await ad_style.update("User", created.id, {"active": True})
    assert (on.data["active"], uac(directory, "ad.user")) == (True, 66048)


async def test_a_user_created_disabled_in_bit_mode_has_the_bit(
    ad_style: LdapAdapter, directory: Directory
) -> None:
    created = await ad_style.create("User", ad_user("off.user", active=False))
    assert (created.data["active"], uac(directory, "off.user")) == (False, 514)
    page = await ad_style.search(Query("User"))
    assert [r.data["active"] for r in page.records] == [False]


async def test_a_naming_value_with_dn_specials_is_escaped_in_the_dn(
    ldap_adapter: LdapAdapter, directory: Directory
) -> None:
    tricky = 'o\'neil, jr+x="y"#1 '
    created = await ldap_adapter.create("User", person(tricky))
    assert (await ldap_adapter.get("User", created.id)).data["uid"] == tricky
    [dn] = directory.dns(f"ou=people,{directory.base}", "(uid=*)")
    assert dn.endswith(f",ou=people,{directory.base}")  # one RDN: uid, the whole value
    assert directory.entry(dn, ["uid"]) == {"uid": [tricky]}
    # An update that keeps the name (given again, as PUT does) renames nothing.
    await ldap_adapter.update("User", created.id, {"uid": tricky, "givenName": "G"})
    assert directory.dns(f"ou=people,{directory.base}", "(uid=*)") == [dn]
    assert directory.entry(dn, ["givenName"]) == {"givenName": ["G"]}


async def test_an_entry_the_schema_refuses_is_400_and_nothing_is_added(
    ldap_adapter: LdapAdapter, directory: Directory
) -> None:
    with pytest.raises(InvalidValue) as refused:
        await ldap_adapter.create("User", {"uid": "no.surname", "cn": "x"})  # sn is required
    assert "objectClassViolation" in str(refused.value)
    assert directory.dns(f"ou=people,{directory.base}", "(uid=*)") == []


async def test_removing_the_naming_value_is_400(ldap_adapter: LdapAdapter) -> None:
    created = await ldap_adapter.create("User", person("named"))
    with pytest.raises(InvalidValue):
        await ldap_adapter.update("User", created.id, {"uid": None})


async def test_adding_an_unknown_user_to_a_group_is_400_and_changes_nothing(
    ldap_adapter: LdapAdapter,
) -> None:
    user = await ldap_adapter.create("User", person("member"))
    group = await ldap_adapter.create("Group", {"cn": "G"}, members=[user.id])
    with pytest.raises(InvalidValue):
        await ldap_adapter.add_members(group.id, ["00000000-0000-0000-0000-000000000000"])
    assert [m.value for m in (await ldap_adapter.get("Group", group.id)).members or ()] == [user.id]


async def test_a_directory_that_is_not_there_is_503_at_start_up(directory: Directory) -> None:
    settings = directory.settings(url="ldap://127.0.0.1:9", connect_timeout=1)
    adapter = LdapAdapter(LdapSettings.model_validate(settings), app="x", mapping=_mapping_pack())
    with pytest.raises(UpstreamUnavailable) as failed:
        await adapter.open()
    assert "127.0.0.1:9" in str(failed.value)
    await adapter.aclose()


async def test_a_wrong_password_is_502_and_the_message_names_no_secret(
    directory: Directory,
) -> None:
    wrong = "not-the-password-7f3a"
    settings = directory.settings(password=wrong)
    adapter = LdapAdapter(LdapSettings.model_validate(settings), app="x", mapping=_mapping_pack())
    with pytest.raises(UpstreamError) as failed:
        await adapter.open()
    await adapter.aclose()
    text = f"{failed.value} {failed.value!r}"
    assert wrong not in text and BIND_DN not in text and "invalidCredentials" in text


def test_the_bind_dn_and_password_are_secrets_resolved_from_references(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LDAP_BIND_DN", BIND_DN)
    monkeypatch.setenv("TEST_LDAP_PASSWORD", BIND_PASSWORD)
    settings = LdapSettings.model_validate(
        directory.settings(bind_dn="${env:TEST_LDAP_BIND_DN}", password="${env:TEST_LDAP_PASSWORD}")
    )
    assert settings.password.get_secret_value() == BIND_PASSWORD
    shown = f"{settings!r} {settings}"
    assert BIND_PASSWORD not in shown and BIND_DN not in shown


async def test_a_paging_walk_keeps_its_list_and_a_new_walk_or_our_write_reads_afresh(
    ldap_adapter: LdapAdapter, directory: Directory
) -> None:
    for n in range(5):
        await ldap_adapter.create("User", person(f"walker{n}"))
    first = await ldap_adapter.search(Query("User", start_index=1, count=2))
    with root_connection(directory.server) as conn:  # another writer, mid-walk
        entry = {"objectClass": ["inetOrgPerson"], "uid": "late", "cn": "late", "sn": "late"}
        conn.add(f"uid=late,ou=people,{directory.base}", attributes=entry)
    second = await ldap_adapter.search(Query("User", start_index=3, count=2))
    assert first.total == second.total == 5  # the walk's list: the late user is not in it
    again = await ldap_adapter.search(Query("User", start_index=1, count=2))
    assert again.total == 6  # a new walk reads the matches afresh
    await ldap_adapter.create("User", person("ours"))
    assert (await ldap_adapter.search(Query("User", start_index=3, count=2))).total == 7


async def test_an_update_the_schema_refuses_changes_nothing_not_even_the_name(
    ldap_adapter: LdapAdapter, directory: Directory
) -> None:
    created = await ldap_adapter.create("User", person("stays"))
    with pytest.raises(InvalidValue):
        await ldap_adapter.update("User", created.id, {"uid": "moved", "sn": None})
    assert directory.dns(f"ou=people,{directory.base}", "(uid=*)") == [
        f"uid=stays,ou=people,{directory.base}"
    ]
