"""scim2-tester against ``scim-gateway serve`` on the LDAP adapter, in front of slapd.

A real gateway process (tests/conformance's ``_serve``) with one app on the ``ldap``
adapter: the shipped settings (``mappings/ldap-inetorgperson/ldap.yaml``) pointed at
this test's subtree of the session's slapd, the bind DN and password given as
``${env:...}`` references, and the ``mappings/ldap-inetorgperson`` mapping. Every
check must succeed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from conformance.conftest import LiveGateway, _serve
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from adapters.ldap.slapd import BIND_DN, BIND_PASSWORD

from .conftest import Directory

pytestmark = pytest.mark.conformance


@pytest.fixture
def ldap_gateway(
    directory: Directory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    settings = directory.settings(
        url="${env:LDAP_URL}", bind_dn="${env:LDAP_BIND_DN}", password="${env:LDAP_PASSWORD}"
    )
    app = {"adapter": "ldap", "mapping": "ldap-inetorgperson", "settings": settings}
    env = {
        "LDAP_URL": directory.server.url,
        "LDAP_BIND_DN": BIND_DN,
        "LDAP_PASSWORD": BIND_PASSWORD,
    }
    with _serve(tmp_path_factory.mktemp("gateway"), "directory", app, env) as gateway:
        yield gateway


def run_scim2_tester(gateway: LiveGateway) -> list[CheckResult]:
    http = httpx2.Client(
        base_url=gateway.base_url,
        headers={"Authorization": f"Bearer {gateway.token}"},
        timeout=30,
    )
    with http:
        client = SyncSCIMClient(http)
        client.discover()
        return check_server(client)


def test_scim2_tester_reports_every_check_success_on_the_directory(
    ldap_gateway: LiveGateway,
) -> None:
    results = run_scim2_tester(ldap_gateway)
    counts = Counter(r.status.name for r in results)
    print(f"scim2-tester on slapd (LDAP adapter): {len(results)} checks, {dict(counts)}")
    failed = [
        f"{r.status.name} {r.resource_type} {r.title}: {r.reason}"
        for r in results
        if r.status != Status.SUCCESS
    ]
    assert failed == [], "\n".join(failed)
    assert counts["SUCCESS"] >= 80
    assert {r.resource_type for r in results} >= {"User", "Group"}
