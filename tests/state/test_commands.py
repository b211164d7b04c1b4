"""``scim-gateway audit list|export|verify|prune`` against a config file, on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from state.conftest import CHECKPOINT_KEY
from support import TOKEN, digest

from gateway.cli import main
from gateway.config import load_settings
from gateway.operation import Operation
from gateway.state import DEFAULT_FILE, AuditLog, StateStore, state_url
from gateway.state.audit import event_row


def write_config(folder: Path, url: str | None, **audit: Any) -> Path:
    config: dict[str, Any] = {
        "apps": {
            "crm": {
                "adapter": "memory",
                "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
            }
        },
    }
    if url is not None:
        config["state"] = {"url": url, "audit": audit}
    path = folder / "gateway.yaml"
    path.write_text(json.dumps(config), "utf-8")
    return path


async def fill(url: str, names: list[str], *, age_days: float = 0, outcome: int = 201) -> None:
    log = AuditLog(StateStore(url))
    await log.store.open()
    try:
        rows = []
        for name in names:
            op = Operation(app="crm", method="POST", path="/apps/crm/scim/v2/Users", client="idp")
            op.describe("create", "User", f"id-{name}")
            op.name = name
            op.started = time.time() - age_days * 86400
            op.set_changed(["userName", "password"])
            op.finish(outcome)
            rows.append(event_row(op, f"ev-{name}"))
        await log.write([], rows, set())
    finally:
        await log.store.close()


@pytest.fixture
def config(tmp_path: Path, state_url: str) -> Path:
    return write_config(tmp_path, state_url, checkpoint_key=CHECKPOINT_KEY)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_list_prints_a_table_or_json_lines_with_filters(
    config: Path, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill(state_url, ["ada", "grace"]))
    asyncio.run(fill(state_url, ["linus"], outcome=409))
    code, out = run(capsys, "audit", "list", "-c", str(config))
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == [
        "time",
        "app",
        "client",
        "operation",
        "resource_type",
        "name",
        "outcome",
        "status",
    ]
    assert [line.split()[5] for line in lines] == ["ada", "grace", "linus"]

    code, out = run(
        capsys, "audit", "list", "-c", str(config), "--format", "jsonl", "--outcome", "refused"
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["name"], e["status"]) for e in events] == [("linus", 409)]
    code, out = run(
        capsys,
        "audit",
        "list",
        "-c",
        str(config),
        "--user",
        "id-ada",
        "--format",
        "jsonl",
        "--since",
        "2000-01-01",
    )
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["ada"]


def test_export_writes_csv_with_every_column(
    config: Path, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill(state_url, ["ada", "grace"]))
    code, out = run(capsys, "audit", "export", "-c", str(config), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["ada", "grace"]
    assert rows[0]["changed"] == "password userName"
    assert rows[1]["seq"] == "2" and len(rows[1]["hash"]) == 64


def test_verify_exits_1_on_a_broken_chain_and_prune_keeps_it_verifiable(
    config: Path, state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill(state_url, ["old1", "old2"], age_days=100))
    asyncio.run(fill(state_url, ["new"]))
    assert run(capsys, "audit", "verify", "-c", str(config)) == (
        0,
        "OK: 3 event(s), the chain is intact\n",
    )
    code, out = run(capsys, "audit", "prune", "-c", str(config), "--older-than-days", "30")
    assert (code, out) == (0, "pruned up to seq 2; signed checkpoint written\n")
    assert run(capsys, "audit", "verify", "-c", str(config))[0] == 0

    async def tamper() -> None:
        log = AuditLog(StateStore(state_url))
        await log.store.open(lease=False)
        try:
            async with log.db.transaction() as tx:
                await tx.execute("UPDATE audit_event SET client = 'someone-else'")
        finally:
            await log.store.close()

    asyncio.run(tamper())
    code, out = run(capsys, "audit", "verify", "-c", str(config))
    assert code == 1
    assert out.startswith("BROKEN after 0 good event(s): event seq 3 (id ev-new)")


def test_prune_without_a_key_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "sqlite:///audit.db")
    assert main(["audit", "prune", "-c", str(config), "--older-than-days", "1"]) == 2
    assert "checkpoint_key" in capsys.readouterr().err
    assert (tmp_path / "audit.db").exists()  # relative to the config file's folder


def test_the_default_store_is_a_file_next_to_the_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, None)
    url = state_url(load_settings(config), str(config))
    assert url == f"sqlite:///{tmp_path / DEFAULT_FILE}"


def test_a_bad_time_filter_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "list", "-c", str(config), "--since", "last tuesday"]) == 2
    assert "not an ISO date" in capsys.readouterr().err
