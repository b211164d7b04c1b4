"""The LDAP adapter passes the adapter contract against slapd, with each member attribute.

The records are inetOrgPerson entries (``uid``, ``cn``, ``sn``, ...) in the shape
the ``ldap-inetorgperson`` mapping reads; groups are groupOfNames (``member``),
groupOfUniqueNames (``uniqueMember``) or posixGroup (``memberUid``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.ldap import LdapAdapter
from gateway.testing import AdapterContract

from .conftest import Directory, open_adapter


class InetOrgPersonEntries:
    user_name_field = "uid"
    group_name_field = "cn"

    def user_data(self, n: int) -> dict[str, Any]:
        return {
            "uid": f"contract.user{n}@example.com",
            "cn": f"Given{n} Family{n}",
            "sn": f"Family{n}",
            "givenName": f"Given{n}",
            "active": True,
        }

    def group_data(self, n: int) -> dict[str, Any]:
        return {"cn": f"Contract Group {n}"}


class TestLdapAdapterWithMember(InetOrgPersonEntries, AdapterContract):
    @pytest.fixture
    async def adapter(self, directory: Directory) -> AsyncIterator[LdapAdapter]:
        adapter = await open_adapter(directory.settings())
        yield adapter
        await adapter.aclose()


class TestLdapAdapterWithUniqueMember(InetOrgPersonEntries, AdapterContract):
    @pytest.fixture
    async def adapter(self, directory: Directory) -> AsyncIterator[LdapAdapter]:
        settings = directory.settings()
        settings["groups"].update(
            object_classes=["groupOfUniqueNames"], member_attribute="uniqueMember"
        )
        adapter = await open_adapter(settings)
        yield adapter
        await adapter.aclose()


class TestLdapAdapterWithMemberUid(InetOrgPersonEntries, AdapterContract):
    @pytest.fixture
    async def adapter(self, directory: Directory) -> AsyncIterator[LdapAdapter]:
        settings = directory.settings()
        settings["groups"].update(
            object_classes=["posixGroup"], member_attribute="memberUid", placeholder_member=None
        )
        adapter = await open_adapter(settings)
        yield adapter
        await adapter.aclose()

    def group_data(self, n: int) -> dict[str, Any]:
        return {"cn": f"Contract Group {n}", "gidNumber": str(5000 + n)}
