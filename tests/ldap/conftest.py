"""Fixtures for the LDAP adapter: a real slapd (tests/ldap/slapd.py), a fresh subtree per test.

``slapd`` is one server per session. ``directory`` gives each test its own
subtree (``ou=t<n>,dc=example,dc=org`` with ``ou=people``, ``ou=disabled`` under it,
``ou=groups``) and ``directory.settings()`` the shipped
``mappings/ldap-inetorgperson/ldap.yaml`` pointed at it, on plain ldap://;
``open_adapter`` opens an :class:`LdapAdapter` on settings.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import ldap3
import pytest
import yaml

from adapters.ldap import LdapAdapter, LdapSettings
from adapters.ldap.slapd import (
    BIND_DN,
    BIND_PASSWORD,
    ROOT_DN,
    ROOT_PASSWORD,
    SUFFIX,
    Slapd,
    running_slapd,
)
from gateway.mapping.engine import MAPPINGS_DIR, TemplateMapping, load_mapping

PACK = MAPPINGS_DIR / "ldap-inetorgperson"
_SUBTREES = itertools.count(1)


@contextlib.contextmanager
def root_connection(server: Slapd) -> Iterator[ldap3.Connection]:
    """The fixture's own connection (root DN): to look at the directory, never the adapter's."""
    conn = ldap3.Connection(
        ldap3.Server(server.url, get_info=ldap3.NONE),
        ROOT_DN,
        ROOT_PASSWORD,
        raise_exceptions=True,
    )
    conn.open()
    conn.bind()
    try:
        yield conn
    finally:
        conn.unbind()


@dataclass(frozen=True)
class Directory:
    server: Slapd
    base: str  # ou=t<n>,dc=example,dc=org

    def settings(self, **overrides: Any) -> dict[str, Any]:
        raw: dict[str, Any] = yaml.safe_load((PACK / "ldap.yaml").read_text("utf-8"))
        raw = copy.deepcopy(raw)
        for section in ("users", "groups"):
            for key, value in list(raw[section].items()):
                raw[section][key] = _rebase(value, self.base)
        raw.update(url=self.server.url, bind_dn=BIND_DN, password=BIND_PASSWORD)
        raw.update(start_tls=False)
        raw.pop("tls")
        raw.update(overrides)
        return raw

    def entry(self, dn: str, attributes: list[str]) -> dict[str, list[str]] | None:
        """An entry's attributes, read as the root DN (never through the adapter)."""
        with root_connection(self.server) as conn:
            try:
                conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes)
            except ldap3.core.exceptions.LDAPNoSuchObjectResult:
                return None
            if not conn.entries:
                return None
            found: dict[str, list[str]] = conn.response[0]["attributes"]
            return {
                k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in found.items()
            }

    def dns(self, under: str, filter: str = "(objectClass=*)") -> list[str]:
        with root_connection(self.server) as conn:
            conn.search(under, filter, ldap3.LEVEL, attributes=["1.1"])
            return sorted(e["dn"] for e in conn.response if e.get("type") == "searchResEntry")


def _rebase(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace(SUFFIX, base)
    if isinstance(value, dict):
        return {k: _rebase(v, base) for k, v in value.items()}
    return value


def make_subtree(server: Slapd) -> str:
    base = f"ou=t{next(_SUBTREES)},{SUFFIX}"
    with root_connection(server) as conn:
        conn.add(base, "organizationalUnit")
        for ou in ("people", "groups"):
            conn.add(f"ou={ou},{base}", "organizationalUnit")
        conn.add(f"ou=disabled,ou=people,{base}", "organizationalUnit")
    return base


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    with running_slapd(tls=True) as server:
        yield server


@pytest.fixture
def directory(slapd: Slapd) -> Directory:
    return Directory(slapd, make_subtree(slapd))


def _mapping_pack() -> TemplateMapping:
    return load_mapping(PACK)


async def open_adapter(settings: dict[str, Any]) -> LdapAdapter:
    adapter = LdapAdapter(
        LdapSettings.model_validate(settings), app="directory", mapping=_mapping_pack()
    )
    await adapter.open()
    return adapter


@pytest.fixture
async def ldap_adapter(directory: Directory) -> AsyncIterator[LdapAdapter]:
    adapter = await open_adapter(directory.settings())
    yield adapter
    await adapter.aclose()
