"""The audit trail under hostile input and faults (issue 13): names as written,
spreadsheet-safe exports, deletes that keep their name, and a lost lease re-taken."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from state.conftest import ADMIN_TOKEN, SettingsFactory
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.errors import ERROR_URN
from gateway.http.admin import AUDIT_LOG
from gateway.http.views import RECORDER
from gateway.operation import Operation
from gateway.state import AuditLog, AuditRecorder, Filters, StateStore
from gateway.state.audit import clean_text, event_row, storable
from gateway.state.export import csv_line

BASE = "/apps/crm/scim/v2"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def gateway(settings_with: SettingsFactory, aiohttp_client: Any) -> AsyncIterator[Client]:
    client: Client = await aiohttp_client(
        create_app(settings_with()), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    yield client


async def events(client: Client, **filters: Any) -> list[dict[str, Any]]:
    recorder = client.app[RECORDER]
    assert isinstance(recorder, AuditRecorder)
    await recorder.flush()
    found, _ = await client.app[AUDIT_LOG].list(Filters(**filters), limit=1000)
    return found


def test_every_text_is_made_storable_and_bounded() -> None:
    o = Operation(app="crm", method="GET", path="/apps/crm/\udcff\x00", user_agent="\udcff" * 900)
    o.name = "ada\x00\ud800"
    o.extra["filter"] = "username eq \udcfe"
    row = event_row(o, "e1")
    assert row["path"] == "/apps/crm/\ufffd\ufffd"
    assert row["name"] == "ada\ufffd\ufffd"
    assert len(row["user_agent"]) == 512 and row["user_agent"].endswith("…")
    assert "\\ufffd" in row["extra"] or "\ufffd" in row["extra"]
    assert clean_text("plain") == "plain"
    assert storable({"changed": "[" + '"x",' * 40_000 + '"x"]'})["changed"] == "[]"


def test_short_rows_are_cleaned_too_and_long_ones_cut_per_column() -> None:
    """storable's one-pass check for the usual row lets nothing through that the
    per-column rules would change."""

    class Text(str):
        pass

    assert storable({"name": "a\x00b", "path": "/x"})["name"] == "a\ufffdb"
    assert storable({"name": "\udcff"})["name"] == "\ufffd"
    assert storable({"name": Text("a\x00")})["name"] == "a\ufffd"
    assert storable({"name": "é"})["name"] == "é"
    # Each within its column's limit, together past the shortest one: all kept whole.
    whole = {"path": "p" * 2048, "client": "c" * 1024, "name": "n" * 512}
    assert storable(dict(whole)) == whole
    cut = storable({"path": "p" * 2049, "client": "c" * 1025, "name": "n" * 513})
    assert [len(cut[k]) for k in ("path", "client", "name")] == [2048, 1024, 512]
    assert all(cut[k].endswith("…") for k in cut)


async def test_the_audit_names_the_user_that_was_written_not_another_key_of_the_body(
    gateway: Client,
) -> None:
    """Item 6: attribute names match in any case; the audit takes the normalised resource."""
    body = {"schemas": [SCHEMA], "userName": "alice", "USERNAME": "mallory"}
    created = await gateway.post(f"{BASE}/Users", json=body)
    assert created.status == 201
    written = (await created.json())["userName"]
    [event] = await events(gateway, operation="create")
    assert event["name"] == written


async def test_a_delete_keeps_the_name_so_a_search_by_user_finds_it(gateway: Client) -> None:
    """Item 8: ``audit list --user alice`` must list her deletion."""
    created = await gateway.post(f"{BASE}/Users", json={"schemas": [SCHEMA], "userName": "alice"})
    user_id = (await created.json())["id"]
    assert (await gateway.delete(f"{BASE}/Users/{user_id}")).status == 204
    found = await events(gateway, user="alice")
    assert [(e["operation"], e["outcome"]) for e in found] == [
        ("create", "success"),
        ("delete", "success"),
    ]


async def test_the_csv_export_neutralises_cells_a_spreadsheet_would_run(gateway: Client) -> None:
    """Item 8: OWASP CSV injection; the JSON lines export keeps the value as it is."""
    names = ['=HYPERLINK("http://evil")', "+1+cmd", "-2+3", "@SUM(A1)", "ok-name"]
    for name in names:
        resp = await gateway.post(f"{BASE}/Users", json={"schemas": [SCHEMA], "userName": name})
        assert resp.status == 201
    await events(gateway)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    resp = await gateway.get("/admin/audit/export?format=csv&operation=create", headers=admin)
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["name"] for r in rows] == ["'" + n for n in names[:-1]] + ["ok-name"]
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for cell in row.values())
    # Leading white space never reaches a name (normalize_names trims it); other cells:
    assert csv_line(["\tx", "\rx", "\uff1dx", 1.5, None]) == "'\tx,\"'\rx\",'\uff1dx,1.5,\r\n"


async def test_a_lost_lease_is_retaken_and_a_late_close_records_the_real_outcome(
    state_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 4: a paused instance whose lease ran out finds its pending event finalized as
    "unknown" by a replica; on resuming it says so, takes a new lease before writing, and
    its close is chained as its own event with the real outcome."""
    paused = AuditLog(StateStore(state_url, lease_seconds=2))
    other = AuditLog(StateStore(state_url, lease_seconds=2))
    await paused.store.open()
    await other.store.open()
    recorder = AuditRecorder(paused)
    await recorder.start()
    try:
        op = Operation(app="crm", method="POST", path=f"{BASE}/Users", recorder=recorder)
        op.describe("create", "User")
        op.name = "ada"
        await op.open()
        # The pause: no renewal for longer than the lease; the replica recovers.
        async with paused.db.transaction() as tx:
            await tx.execute(
                "UPDATE instance_lease SET expires = 0 WHERE instance_id = ?",
                paused.store.instance_id,
            )
        assert await other.recover() == 1
        paused.store.renewed -= 10  # what the paused process's clock says on resuming
        caplog.set_level(logging.WARNING, "gateway.state")
        await op.close(201)
        await recorder.flush()
        assert "lease" in caplog.text and "lost" in caplog.text
        async with other.db.transaction() as tx:
            leases = await tx.fetch("SELECT instance_id FROM instance_lease")
        assert paused.store.instance_id in {r["instance_id"] for r in leases}
    finally:
        await recorder.aclose()
    found, _ = await other.list(Filters(user="ada"))
    outcomes = [(e["outcome"], e["extra"].get("finalizes")) for e in found]
    assert ("unknown", None) in outcomes
    assert ("success", found[0]["event_id"]) in outcomes
    assert (await other.verify()).ok
    await paused.store.close()
    await other.store.close()


async def test_a_row_the_store_refuses_even_cleaned_is_stored_bare_and_takes_no_other_row(
    state_url: str,
) -> None:
    """Item 1's second line of defence: after a failed batch, rows are written alone."""
    log = RefusingLog(StateStore(state_url))
    await log.store.open()
    recorder = AuditRecorder(log)
    await recorder.start()
    try:
        ops = []
        for name in ("good1", "poison", "good2"):
            op = Operation(app="crm", method="GET", path=f"{BASE}/Users", recorder=recorder)
            op.describe("list", "User")
            op.name = name
            ops.append(op)
        await asyncio.gather(*(op.close(200) for op in ops))
        await recorder.flush()
    finally:
        await recorder.aclose()
    found, _ = await log.list(Filters())
    assert sorted(str(e["name"]) for e in found) == ["None", "good1", "good2"]
    bare = next(e for e in found if e["name"] is None)
    assert bare["extra"] == {"stored": "bare"} and bare["status"] == 200
    assert (await log.verify()).ok
    await log.store.close()


class RefusingLog(AuditLog):
    """A store that refuses any write holding the name "poison" (a driver's refusal)."""

    async def write(self, opens: list[Any], closes: list[Any], opened: set[str]) -> None:
        if any(row.get("name") == "poison" for row in [*opens, *closes]):
            raise ValueError("refused by the driver")
        await super().write(opens, closes, opened)


async def test_admin_actions_are_audit_events_with_the_admins_name(
    state_url: str, aiohttp_client: Any
) -> None:
    """Item 7: who released a mass deprovisioning, who exported the trail, who tried."""
    settings = parse_settings(
        {
            "apps": {
                "crm": {
                    "adapter": "memory",
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                    "guard": {"max_deprovisions": 1},
                }
            },
            "state": {"url": state_url},
            "admin": {"tokens": [{"name": "auditor", "sha256": digest(ADMIN_TOKEN)}]},
        }
    )
    client: Client = await aiohttp_client(create_app(settings))
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    released = await client.post("/admin/guard/crm/release", json={"minutes": 5}, headers=admin)
    assert released.status == 200
    exported = await client.get("/admin/audit/export?format=jsonl", headers=admin)
    assert exported.status == 200
    await exported.read()
    refused = await client.post("/admin/guard/crm/release", headers={"Authorization": "Bearer no"})
    assert refused.status == 401
    found = await events(client)
    summary = [(e["app"], e["operation"], e["client"], e["status"]) for e in found]
    assert summary == [
        ("crm", "admin.guard-release", "auditor", 200),
        ("admin", "admin.audit-export", "auditor", 200),
        ("crm", "admin.guard-release", None, 401),
    ]
    assert (await client.app[AUDIT_LOG].verify()).ok


async def test_a_store_outage_is_a_503_with_retry_after_logged_once_per_episode(
    gateway: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 10: IdPs retry a 503 with Retry-After; a 500 counts against the account."""
    caplog.set_level(logging.INFO)
    async with gateway.app[AUDIT_LOG].db.transaction() as tx:
        await tx.execute("DROP TABLE audit_event")
    for i in range(5):
        resp = await gateway.post(f"{BASE}/Users", json={"schemas": [SCHEMA], "userName": f"u{i}"})
        assert resp.status == 503
        assert resp.headers["Retry-After"].isdigit()
        error = await resp.json()
        assert (error["status"], error["schemas"]) == ("503", [ERROR_URN])
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway")]
    assert len([line for line in lines if "unavailable" in line]) == 1, lines
    assert not [line for line in lines if "unhandled" in line]
