"""scim2-tester (the python-scim project's RFC checker) against a live gateway."""

from __future__ import annotations

from collections import Counter

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from .conftest import LiveGateway

pytestmark = pytest.mark.conformance


def test_scim2_tester_reports_every_check_success(live_gateway: LiveGateway) -> None:
    http = httpx2.Client(
        base_url=live_gateway.base_url,
        headers={"Authorization": f"Bearer {live_gateway.token}"},
        timeout=10,
    )
    with http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)
    counts = Counter(r.status.name for r in results)
    failures = [
        f"{r.status.name} {r.title}: {r.reason}" for r in results if r.status != Status.SUCCESS
    ]
    print(f"scim2-tester: {len(results)} checks, {dict(counts)}")
    assert len(results) > 50
    assert failures == [], "\n".join(failures)
