"""The per-app deprovision policy on the demo app: an IdP DELETE deactivates, and
``scim-gateway sweep`` deletes what stayed inactive for ``delete_after_days``."""

from __future__ import annotations

import pytest
from console.conftest import PATCH_URN, SCIM, AppOptions, Setup

from gateway.app import STORE
from gateway.state import AuditLog, Filters


@pytest.fixture
def app_options() -> AppOptions:
    return {"deprovision": {"mode": "deactivate", "delete_after_days": 30}}


async def age(setup: Setup, days: float) -> None:
    """Move every deactivation back in time (the sweep compares with the clock)."""
    async with setup.gateway.app[STORE].db.transaction() as tx:
        await tx.execute(
            "UPDATE account SET deactivated_at = deactivated_at - ? "
            "WHERE deactivated_at IS NOT NULL",
            days * 86400,
        )


async def test_an_idp_delete_deactivates_and_the_user_stays_readable(setup: Setup) -> None:
    user = await setup.user("erin")
    resp = await setup.gateway.delete(f"{SCIM}/Users/{user}")
    assert resp.status == 204
    account = (await setup.acme.call("GET", f"/accounts/{user}"))["account"]
    assert account["status"] == "suspended"
    assert (await setup.scim("GET", f"/Users/{user}"))["active"] is False


async def test_sweep_deletes_only_users_inactive_for_the_set_days(setup: Setup) -> None:
    old, fresh, back = [await setup.user(n) for n in ("old", "fresh", "back")]
    for user in (old, back):
        await setup.scim("DELETE", f"/Users/{user}")
    back_on = {"op": "replace", "value": {"active": True}}
    reactivate = {"schemas": [PATCH_URN], "Operations": [back_on]}
    await setup.scim("PATCH", f"/Users/{back}", reactivate)  # the IdP took it back
    await setup.settle()
    await age(setup, 31)
    await setup.scim("DELETE", f"/Users/{fresh}")
    await setup.settle()

    code, out = await setup.cli("sweep")
    assert code == 0
    assert "deleted 1 deactivated user(s)" in out
    accounts = (await setup.acme.call("GET", "/accounts?limit=200"))["items"]
    assert sorted(a["login"] for a in accounts) == ["back", "fresh"]


async def test_a_sweep_delete_is_an_audit_event_of_the_sweep(setup: Setup) -> None:
    user = await setup.user("gone")
    await setup.scim("DELETE", f"/Users/{user}")
    await setup.settle()
    await age(setup, 31)
    assert (await setup.cli("sweep", "--app", "acme"))[0] == 0
    log = AuditLog(setup.gateway.app[STORE])
    events, _ = await log.list(Filters(app="acme", operation="delete"), limit=10)
    assert [(e["client"], e["extra"], e["outcome"]) for e in events] == [
        ("idp", {"deprovision": "deactivate"}, "success"),
        ("sweep", {"deprovision": "sweep"}, "success"),
    ]


async def test_a_delete_after_days_without_deactivate_is_a_config_error() -> None:
    from gateway.config import ConfigError, parse_settings

    raw = {
        "apps": {
            "a": {
                "adapter": "memory",
                "auth": {"tokens": [{"name": "t", "secret": "x" * 20}]},
                "deprovision": {"delete_after_days": 3},
            }
        }
    }
    with pytest.raises(
        ConfigError, match=r"apps\.a\.deprovision: .*delete_after_days needs mode: deactivate"
    ):
        parse_settings(raw)
