"""StartTLS and LDAPS to slapd, with a CA generated for the session (tests/ldap/slapd.py).

The server's certificate is signed by a throwaway CA for 127.0.0.1; the adapter trusts
it through ``tls.ca_file``. Without that CA (the system's CAs only) the handshake fails
and the adapter refuses to start (503), rather than talk in clear or unverified.
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.ldap import LdapAdapter, LdapSettings
from adapters.ldap.slapd import running_slapd
from gateway.sdk import UpstreamUnavailable

from .conftest import Directory, _mapping_pack, open_adapter


def tls_settings(directory: Directory, how: str, ca_file: str | None) -> dict[str, Any]:
    server = directory.server
    assert server.ldaps_url is not None
    if how == "ldaps":
        return directory.settings(url=server.ldaps_url, tls={"ca_file": ca_file})
    return directory.settings(start_tls=True, tls={"ca_file": ca_file})


@pytest.mark.parametrize("how", ["start_tls", "ldaps"])
async def test_users_are_provisioned_over_tls_verified_with_the_ca(
    directory: Directory, how: str
) -> None:
    adapter = await open_adapter(tls_settings(directory, how, directory.server.ca_file))
    try:
        created = await adapter.create("User", {"uid": "tls.user", "cn": "T", "sn": "T"})
        assert (await adapter.get("User", created.id)).data["uid"] == "tls.user"
        opened = list(adapter.directory._open)  # the workers' connections
        assert opened and all(c.tls_started if how == "start_tls" else c.server.ssl for c in opened)
        assert all(c.socket.version() in ("TLSv1.2", "TLSv1.3") for c in opened)
    finally:
        await adapter.aclose()


@pytest.mark.parametrize("how", ["start_tls", "ldaps"])
async def test_a_server_certificate_no_trusted_ca_signed_is_refused(
    directory: Directory, how: str
) -> None:
    settings = LdapSettings.model_validate(tls_settings(directory, how, None))
    adapter = LdapAdapter(settings, app="x", mapping=_mapping_pack())
    with pytest.raises(UpstreamUnavailable):
        await adapter.open()
    await adapter.aclose()


def test_start_tls_on_an_ldaps_url_is_a_configuration_error(directory: Directory) -> None:
    settings = tls_settings(directory, "ldaps", directory.server.ca_file)
    with pytest.raises(ValueError, match="start_tls"):
        LdapSettings.model_validate({**settings, "start_tls": True})


async def test_a_certificate_for_another_host_name_is_refused_even_from_the_trusted_ca(
    directory: Directory,
) -> None:
    with running_slapd(tls=True, tls_names="DNS:elsewhere.example") as other:
        assert other.ldaps_url is not None
        settings = directory.settings(url=other.ldaps_url, tls={"ca_file": other.ca_file})
        adapter = LdapAdapter(
            LdapSettings.model_validate(settings), app="x", mapping=_mapping_pack()
        )
        with pytest.raises(UpstreamUnavailable):
            await adapter.open()
        await adapter.aclose()
