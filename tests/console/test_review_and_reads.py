"""The access review export, and which IdP reads the audit trail keeps (``audit.reads``)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from console.conftest import GROUP_URN, SCIM, Setup
from support import TOKEN

from gateway.app import STORE, create_app
from gateway.config import load_settings
from gateway.reconcile import safe_cell
from gateway.state import AuditLog, Filters


async def test_the_review_lists_every_account_with_groups_provisioner_and_state(
    setup: Setup,
) -> None:
    ann = await setup.user("ann")
    group = {"schemas": [GROUP_URN], "displayName": "Ops", "members": [{"value": ann}]}
    await setup.scim("POST", "/Groups", group)
    await setup.acme.call("POST", "/accounts", {"account": {"login": "=HYPERLINK(1)"}})
    await setup.settle()
    code, out = await setup.cli("access-review", "--app", "acme")
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0
    assert rows["ann"]["groups"] == "Ops"
    assert (rows["ann"]["provisioned_by"], rows["ann"]["state"]) == ("idp", "active")
    assert rows["ann"]["last_change"].endswith("Z")
    # Made in the app directly: no provisioner, and its formula is shown as text.
    assert "'=HYPERLINK(1)" in rows
    assert rows["'=HYPERLINK(1)"]["state"] == "not provisioned here"
    assert rows["Ops"]["resource_type"] == "Group"


async def test_the_review_as_json_lines(setup: Setup) -> None:
    await setup.user("bo")
    await setup.settle()
    code, out = await setup.cli("access-review", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [(r["app"], r["name"], r["active"], r["groups"]) for r in rows] == [
        ("acme", "bo", True, [])
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        (None, ""),
        (["a", "=b"], "a; =b"),
    ],
)
def test_a_csv_cell_never_starts_a_formula(value: Any, shown: str) -> None:
    assert safe_cell(value) == shown


async def audit_of(setup: Setup) -> list[tuple[str, str]]:
    await setup.settle()
    events, _ = await AuditLog(setup.gateway.app[STORE]).list(Filters(app="acme"), limit=100)
    return [(e["operation"], e["outcome"]) for e in events]


async def test_by_default_successful_reads_are_not_recorded_and_refused_ones_are(
    setup: Setup,
) -> None:
    user = await setup.user("cat")
    assert (await setup.gateway.get(f"{SCIM}/Users/{user}")).status == 200
    assert (await setup.gateway.get(f'{SCIM}/Users?filter=userName eq "cat"')).status == 200
    missing = await setup.gateway.get(f"{SCIM}/Users/acc_999999")
    refused = await setup.gateway.get(f"{SCIM}/Users", headers={"Authorization": "Bearer no"})
    assert (missing.status, refused.status) == (404, 401)
    assert await audit_of(setup) == [
        ("create", "success"),
        ("get", "refused"),
        ("request", "refused"),
    ]


@pytest.mark.parametrize(("mode", "kept"), [("all", 6), ("sampled", 2), ("none", 0)])
async def test_reads_all_sampled_or_none(
    setup: Setup, aiohttp_client: Any, tmp_path: Path, mode: str, kept: int
) -> None:
    raw = yaml.safe_load(setup.config.read_text("utf-8"))
    raw["state"]["audit"] = {"reads": mode, "reads_sample_every": 3}
    config = tmp_path / f"reads-{mode}.yaml"
    config.write_text(yaml.safe_dump(raw), "utf-8")
    client = await aiohttp_client(
        create_app(load_settings(config), source=str(config)),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    for _ in range(6):
        assert (await client.get(f"{SCIM}/Users")).status == 200
    setup.gateway = client
    assert [op for op, _ in await audit_of(setup)].count("list") == kept
