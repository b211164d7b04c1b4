"""``scim-gateway reconcile`` on the demo app (Acme HR): after direct edits in the app it
finds exactly the planted orphans, drift and missing accounts."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any

from console.conftest import GROUP_URN, USER_URN, Setup
from support import TOKEN

from gateway.app import STORE, create_app
from gateway.config import parse_settings
from gateway.http.views import SERVICES
from gateway.reconcile import Reconciler, keyset


async def provision(setup: Setup) -> dict[str, str]:
    """Four users and a group through SCIM; one user deleted through SCIM."""
    ids = {name: await setup.user(name, title="Engineer") for name in ("ann", "bob", "cy", "dee")}
    group = await setup.scim(
        "POST", "/Groups", {"schemas": [GROUP_URN], "displayName": "Ops", "members": []}
    )
    ids["Ops"] = group["id"]
    await setup.scim("DELETE", f"/Users/{ids['dee']}")
    await setup.settle()
    return ids


async def plant(setup: Setup, ids: dict[str, str]) -> dict[str, str]:
    """What colleagues do in Acme HR behind the gateway's back."""
    rogue = await setup.acme.call("POST", "/accounts", {"account": {"login": "rogue"}})
    team = await setup.acme.call("POST", "/teams", {"team": {"name": "Shadow IT"}})
    await setup.acme.call("PATCH", f"/accounts/{ids['bob']}", {"account": {"title": "CEO"}})
    await setup.acme.call("DELETE", f"/accounts/{ids['cy']}")
    return {"rogue": rogue["account"]["account_id"], "shadow": team["team"]["team_id"]}


async def test_a_clean_app_reconciles_with_exit_code_0(setup: Setup) -> None:
    await provision(setup)
    code, out = await setup.cli("reconcile", "--app", "acme")
    report = json.loads(out)
    assert code == 0
    assert report["counts"] == {"orphan": 0, "drift": 0, "missing": 0}
    assert report["findings"] == []
    assert report["read"] == 4  # ann, bob, cy and the group Ops


async def test_reconcile_finds_exactly_the_planted_orphans_drift_and_missing(
    setup: Setup,
) -> None:
    ids = await provision(setup)
    planted = await plant(setup, ids)
    code, out = await setup.cli("reconcile", "--app", "acme")
    assert code == 1
    found = {(f["kind"], f["resource_type"], f["id"]) for f in json.loads(out)["findings"]}
    assert found == {
        ("orphan", "User", planted["rogue"]),
        ("orphan", "Group", planted["shadow"]),
        ("drift", "User", ids["bob"]),
        ("missing", "User", ids["cy"]),
    }


async def test_the_csv_report_has_a_header_and_one_row_per_finding(setup: Setup) -> None:
    ids = await provision(setup)
    await plant(setup, ids)
    code, out = await setup.cli("reconcile", "--app", "acme", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1
    assert sorted(r["kind"] for r in rows) == ["drift", "missing", "orphan", "orphan"]
    assert {r["name"] for r in rows if r["kind"] == "drift"} == {"bob"}


async def test_a_stopped_run_resumes_where_it_stopped_and_finds_the_same(setup: Setup) -> None:
    ids = await provision(setup)
    await plant(setup, ids)
    service = setup.gateway.app[SERVICES]["acme"].service
    reconciler = Reconciler(service, setup.gateway.app[STORE], page=1)
    seen: list[int] = []

    def stop_after_two(done: int, total: int) -> None:
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt  # as an operator's Ctrl-C

    with contextlib.suppress(KeyboardInterrupt):
        await reconciler.run(progress=stop_after_two)
    resumed = await reconciler.run(resume=True, progress=lambda done, total: seen.append(done))
    assert seen[:3] == [1, 2, 3]  # the resumed run went on at the third account
    assert resumed.counts == {"orphan": 2, "drift": 1, "missing": 1}


async def test_an_unknown_app_is_an_error_with_exit_code_2(setup: Setup) -> None:
    code, _ = await setup.cli("reconcile", "--app", "nope")
    assert code == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_drawn_on_a_terminal_only() -> None:
    from gateway.ops_cli import Bar

    tty, pipe = Terminal(), io.StringIO()
    for out in (tty, pipe):
        bar = Bar("reconcile acme", out)
        bar(500, 1000)
        bar(1000, 1000)
        bar.end()
    assert tty.getvalue().endswith(f"\rreconcile acme [{'#' * 30}] 1000/1000\n")
    assert f"[{'#' * 15}{'.' * 15}] 500/1000" in tty.getvalue()
    assert pipe.getvalue() == ""


async def test_an_adapter_that_filters_id_gt_is_paged_by_id_and_resumes_by_id(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    raw = {
        "apps": {
            "crm": {"adapter": "memory", "auth": {"tokens": [{"name": "idp", "secret": TOKEN}]}}
        },
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
    }
    client = await aiohttp_client(
        create_app(parse_settings(raw)), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    for n in range(5):
        body = {"schemas": [USER_URN], "userName": f"user{n}"}
        assert (await client.post("/apps/crm/scim/v2/Users", json=body)).status == 201
    service = client.app[SERVICES]["crm"].service
    assert service.ledger is not None
    await service.ledger.flush()
    assert keyset(service, "User")
    reconciler = Reconciler(service, client.app[STORE], page=2)
    marks: list[int] = []

    def stop_at_four(done: int, total: int) -> None:
        marks.append(done)
        if done == 4:
            raise KeyboardInterrupt

    with contextlib.suppress(KeyboardInterrupt):
        await reconciler.run(progress=stop_at_four)
    result = await reconciler.run(resume=True, progress=lambda done, total: marks.append(done))
    assert marks == [2, 4, 5, 0]  # users from the fifth on; then the (empty) groups
    assert (result.read, result.clean) == (1, True)
