"""scim2-tester against ``scim-gateway serve`` on the SQL adapter, in front of payroll.

A real gateway process (tests/conformance's ``_serve``) with one app on the
``sql`` adapter: the shipped settings (``mappings/payroll/sql.yaml``, table mode,
and ``sql-statements.yaml``) pointed at the session's payroll schema, and the
``mappings/payroll`` mapping. Every check must succeed: the payroll mapping
carries only what its columns keep.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance.conftest import LiveGateway, _serve
from conformance.test_scim2_tester_rest import report, run_scim2_tester, verdict

from .conftest import Payroll

pytestmark = pytest.mark.conformance


@pytest.fixture(params=["table", "statements"])
def payroll_gateway(
    request: pytest.FixtureRequest, payroll: Payroll, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    app = {"adapter": "sql", "mapping": "payroll", "settings": payroll.settings(request.param)}
    env = {"PAYROLL_DSN": payroll.dsn}
    with _serve(tmp_path_factory.mktemp("gateway"), "payroll", app, env) as gateway:
        yield gateway


def test_scim2_tester_reports_every_check_success_on_payroll(
    payroll_gateway: LiveGateway,
) -> None:
    results = run_scim2_tester(payroll_gateway)
    outcome = verdict(results, ())
    report("payroll (SQL)", results, outcome)
    assert outcome["unexcused"] == [], "\n".join(outcome["unexcused"])
    assert outcome["counts"]["SUCCESS"] >= 65
    assert {r.resource_type for r in results} >= {"User", "Group"}
