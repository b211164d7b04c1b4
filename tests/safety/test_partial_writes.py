"""A write of several legacy calls completes or says exactly which step failed.

The lax app (lax_app.py) is told to fail the second call; the tests check the
SCIM error, the audit record and that the app holds what the error says.
"""

from __future__ import annotations

from typing import Any

from safety.conftest import BASE, Audit, Gateway
from safety.lax_app import LaxApp

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(ops)}


def _seed(lax: LaxApp) -> tuple[str, str]:
    lax.users["7"] = {"id": "7", "login": "bjensen", "given": "Barbara", "active": True}
    lax.groups["g1"] = {"id": "g1", "name": "Staff", "member_ids": []}
    return "7", "g1"


async def test_a_member_add_failing_after_the_rename_names_both_steps(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    user, group = _seed(lax)
    lax.faults.add("fail_member_add")
    resp = await scim.patch(
        f"{BASE}/Groups/{group}",
        json=_patch(
            {"op": "replace", "path": "displayName", "value": "Everyone"},
            {"op": "add", "path": "members", "value": [{"value": user}]},
        ),
    )
    assert resp.status == 502
    detail = (await resp.json())["detail"]
    assert detail.startswith("Group g1: update done, then add_members failed: ")
    assert "Everyone" not in detail  # ids and step names, never values
    op = audit.closes[-1]
    assert (op.failed_step, op.extra["steps_done"], op.outcome) == (
        "add_members",
        "update",
        "failed",
    )
    # The app holds what the error says: renamed, without the member.
    assert lax.groups[group]["name"] == "Everyone"
    assert lax.groups[group]["member_ids"] == []


async def test_a_deactivation_endpoint_failing_after_the_update_says_so(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    user, _ = _seed(lax)
    lax.faults.add("fail_disable")
    resp = await scim.patch(
        f"{BASE}/Users/{user}",
        json=_patch(
            {"op": "replace", "path": "name.givenName", "value": "Babs"},
            {"op": "replace", "path": "active", "value": False},
        ),
    )
    assert resp.status == 502
    detail = (await resp.json())["detail"]
    assert detail.startswith("User 7: update done, then deactivate failed: ")
    assert (audit.closes[-1].failed_step, audit.closes[-1].extra["steps_done"]) == (
        "deactivate",
        "update",
    )
    assert (lax.users[user]["given"], lax.users[user]["active"]) == ("Babs", True)


async def test_a_group_created_whose_members_fail_says_it_exists(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    user, _ = _seed(lax)
    lax.faults.add("fail_member_add")
    body = {"schemas": [GROUP], "displayName": "New", "members": [{"value": user}]}
    resp = await scim.post(f"{BASE}/Groups", json=body)
    assert resp.status == 502
    (created,) = [g for g in lax.groups.values() if g["name"] == "New"]
    detail = (await resp.json())["detail"]
    assert f"the group was created (id {created['id']}) but its members were not added" in detail
    assert (audit.closes[-1].failed_step, audit.closes[-1].extra["steps_done"]) == (
        "add_members",
        "create",
    )
    assert created["member_ids"] == []


async def test_a_write_of_one_step_keeps_its_error_and_records_the_step(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    user, group = _seed(lax)
    lax.faults.add("fail_member_add")
    resp = await scim.patch(
        f"{BASE}/Groups/{group}",
        json=_patch({"op": "add", "path": "members", "value": [{"value": user}]}),
    )
    assert resp.status == 502
    assert (await resp.json())["detail"].startswith("the app failed PUT")
    assert audit.closes[-1].failed_step == "add_members"
    assert "steps_done" not in audit.closes[-1].extra


async def test_a_write_whose_steps_all_pass_records_no_failed_step(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    user, group = _seed(lax)
    resp = await scim.patch(
        f"{BASE}/Groups/{group}",
        json=_patch(
            {"op": "replace", "path": "displayName", "value": "Everyone"},
            {"op": "add", "path": "members", "value": [{"value": user}]},
        ),
    )
    assert resp.status == 204
    assert lax.groups[group] == {"id": "g1", "name": "Everyone", "member_ids": ["7"]}
    assert audit.closes[-1].failed_step is None


async def test_a_step_that_may_have_happened_leaves_the_outcome_unknown(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway(call_timeout=0.5)
    user, _ = _seed(lax)
    lax.faults.add("hang_delete")
    resp = await scim.delete(f"{BASE}/Users/{user}")
    assert resp.status == 504
    op = audit.closes[-1]
    assert (op.failed_step, op.outcome) == ("delete", "unknown")
    assert user not in lax.users  # it did happen: "unknown" was the truth
