"""Retries of the REST client toward an app that cannot be reached at all."""

from __future__ import annotations

import pytest
from rest_support import (
    Opener,
    closed_port,
    make_adapter,
    opened_fixture,  # noqa: F401 - the `opened` fixture
)

from gateway.operation import Operation, bound
from gateway.retry import Pacing
from gateway.sdk import UpstreamUnavailable


async def test_a_create_that_never_reached_the_app_is_sent_again_and_not_unknown(
    opened: Opener,
) -> None:
    adapter = await opened(make_adapter(f"http://127.0.0.1:{closed_port()}"))
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    adapter.client.pacing = Pacing(sleep=wait)
    op = Operation(app="test", method="POST", path="/Users")
    with bound(op), pytest.raises(UpstreamUnavailable) as failed:
        await adapter.create("User", {"login": "bjensen"})
    assert "connection refused" in failed.value.detail
    assert len(waits) == 2  # three attempts: a refused connection carried nothing
    assert op.outcome == "pending"  # known: nothing happened
