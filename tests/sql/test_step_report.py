"""On the SQL adapter (transactions), a failed step says the earlier ones were rolled back."""

from __future__ import annotations

import pytest

from .conftest import Payroll
from .test_transactions import MODES, ClientFactory, gateway, rename_and_add, unit_name


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_member_add_says_the_update_was_rolled_back(
    mode: str, payroll: Payroll, aiohttp_client: ClientFactory
) -> None:
    scim = await gateway(aiohttp_client, payroll, mode)
    kept = (await scim.user("kept@example.com"))["id"]
    group = (await scim.group("Before", [kept]))["id"]
    answer = await scim.patch(f"/Groups/{group}", rename_and_add("After", "999999"))
    assert answer.status == 400, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith(
        f"Group {group}: add_members failed; the earlier steps (update) were rolled back: "
    )
    assert "After" not in detail
    assert await unit_name(payroll, group) == "Before"  # what the detail says
