"""scim-sanity's live probe (strict mode) against the REST adapter in front of Acme HR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from .conftest import AcmeHr, LiveGateway

pytestmark = pytest.mark.conformance

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# The probe adds the member "fake-member-id", a user that does not exist, and wants 200.
# Acme HR keeps a team's members as references to its accounts, so it refuses a member
# it has no account for (404), and the gateway answers 400 invalidValue: the IdP learns
# that the membership was not made, instead of a 200 for a change that did not happen.
UNKNOWN_MEMBER = ("PATCH /Groups/{id} add member", "Expected 200, got 400")


def probe(gateway: LiveGateway) -> dict[str, Any]:
    cli = Path(sys.executable).with_name("scim-sanity")
    options = ["--i-accept-side-effects", "--json-output", "--strict", "--timeout", "10"]
    proc = subprocess.run(
        [str(cli), "probe", gateway.base_url, "--token", gateway.token, *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_scim_sanity_probe_finds_no_failure_on_acme_hr_but_an_unknown_member(
    acme_gateway: LiveGateway,
) -> None:
    report = probe(acme_gateway)
    summary = report["summary"]
    print(f"scim-sanity on Acme HR: {summary}")
    failed = [r for r in report["results"] if r.get("status") in ("fail", "error")]
    assert [(r["name"], r.get("message")) for r in failed] == [UNKNOWN_MEMBER]
    assert summary["errors"] == 0 and summary["failed"] == 1
    assert summary["passed"] >= 25


def test_a_member_acme_hr_has_no_account_for_is_a_400_and_a_real_one_is_added(
    acme_gateway: LiveGateway, acme_hr: AcmeHr
) -> None:
    """The probe's one failure, as the gateway answers it, next to the same add done right."""
    headers = {"Authorization": f"Bearer {acme_gateway.token}"}
    with httpx2.Client(base_url=acme_gateway.base_url, headers=headers, timeout=10) as scim:
        user = scim.post("/Users", json={"schemas": [USER], "userName": "sanity.member"}).json()
        group = scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Sanity"}).json()

        def add(member: str) -> httpx2.Response:
            body = {
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
            }
            return scim.patch(f"/Groups/{group['id']}", json=body)

        unknown, known = add("fake-member-id"), add(user["id"])
    acme = httpx2.get(
        f"{acme_hr.api_url}/teams/{group['id']}", headers={"X-Api-Key": acme_hr.api_key}
    )
    assert unknown.status_code == 400
    assert unknown.json()["scimType"] == "invalidValue"
    assert "no such member" in unknown.json()["detail"]
    assert known.status_code == 200
    assert [m["value"] for m in known.json()["members"]] == [user["id"]]
    assert acme.json()["team"]["member_ids"] == [user["id"]]
