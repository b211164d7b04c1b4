"""``scim-gateway sql introspect`` and ``scim-gateway sql demo`` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from sql.pg import drop_schema, new_schema_name

from adapters.sql import SqlAdapter, SqlSettings
from gateway.cli import main
from gateway.mapping.engine import load_mapping

from .conftest import Payroll

MARK = "# ---- the app's settings"


def introspect(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["sql", "introspect", *args]) == 0
    return capsys.readouterr().out


async def test_introspect_prints_a_mapping_that_loads_and_settings_that_open(
    payroll: Payroll, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = await asyncio.to_thread(
        introspect, capsys, "--dsn", "${env:PAYROLL_DSN}", "--table", f"{payroll.schema}.emp_master"
    )
    mapping_text, _, settings_text = out.partition(MARK)
    settings_text = settings_text.split("\n", 1)[1]
    assert 'logon_name: "{{ userName }}"' in mapping_text
    assert "userName: logon_name" in mapping_text and "meta.lastModified: upd_ts" in mapping_text
    assert "id: {column: emp_no, generated: database}" in settings_text
    assert "CREATE INDEX" not in settings_text  # payroll has lower(logon_name) indexed
    assert payroll.dsn not in out

    (tmp_path / "user.yaml").write_text(mapping_text)
    mapping = load_mapping(tmp_path)
    settings: dict[str, Any] = yaml.safe_load(settings_text)
    settings["dsn"] = "${env:PAYROLL_DSN}"
    adapter = SqlAdapter(SqlSettings.model_validate(settings), app="t", mapping=mapping)
    await adapter.open()
    try:
        created = await adapter.create("User", {"logon_name": "introspected"})
        assert (await adapter.get("User", created.id)).data["logon_name"] == "introspected"
    finally:
        await adapter.aclose()


async def test_introspect_suggests_the_lower_index_a_table_lacks(
    payroll: Payroll, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = await payroll.connect()
    try:
        await conn.execute("CREATE TABLE accounts (id serial PRIMARY KEY, login text NOT NULL)")
    finally:
        await conn.close()
    try:
        out = await asyncio.to_thread(
            introspect, capsys, "--dsn", payroll.dsn, "--table", f"{payroll.schema}.accounts"
        )
    finally:
        await payroll.rows("DROP TABLE accounts")
    assert 'login: "{{ userName }}"' in out
    assert f"CREATE INDEX ON {payroll.schema}.accounts (lower(login));" in out


def test_introspect_names_a_missing_table(
    payroll: Payroll, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "introspect", "--dsn", payroll.dsn, "--table", "nowhere.nothing"]) == 2
    assert "there is no table or view nowhere.nothing" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_sql_demo_walks_through_and_shows_the_rows(
    payroll: Payroll, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = new_schema_name("demo_")
    argv = ["sql", "demo", "--dsn", payroll.dsn, "--schema", schema, "--port", str(_free_port())]
    try:
        assert main([*argv, "--walkthrough", "--exit"]) == 0
    finally:
        asyncio.run(drop_schema(payroll.dsn, schema))
    out = capsys.readouterr().out
    assert f"schema {schema}: payroll.sql loaded" in out
    assert "SCIM POST /Users -> 201" in out and "SCIM PATCH /Users/100001 -> 200" in out
    assert '"emp_status": "T"' in out
    assert payroll.dsn not in out
