"""scim2-tester against ``scim-gateway serve`` on the SQL adapter, in front of payroll.

A real gateway process (tests/conformance's ``_serve``) with one app on the
``sql`` adapter: the shipped settings (``mappings/payroll/sql.yaml``, table mode,
and ``sql-statements.yaml``) pointed at the session's payroll schema, and the
``mappings/payroll`` mapping. Every check must succeed: the payroll mapping
carries only what its columns keep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from conformance.conftest import LiveGateway, _serve
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from .conftest import FLAVOURS, Payroll, mode_of

pytestmark = pytest.mark.conformance


@pytest.fixture(params=FLAVOURS)
def payroll_gateway(
    request: pytest.FixtureRequest, payroll: Payroll, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    settings = payroll.settings(mode_of(request.param))
    app = {"adapter": "sql", "mapping": "payroll", "settings": settings}
    env = {"PAYROLL_DSN": payroll.dsn}
    with _serve(tmp_path_factory.mktemp("gateway"), "payroll", app, env) as gateway:
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


def test_scim2_tester_reports_every_check_success_on_payroll(
    payroll_gateway: LiveGateway,
) -> None:
    results = run_scim2_tester(payroll_gateway)
    counts = Counter(r.status.name for r in results)
    print(f"scim2-tester on payroll (SQL adapter): {len(results)} checks, {dict(counts)}")
    failed = [
        f"{r.status.name} {r.resource_type} {r.title}: {r.reason}"
        for r in results
        if r.status != Status.SUCCESS
    ]
    assert failed == [], "\n".join(failed)
    assert counts["SUCCESS"] >= 80
    assert {r.resource_type for r in results} >= {"User", "Group"}
